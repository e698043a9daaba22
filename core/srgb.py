"""Turning a decoded image of any Pillow mode into 8-bit sRGB RGB.

Recognizers and JPEG want 8-bit RGB in sRGB. Uploads come as palettes, 1-bit scans, 16-bit and
float greyscale, CMYK (including the inverted CMYK Adobe writes into JPEGs, which Pillow undoes),
with alpha, and with embedded ICC profiles (Display P3 from phones, Adobe RGB from cameras, CMYK
press profiles). The work is split in two so the expensive part runs on few pixels:
`resampleable` runs before downscaling and only fixes modes that cannot be resampled correctly;
`to_srgb` runs after it and does the colour management, which costs per pixel.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, ImageCms

logger = logging.getLogger(__name__)

_WHITE = 255
# What Pillow's ICC colour-space signature must be for a profile to describe a mode.
_PROFILE_SPACE_FOR_MODE = {"RGB": "RGB", "L": "GRAY", "CMYK": "CMYK"}
_ICC_HEADER_SIZE = 128
_HIGH_BIT_DEPTH = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def resampleable(image: Image.Image) -> Image.Image:
    """The same picture in a mode that resizes correctly: L, LA, RGB, RGBA or CMYK.

    Palettes and 1-bit images would only be resized by picking pixels, 16-bit and float ones are
    not 8-bit at all; transparency kept as a palette entry or a colour key becomes a real alpha
    channel so it survives resampling. The other modes come back unchanged (no copy).
    """
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        if "transparency" in image.info and mode in ("L", "RGB"):
            return image.convert("RGBA")  # a colour key (PNG tRNS) becomes alpha
        return image
    if mode in ("P", "PA", "1") and image.has_transparency_data:
        return image.convert("RGBA")
    if mode == "P":
        return image.convert("RGB")
    if mode == "1":
        return image.convert("L")
    if mode == "La":
        return image.convert("LA")
    if mode in ("RGBa", "PA"):
        return image.convert("RGBA")
    if mode in _HIGH_BIT_DEPTH:
        return _to_8_bit(image)
    return image.convert("RGB")  # RGBX, YCbCr, LAB, HSV


def _to_8_bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greyscale as 8-bit L.

    Pillow's own conversion clips (every 16-bit value above 255 turns white), so values are
    scaled: 16-bit data by its full range, 32-bit and float data by the range it uses when that is
    not one of the usual ones (0..255, 0..65535, or 0..1 for float).
    """
    if image.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    else:
        extrema = image.getextrema()
        minimum, maximum = (float(value) for value in extrema if isinstance(value, int | float))
        if image.mode == "F" and minimum >= 0.0 and maximum <= 1.0:
            low, high = 0.0, 1.0
        elif minimum >= 0.0 and maximum <= 255.0:
            low, high = 0.0, 255.0
        elif minimum >= 0.0 and maximum <= 65535.0:
            low, high = 0.0, 65535.0
        else:
            low, high = minimum, max(maximum, minimum + 1.0)
    scale = 255.0 / (high - low)
    offset = -low * scale
    floats = image if image.mode == "F" else image.convert("F")
    return floats.point(lambda value: value * scale + offset).convert("L")


def to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """The image as 8-bit RGB in sRGB: alpha flattened onto white, the ICC profile applied.

    `icc_profile` is the profile the file embedded (None when it had none). A profile that cannot
    be parsed or does not match the pixels (an RGB profile on greyscale data) is ignored: broken
    metadata must not cost the photo, and untagged pixels are taken to be sRGB already.
    """
    image = _flatten_alpha(image)
    if icc_profile:
        converted = _apply_profile(image, icc_profile)
        if converted is not None:
            return converted
    return image if image.mode == "RGB" else image.convert("RGB")


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Transparent areas shown over white, as chat apps display them."""
    if image.mode not in ("LA", "RGBA"):
        return image
    base_mode = image.mode[:-1]
    background = Image.new(base_mode, image.size, _WHITE if base_mode == "L" else (_WHITE,) * 3)
    background.paste(image.convert(base_mode), mask=image.getchannel("A"))
    background.info = dict(image.info)
    return background


def _apply_profile(image: Image.Image, icc_profile: bytes) -> Image.Image | None:
    """The image converted from its embedded profile to sRGB, or None to ignore the profile."""
    if len(icc_profile) < _ICC_HEADER_SIZE or int.from_bytes(icc_profile[:4], "big") > len(icc_profile):
        # Cut short (an APP2 segment lost on the way): better untagged than guessed from a part.
        logger.debug("ignoring a truncated ICC profile")
        return None
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        space = source.profile.xcolor_space.strip()
        if _PROFILE_SPACE_FOR_MODE.get(image.mode) != space:
            logger.debug("ignoring a %s ICC profile on a %s image", space, image.mode)
            return None
        if image.mode == "RGB" and _is_srgb(source):
            return image
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        logger.debug("ignoring an unusable ICC profile", exc_info=True)
        return None
    assert converted is not None  # profileToProfile returns None only when inPlace=True
    return converted


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    """Whether a profile is (a variant of) sRGB, so converting would change nothing but the time."""
    description = profile.profile.profile_description or ""
    return "srgb" in description.lower()
