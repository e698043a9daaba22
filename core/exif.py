"""Reading camera metadata (EXIF) from an uploaded photo into an `ExifData`.

The reader runs on the freshly opened, not yet decoded image, never raises and never decodes
pixels. EXIF is attacker controlled, so every field is read on its own: a broken field becomes
None while the others are still reported, and every string is cleaned by `core.untrusted_text`.
Values follow what exiftool reports (`exiftool -n`), which the corpus test checks. A value may be
stated in several places (EXIF, the maker's MakerNote, XMP, proprietary JPEG segments, IPTC);
they are gathered in file order and exiftool's precedence picks one (`core.exif_found`).
"""

from __future__ import annotations

import html
import io
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import TypeVar

from PIL import ExifTags, Image

from core.analysis_types import ExifData, GpsPosition
from core.exif_found import Found, resolve
from core.exif_makernotes import read_maker_note
from core.exif_segments import Segments, iptc_datetime, read_segments
from core.exif_source import decoder_applied_orientation, exif_block, load_exif, xmp_property
from core.exif_values import (
    as_ascii,
    as_iso,
    as_non_negative,
    as_orientation,
    describe_flash,
    gps_position,
    parse_datetime,
)
from core.untrusted_text import clean_text

logger = logging.getLogger(__name__)

T = TypeVar("T")

_Base = ExifTags.Base
_EMPTY: Mapping[int, object] = {}


@cache
def register_heif_opener() -> None:
    """Teach Pillow to open HEIC/HEIF (iPhone photos); done once per process."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def read_exif_bytes(data: bytes) -> ExifData:
    """Read EXIF from the bytes of an image file; ExifData() when they are no image at all.

    Opens the image lazily (pixels are never decoded) with HEIF support registered. Images that
    Pillow refuses to open as decompression bombs give ExifData() as well.
    """
    try:
        register_heif_opener()
        with Image.open(io.BytesIO(data)) as image:
            return read_exif(image)
    except Exception:  # any unreadable upload: there is simply no metadata to report
        logger.debug("no EXIF: the data could not be opened as an image", exc_info=True)
        return ExifData()


def read_exif(image: Image.Image) -> ExifData:
    """Read camera metadata from a freshly opened (not yet decoded) image; never raises.

    `image_width`/`image_height` are the pixel size as stored in the file, before orientation,
    like exiftool's ImageWidth/ImageHeight. `orientation` is the file's EXIF orientation; for HEIF,
    pillow-heif has already applied it while decoding: use `orientation_to_apply` to know what is
    still to be done to the Pillow image.
    """
    block = _safely(lambda: exif_block(image), None)
    try:
        exif = load_exif(image, block)
    except Exception:
        logger.debug("unreadable EXIF block", exc_info=True)
        exif = Image.Exif()
    ifd0: Mapping[int, object] = exif  # read tag by tag: Pillow converts each value on access
    sub: Mapping[int, object] = _safely(lambda: exif.get_ifd(ExifTags.IFD.Exif), _EMPTY)
    gps_ifd: Mapping[int, object] = _safely(lambda: exif.get_ifd(ExifTags.IFD.GPSInfo), _EMPTY)

    def tag(number: int) -> object:
        """A photo tag from the Exif IFD, or from IFD0 where some writers put it."""
        value = sub.get(number)
        return value if value is not None else ifd0.get(number)

    no_sources: list[Found] = []
    sources = _safely(lambda: _sources(image, block, ifd0, tag), no_sources)
    orientation = _safely(lambda: _orientation(image, ifd0), None)
    no_size: tuple[int | None, int | None] = (None, None)
    width, height = _safely(lambda: _stored_size(image), no_size)
    return ExifData(
        make=resolve(sources, lambda found: found.make),
        model=resolve(sources, lambda found: found.model),
        lens=resolve(sources, lambda found: found.lens),
        datetime_original=resolve(sources, lambda found: found.datetime_original),
        exposure_time=resolve(sources, lambda found: found.exposure_time),
        f_number=resolve(sources, lambda found: found.f_number),
        iso=resolve(sources, lambda found: found.iso),
        focal_length=resolve(sources, lambda found: found.focal_length),
        focal_length_35mm=_safely(lambda: as_non_negative(tag(_Base.FocalLengthIn35mmFilm)), None),
        flash=_safely(lambda: describe_flash(tag(_Base.Flash)), None),
        orientation=orientation,
        software=_safely(lambda: as_ascii(ifd0.get(_Base.Software)), None),
        gps=_safely(lambda: _gps(gps_ifd), None),
        image_width=width,
        image_height=height,
    )


def _sources(
    image: Image.Image, block: bytes | None, ifd0: Mapping[int, object], tag: Callable[[int], object]
) -> list[Found]:
    """Every place the file states camera values, in the order exiftool reads them.

    Standard EXIF (normal priority), with the maker note at its place inside the Exif IFD (after
    the exposure tags, before LensModel, as tags are sorted by number); XMP (low priority, only
    filling gaps); proprietary JPEG segments at their place in the file; IPTC last.
    """
    make = _safely(lambda: as_ascii(ifd0.get(_Base.Make)), None)
    standard = Found(
        make=make,
        model=_safely(lambda: as_ascii(ifd0.get(_Base.Model)), None),
        datetime_original=_safely(lambda: _exif_datetime_original(tag), None),
        exposure_time=_safely(lambda: as_non_negative(tag(_Base.ExposureTime)), None),
        f_number=_safely(lambda: as_non_negative(tag(_Base.FNumber)), None),
        iso=_safely(lambda: as_iso(tag(_Base.ISOSpeedRatings)), None),
        focal_length=_safely(lambda: as_non_negative(tag(_Base.FocalLength)), None),
    )
    maker_note = read_maker_note(block, make) if block is not None else []
    lens = Found(lens=_safely(lambda: as_ascii(tag(_Base.LensModel)), None))
    xmp = Found(
        preferred=False,
        make=_safely(lambda: _xmp_text(image, "tiff:Make"), None),
        model=_safely(lambda: _xmp_text(image, "tiff:Model"), None),
        lens=_safely(lambda: _xmp_text(image, "exifEX:LensModel"), None),
        datetime_original=_safely(lambda: parse_datetime(xmp_property(image, "exif:DateTimeOriginal")), None),
    )
    segments = _safely(lambda: read_segments(image), Segments())
    placed = [
        *((segments.exif_at, found) for found in (standard, *maker_note, lens)),
        (segments.xmp_at, xmp),
        *segments.found,
    ]
    placed.sort(key=lambda item: item[0])  # stable: the EXIF sources keep their inner order
    iptc = _safely(lambda: iptc_datetime(image), Found(preferred=False))
    return [found for _, found in placed] + [iptc]


def orientation_to_apply(image: Image.Image, exif: ExifData) -> int:
    """The EXIF orientation (1..8) still to be applied to this Pillow image to show it upright.

    1 for HEIF, whose decoder (pillow-heif) already rotated the pixels; the file's orientation
    otherwise (1 when absent or invalid).
    """
    if "original_orientation" in image.info:
        return 1
    return exif.orientation or 1


def _safely(read: Callable[[], T], default: T) -> T:
    """Run one field's reader; a broken field must not cost the others."""
    try:
        return read()
    except Exception:
        logger.debug("unreadable EXIF field", exc_info=True)
        return default


def _exif_datetime_original(tag: Callable[[int], object]) -> datetime | None:
    """DateTimeOriginal with its UTC offset (OffsetTimeOriginal, else OffsetTime)."""
    value = tag(_Base.DateTimeOriginal)
    if value is None:
        return None
    offset = tag(_Base.OffsetTimeOriginal)
    if offset is None:
        offset = tag(_Base.OffsetTime)
    return parse_datetime(value, offset)


def _xmp_text(image: Image.Image, name: str) -> str | None:
    """A cleaned XMP property: the fallback exiftool also uses when EXIF lacks the value."""
    value = xmp_property(image, name)
    return clean_text(html.unescape(value)) if value is not None else None


def _orientation(image: Image.Image, ifd0: Mapping[int, object]) -> int | None:
    applied = decoder_applied_orientation(image)
    if applied is not None:
        return applied
    value = ifd0.get(_Base.Orientation)
    if value is None:
        text = _xmp_text(image, "tiff:Orientation")
        value = int(text) if text is not None and text.isdecimal() and len(text) < 4 else None
    return as_orientation(value)


def _stored_size(image: Image.Image) -> tuple[int | None, int | None]:
    """The pixel size as stored; pillow-heif reports it after its rotation, so undo a quarter turn."""
    width, height = image.size
    if not (isinstance(width, int) and isinstance(height, int)) or width <= 0 or height <= 0:
        return None, None
    applied = decoder_applied_orientation(image)
    if applied is not None and applied >= 5:
        return height, width
    return width, height


def _gps(gps_ifd: Mapping[int, object]) -> GpsPosition | None:
    return gps_position(dict(gps_ifd)) if gps_ifd else None


def format_exposure(seconds: float | None) -> str | None:
    """An exposure time as photographers write it: "1/250 s", "1/3 s", "0.8 s", "2.5 s", "30 s".

    Times under a second that are close to 1/N (within 3%) are shown as that fraction; others
    (0.8 s, 0.6 s) as decimals. None, zero, negative and non-finite times give None.
    """
    if seconds is None or not (seconds > 0) or seconds == float("inf"):
        return None
    if seconds >= 1:
        text = f"{seconds:.1f}".rstrip("0").rstrip(".")
        return f"{text} s"
    denominator = round(1 / seconds)
    if denominator >= 2 and abs(1 / denominator - seconds) <= 0.03 * seconds:
        return f"1/{denominator} s"
    text = f"{seconds:.2f}".rstrip("0").rstrip(".")
    return f"{text} s"
