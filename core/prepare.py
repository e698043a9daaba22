"""From the untrusted bytes of an upload to the upright, downsized image the recognizer sees.

`prepare_photo` is the one entry point. It is a plain synchronous function meant to run in a
worker process, and the order of its steps is what keeps hostile uploads cheap:

1. Byte size, then the format from magic bytes (`core.sniff`): only that format's decoder runs.
2. The header is parsed and the pixel limits are checked before any pixel is decoded.
3. EXIF is read from the freshly opened file (`core.exif.read_exif`).
4. Decoding downsizes as it goes where the format allows it: a JPEG is decoded at 1/2, 1/4 or 1/8
   size in the DCT domain (`Image.draft`), choosing the smallest scale that keeps the long side at
   least 0.75 x `max_side`; then at most one cheap resize brings it to `max_side`.
5. Colour conversion to 8-bit sRGB, and the EXIF orientation, run on the small image.
6. The JPEG for the recognizer is encoded without metadata and kept under `max_jpeg_bytes`.

Pillow's own decompression-bomb check (`Image.MAX_IMAGE_PIXELS`) is not the mechanism: files are
opened with their format's plugin directly, so that check never fires at open time with a
message and a threshold other than ours (`ImageLimits`), and the process-wide setting is left
alone. The places where Pillow still checks later (GIF frames growing the canvas, TIFF tiles)
are mapped to `TooLarge`.
"""

from __future__ import annotations

import io
import logging
import math
import re
import struct
from collections.abc import Callable
from typing import IO

import pillow_heif
from PIL import (
    AvifImagePlugin,
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from core import sniff
from core.analysis_types import ExifData, Photo, PreparedPhoto
from core.errors import CorruptImage, TooLarge, TooSmall
from core.exif import read_exif
from core.limits import ImageLimits
from core.png_metadata import without_hostile_metadata
from core.srgb import resampleable, to_srgb

logger = logging.getLogger(__name__)

# HEIC/HEIF support for the rest of the application too (Image.open); registering is idempotent.
# Decoding here does not depend on it: every format is opened with its plugin class directly.
pillow_heif.register_heif_opener()

_Opener = Callable[[IO[bytes]], ImageFile.ImageFile]
_OPENERS: dict[str, _Opener] = {
    sniff.JPEG: JpegImagePlugin.jpeg_factory,  # gives MpoImageFile for multi-picture files
    sniff.PNG: PngImagePlugin.PngImageFile,
    sniff.GIF: GifImagePlugin.GifImageFile,
    sniff.WEBP: WebPImagePlugin.WebPImageFile,
    sniff.TIFF: TiffImagePlugin.TiffImageFile,
    sniff.BMP: BmpImagePlugin.BmpImageFile,
    sniff.AVIF: AvifImagePlugin.AvifImageFile,
    sniff.HEIF: pillow_heif.HeifImageFile,
}

# What Pillow and pillow-heif raise on damaged or hostile data. Plugins turn most parsing errors
# into SyntaxError (not this format) or OSError (truncated, broken stream); the others escape
# from less travelled code paths of the decoders (struct.error and IndexError on short reads,
# ValueError on impossible sizes or negative seeks, ZeroDivisionError on zero resolutions,
# RuntimeError from libheif). MemoryError is not here on purpose: the limits make it impossible
# for input within them, so it means the machine is short of memory, not that the photo is bad.
_DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # includes PIL.UnidentifiedImageError
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    RuntimeError,
)

# Formats whose decoder can scale down while decoding (DCT scaling in libjpeg).
_DRAFT_SCALES = (8, 4, 2, 1)
_SCALABLE_WHILE_DECODING = frozenset({"JPEG", "MPO"})

# The resampling filter of the one resize after the JPEG decoder's scaling, where the factor is
# between 1 and 1.5 (2000 -> 1920 for 12 and 48 MP photos). Measured on the 12 MP benchmark photo:
# time (interleaved medians), PSNR against a full-resolution LANCZOS reference, and the same after
# the q85 JPEG the recognizer gets: NEAREST 3.5 ms / 39.6 / 38.4 dB, BOX 28 ms / 39.9 / 38.5 dB,
# HAMMING 41 ms / 43.2 / 39.9 dB, BILINEAR 50 ms / 44.2 / 40.1 dB, LANCZOS 101 ms / 45.9 / 40.6 dB.
# NEAREST drops every 25th row and column, which visibly breaks small text (the dot of an i, the
# stem of a 1). BOX averages pixel areas like `reduce()`: small text stays intact and side by side
# with HAMMING at 2x zoom no difference shows; what PSNR sees is grain, which the q85 JPEG smears
# anyway. It is the cheapest filter that keeps every stroke, so BOX.
_RESIZE_FILTER = Image.Resampling.BOX

_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that shows the image upright (as ImageOps.exif_transpose).
_UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Qualities tried, in order, when the JPEG for the recognizer comes out too big; below the last
# one the image is shrunk instead.
_FALLBACK_QUALITIES = (75, 65, 55, 45)

# The pixel count in the message of Pillow's DecompressionBombError.
_PILLOW_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")

# Names of formats in messages to people.
_FORMAT_NAMES = {"HEIF": "HEIC", "WEBP": "WebP", "MPO": "JPEG"}


def prepare_photo(photo: Photo, limits: ImageLimits = ImageLimits()) -> PreparedPhoto:  # noqa: B008
    """Decode an uploaded photo into the upright, downsized sRGB image the recognizer sees.

    Raises only `core.errors.PhotoRejected` subclasses for bad input: `UnsupportedFormat` (not one
    of JPEG, PNG, WebP, HEIC/HEIF, AVIF, TIFF, BMP, GIF), `TooLarge` (bytes or pixels, checked
    before decoding), `TooSmall` (a side under `min_side`, or too thin to keep `min_side` once
    scaled), `CorruptImage` (truncated or damaged: refused, never half processed). Only the first
    frame of animations and multi-picture files (MPO, animated WebP/GIF/AVIF) is used.

    The result's `image` is the exact array the JPEG was encoded from, so boxes the recognizer
    finds on the JPEG land on `image`. Its long side is between 0.75 x and 1.0 x `max_side` when
    the original was larger, unchanged otherwise (only a JPEG over `max_jpeg_bytes` is shrunk
    further). Neither carries EXIF or an ICC profile.
    """
    data = photo.data
    if len(data) > limits.max_bytes:
        raise TooLarge(
            "too_many_bytes",
            f"This file is {_file_size(len(data))}; the limit is {_file_size(limits.max_bytes)}.",
        )
    image_format = sniff.sniff_format(data)
    if image_format == sniff.PNG:
        data = _without_hostile_metadata(data)
    with _open(data, image_format, limits) as probe:
        width, height = probe.size
        _check_pixels(probe.format or image_format, width, height, limits)
        exif = read_exif(probe)
    # A second, untouched image object for decoding: the EXIF reader may have started a decode
    # on `probe` (and, never raising, swallowed its error), which would leave a half-filled image
    # that looks loaded. Opening again is only a header parse.
    decoding = _open(data, image_format, limits)
    try:
        source_format = decoding.format or image_format
        upright, orientation, by_decoder = _decode_upright(decoding, exif, limits)
    finally:
        decoding.close()
    if by_decoder and orientation >= 5:
        width, height = height, width  # the decoder reported the size of the upright image
    upright.info = {}  # the source's EXIF and ICC must not travel with the pixels
    final, jpeg = _encode_within(upright, limits)
    return PreparedPhoto(
        image=final,
        jpeg=jpeg,
        source_format=source_format,
        original_width=width,
        original_height=height,
        orientation=orientation,
        exif=exif,
    )


def _decode_upright(
    decoding: ImageFile.ImageFile, exif: ExifData, limits: ImageLimits
) -> tuple[Image.Image, int, bool]:
    """Decode, downsize, convert to sRGB and turn upright, in the order that keeps each step cheap.

    Returns the image (detached from the file), the orientation it was turned by, and whether the
    decoder did that turning itself.
    """
    icc_profile = _icc_profile(decoding)
    decoded = _decode(decoding, limits)
    orientation = _valid_orientation(exif.orientation)
    by_decoder = _orientation_applied_by_decoder(decoded, orientation)
    pixels = _downscale(resampleable(decoded), limits)
    upright = to_srgb(pixels, icc_profile)
    if by_decoder is None:
        upright = _orient(upright, orientation)
    else:
        orientation = by_decoder
    if upright is decoding:
        upright = upright.copy()  # detach from the file object, which holds the upload's bytes
    return upright, orientation, by_decoder is not None


def _file_size(size: int) -> str:
    """How people read file sizes: "31.4 MB", "25 MB", "120 KB"."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f}".removesuffix(".0") + " MB"
    return f"{round(size / 1000)} KB"


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0")


def _format_name(image_format: str) -> str:
    return _FORMAT_NAMES.get(image_format, image_format)


def _corrupt(image_format: str) -> CorruptImage:
    return CorruptImage(
        "corrupt",
        f"This {_format_name(image_format)} file is damaged or incomplete, so it cannot be read. "
        "Try sending the original file again.",
    )


def _too_many_pixels(error: Image.DecompressionBombError, limits: ImageLimits) -> TooLarge:
    """Pillow's own check fired (a GIF frame growing the canvas, a TIFF tile): say it our way."""
    claimed = _PILLOW_BOMB_PIXELS.search(str(error))
    size = f"{_megapixels(int(claimed.group(1)))} megapixels" if claimed else "too many pixels"
    return TooLarge(
        "too_many_pixels",
        f"This image has {size}; the limit is {_megapixels(limits.max_pixels)} megapixels.",
    )


def _without_hostile_metadata(data: bytes) -> bytes:
    """A PNG whose text or colour profile is a decompression bomb is analysed without that chunk."""
    cleaned = without_hostile_metadata(data)
    if cleaned.dropped:
        logger.info("PNG: left out %d oversized metadata chunk(s)", cleaned.dropped)
    return cleaned.data


def _open(data: bytes, image_format: str, limits: ImageLimits) -> ImageFile.ImageFile:
    """Parse the header with the sniffed format's own plugin; no pixel is decoded yet."""
    _require_strict_decoding()
    try:
        return _OPENERS[image_format](io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise _too_many_pixels(error, limits) from error
    except _DECODE_ERRORS as error:
        raise _corrupt(image_format) from error


def _require_strict_decoding() -> None:
    """Refuse to run when someone made Pillow accept truncated files process-wide.

    With `ImageFile.LOAD_TRUNCATED_IMAGES` a cut-off upload decodes "successfully" with grey or
    black where the data stopped, and would be analysed as if it were the photo.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: truncated uploads would be half-decoded; "
            "whatever set it must not run in the photo worker"
        )


def _check_pixels(image_format: str, width: int, height: int, limits: ImageLimits) -> None:
    """Apply the pixel limits to the size the header claims, before anything is decoded.

    Formats other than JPEG are decoded at full size (about 4 bytes per pixel) and can compress
    a huge canvas into a tiny file, so they have the lower `max_full_decode_pixels` cap
    (see `ImageLimits`): this is what refuses PNG decompression bombs.
    """
    pixels = width * height
    size = f"{width}×{height} pixels"
    if pixels > limits.max_pixels:
        raise TooLarge(
            "too_many_pixels",
            f"This image is {size}; the limit is {_megapixels(limits.max_pixels)} megapixels.",
        )
    if image_format not in _SCALABLE_WHILE_DECODING and pixels > limits.max_full_decode_pixels:
        name = _format_name(image_format)
        raise TooLarge(
            "too_many_pixels_to_decode",
            f"This {name} image is {size}; the limit for {name} images is "
            f"{_megapixels(limits.max_full_decode_pixels)} megapixels, because they have to be "
            "decoded in full (so many pixels in a small file is a decompression bomb).",
        )
    if min(width, height) < limits.min_side:
        raise TooSmall(
            "too_small",
            f"This image is {size}; photos must be at least {limits.min_side} pixels on each side.",
        )
    long_side, short_side = max(width, height), min(width, height)
    if long_side > limits.max_side and short_side * limits.min_long_side / long_side < limits.min_side:
        raise TooSmall(
            "too_narrow",
            f"This image is {size}: too long and thin to analyse. Scaled down to "
            f"{limits.max_side} pixels long, it would be less than {limits.min_side} pixels wide.",
        )


def _icc_profile(image: Image.Image) -> bytes | None:
    profile = image.info.get("icc_profile")
    return profile if isinstance(profile, bytes) and profile else None


def _valid_orientation(orientation: int | None) -> int:
    """An EXIF orientation as 1..8; anything else (absent, 0, 9) means no rotation."""
    return orientation if orientation is not None and 1 <= orientation <= 8 else 1


def _orientation_applied_by_decoder(decoded: Image.Image, exif_orientation: int) -> int | None:
    """The orientation the decoder already applied while decoding; None when it left that to us.

    pillow-heif hands HEIF images over rotated as the container says and keeps the file's EXIF
    orientation in info["original_orientation"]. Pillow's TIFF plugin (Pillow 13) turns the image
    upright in `load()` and then deletes the Orientation tag, so a TIFF that has lost the tag by
    now was rotated by the value read before decoding. Every other decoder leaves pixels as stored.
    """
    if "original_orientation" in decoded.info:
        original = decoded.info["original_orientation"]
        return _valid_orientation(original if isinstance(original, int) else None)
    if isinstance(decoded, TiffImagePlugin.TiffImageFile) and _ORIENTATION_TAG not in decoded.tag_v2:
        return exif_orientation
    return None


def _decode(image: ImageFile.ImageFile, limits: ImageLimits) -> Image.Image:
    """Decode the first frame, scaled down by the decoder where the format can do it.

    Truncated data fails here, as Pillow is left strict. One case slips through: a JPEG cut short
    and then closed with an end-of-image marker decodes with grey where data is missing, because
    libjpeg only warns about it and Pillow ignores libjpeg's warnings.
    """
    width, height = image.size
    long_side = max(width, height)
    try:
        if long_side > limits.max_side:
            if image.format in _SCALABLE_WHILE_DECODING:
                scale = _draft_scale(long_side, limits.min_long_side)
                image.draft("RGB", (max(width // scale, 1), max(height // scale, 1)))
            else:
                # pillow-heif decodes an embedded preview instead when one is big enough.
                factor = limits.min_long_side / long_side
                image.draft(None, (math.ceil(width * factor), math.ceil(height * factor)))
        image.load()
    except Image.DecompressionBombError as error:
        raise _too_many_pixels(error, limits) from error
    except _DECODE_ERRORS as error:
        raise _corrupt(image.format or "image") from error
    return image


def _draft_scale(long_side: int, min_long_side: int) -> int:
    """The largest DCT scale (8, 4, 2, 1) that keeps the long side at least `min_long_side`."""
    for scale in _DRAFT_SCALES:
        if math.ceil(long_side / scale) >= min_long_side:
            return scale
    return 1


def _downscale(image: Image.Image, limits: ImageLimits) -> Image.Image:
    """Bring the long side into `min_long_side..max_side` with one cheap operation.

    An integer box reduction when one lands in that range (fast, and averages every pixel),
    otherwise one resize to exactly `max_side`.
    """
    width, height = image.size
    long_side = max(width, height)
    if long_side <= limits.max_side:
        return image
    factor = long_side // limits.min_long_side
    if factor >= 2 and math.ceil(long_side / factor) <= limits.max_side:
        return image.reduce(factor)
    scale = limits.max_side / long_side
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    return image.resize(size, _RESIZE_FILTER)


def _orient(image: Image.Image, orientation: int) -> Image.Image:
    """Show the image upright; done after downsizing, where transposing is cheap."""
    method = _UPRIGHT.get(orientation)
    return image if method is None else image.transpose(method)


def _encode_within(image: Image.Image, limits: ImageLimits) -> tuple[Image.Image, bytes]:
    """The JPEG for the recognizer, at most `max_jpeg_bytes`, and the image it was made from.

    Quality is lowered first, then the image is shrunk, so the JPEG always fits (Rekognition
    refuses more than 5 MB). A 1920 px photo at quality 85 is a few hundred KB, so in practice
    only pathological noise takes the slow path.
    """
    qualities = (limits.jpeg_quality, *(q for q in _FALLBACK_QUALITIES if q < limits.jpeg_quality))
    while True:
        for quality in qualities:
            jpeg = _encode(image, quality)
            if len(jpeg) <= limits.max_jpeg_bytes:
                return image, jpeg
        # Pixels the JPEG can afford at the lowest quality, with a margin for the estimate.
        scale = min(math.sqrt(limits.max_jpeg_bytes / len(jpeg)) * 0.9, 0.9)
        size = (max(round(image.width * scale), 1), max(round(image.height * scale), 1))
        logger.info("JPEG of %dx%d is %d bytes; shrinking to %dx%d", *image.size, len(jpeg), *size)
        image = image.resize(size, _RESIZE_FILTER)
        qualities = qualities[-1:]


def _encode(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG, 4:2:0, no EXIF, no ICC (sRGB is what a profile-less JPEG means)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
