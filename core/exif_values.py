"""Turning raw EXIF tag values into plain Python values, defensively.

Pillow hands tag values over as whatever the file claims: an `IFDRational` (possibly 0/0), an int,
a tuple when the count is not 1, bytes for BYTE/UNDEFINED types, or a Latin-1 decoded str. A file
can lie about every one of these, so each converter here accepts only the shapes the EXIF
specification allows and answers None for anything else. None of them raise.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from numbers import Rational, Real

from core.analysis_types import GpsPosition
from core.untrusted_text import clean_text

_DATETIME = re.compile(
    r"\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d*)?(.*)"
)
_OFFSET = re.compile(r"\s*(?:([+-])(\d{2}):?(\d{2})|(Z))\s*$")


def as_number(value: object) -> float | None:
    """A finite real number from an int, float or rational; None for 0/0, x/0, NaN, tuples, text."""
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    try:
        if isinstance(value, Rational) and value.denominator == 0:
            return None
        number = float(value)
    except (ArithmeticError, ValueError, TypeError):
        return None
    return number if math.isfinite(number) else None


def as_non_negative(value: object) -> float | None:
    """`as_number`, rejecting negatives (a negative exposure time or focal length is nonsense)."""
    number = as_number(value)
    return number if number is not None and number >= 0 else None


def as_int(value: object) -> int | None:
    """An integer from a SHORT/LONG value, or None for anything that is not one."""
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def as_ascii(value: object, max_length: int = 200) -> str | None:
    """A cleaned string from an EXIF ASCII value.

    EXIF ASCII is NUL terminated: whatever follows the first NUL is padding or garbage (exiftool
    reads it the same way). Pillow decodes ASCII as Latin-1, which is lossless, so the original
    bytes are recovered and decoded as UTF-8 where valid, since that is what modern writers use.
    """
    if isinstance(value, str):
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "replace")
    elif isinstance(value, bytes):
        raw = value
    else:
        return None
    return clean_text(raw.split(b"\x00", 1)[0], max_length)


def as_iso(value: object) -> int | None:
    """ISOSpeedRatings (PhotographicSensitivity): a SHORT whose count the spec leaves open.

    Some cameras (the Nikon D70 among them) store two values with a leading 0, so the first
    non-zero value is the meaningful one.
    """
    if isinstance(value, tuple) and len(value) > 1:
        numbers = [as_int(item) for item in value]
        if any(number is None for number in numbers):
            return None
        value = next((number for number in numbers if number), numbers[0])
    iso = as_int(value)
    return iso if iso is not None and iso >= 0 else None


def as_orientation(value: object) -> int | None:
    """The EXIF Orientation 1..8; 0, 9 and other junk mean "unknown", not "upright"."""
    orientation = as_int(value)
    return orientation if orientation is not None and 1 <= orientation <= 8 else None


def parse_datetime(value: object, offset: object = None) -> datetime | None:
    """An EXIF "YYYY:MM:DD HH:MM:SS" (or XMP "YYYY-MM-DDTHH:MM:SS+01:00") date.

    Aware when a valid OffsetTime* value is given, or else when the text itself ends in an offset
    (XMP does that); naive otherwise. Blank ("    :  :  "), zeroed and out-of-range dates give
    None; sub-seconds are ignored.
    """
    text = as_ascii(value)
    if text is None:
        return None
    match = _DATETIME.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(group or 0) for group in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second)  # EXIF times are local, naive
    except ValueError:
        return None
    zone = parse_utc_offset(offset)
    if zone is None and offset is None and match.group(7).strip():
        zone = parse_utc_offset(match.group(7))
    return moment.replace(tzinfo=zone) if zone is not None else moment


def parse_utc_offset(value: object) -> timezone | None:
    """An OffsetTime* value ("+02:00", "-0530", "Z") as a timezone; None when absent or invalid."""
    text = as_ascii(value)
    if text is None:
        return None
    match = _OFFSET.match(text)
    if match is None:
        return None
    if match.group(4):
        return UTC
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3))
    if hours > 14 or minutes >= 60:  # real offsets run from -12:00 to +14:00
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if sign == "-" else delta)


def _ref_letter(value: object) -> str | None:
    text = as_ascii(value) if isinstance(value, str | bytes) else None
    return text[:1].upper() if text else None


def _ref_byte(value: object) -> int | None:
    if isinstance(value, bytes):
        return value[0] if value else None
    return as_int(value)


def dms_to_degrees(value: object) -> float | None:
    """Degrees from an EXIF (degrees, minutes, seconds) triple of rationals.

    Writers also use (degrees, decimal minutes, 0) and, rarely, fewer elements; negative or
    non-finite parts and minutes or seconds over 60 are rejected.
    """
    parts = value if isinstance(value, tuple) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [as_non_negative(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    values = [number for number in numbers if number is not None]
    if any(number > 60.0001 for number in values[1:]):
        return None
    return sum((number / 60.0**index for index, number in enumerate(values)), 0.0)


def gps_position(gps: dict[int, object]) -> GpsPosition | None:
    """A signed position from the GPS IFD, or None when latitude/longitude are missing or nonsense.

    South and West (GPSLatitudeRef/GPSLongitudeRef) make the value negative; GPSAltitudeRef 1
    means below sea level. 0/0 exactly is what several cameras write without a fix, so it is
    treated as no position.
    """
    latitude = dms_to_degrees(gps.get(2))
    longitude = dms_to_degrees(gps.get(4))
    if latitude is None or longitude is None or latitude > 90 or longitude > 180:
        return None
    if latitude == 0 and longitude == 0:
        return None
    if _ref_letter(gps.get(1)) == "S":
        latitude = -latitude
    if _ref_letter(gps.get(3)) == "W":
        longitude = -longitude
    return GpsPosition(
        latitude=latitude,
        longitude=longitude,
        altitude=_gps_altitude(gps),
        direction=_gps_direction(gps.get(17)),
    )


def _gps_altitude(gps: dict[int, object]) -> float | None:
    altitude = as_number(gps.get(6))
    if altitude is None or abs(altitude) > 100_000:  # from the Dead Sea shore to a stratospheric balloon
        return None
    return -abs(altitude) if _ref_byte(gps.get(5)) == 1 else altitude


def _gps_direction(value: object) -> float | None:
    direction = as_number(value)
    return direction if direction is not None and 0 <= direction <= 360 else None


_FLASH_MODES = {1: "forced", 3: "auto"}


def describe_flash(value: object) -> str | None:
    """A short human description of the EXIF Flash bit field ("fired", "did not fire", "off").

    Bit 0: fired; bits 3-4: mode (1 forced on, 2 forced off, 3 auto); bit 5: no flash unit;
    bit 6: red-eye reduction. Values with reserved bits set are garbage and give None.
    """
    flash = as_int(value)
    if flash is None or not 0 <= flash <= 0x7F:
        return None
    fired = bool(flash & 0x01)
    mode = (flash >> 3) & 0x03
    if flash & 0x20 and not fired:
        return "no flash"
    if not fired:
        if mode == 2:
            return "off"
        return "did not fire (auto)" if mode == 3 else "did not fire"
    details = [_FLASH_MODES[mode]] if mode in _FLASH_MODES else []
    if flash & 0x40:
        details.append("red-eye reduction")
    return f"fired ({', '.join(details)})" if details else "fired"
