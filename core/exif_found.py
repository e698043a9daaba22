"""Camera values found in one place of a file, and exiftool's rule for which place wins.

A photo may state its make, capture time or ISO several times: in standard EXIF, in XMP, in the
maker's private MakerNote, or in an old proprietary JPEG segment (Canon CIFF, Olympus APP12...).
exiftool reads them in file order and keeps, per value, the last one from a source of normal
priority, or else the first one from a low-priority source (its "Priority => 0" tags: values it
deems less reliable than EXIF, which only fill gaps). `resolve` applies that rule, so the reader
reports what exiftool reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Found:
    """Values read from one source; `preferred` is False for sources that only fill gaps.

    Strings are already cleaned (core.untrusted_text) and numbers validated by the source's reader.
    """

    preferred: bool = True
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    datetime_original: datetime | None = None
    exposure_time: float | None = None
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None


def resolve(sources: Iterable[Found], field: Callable[[Found], T | None]) -> T | None:
    """The value exiftool keeps: the last preferred one, else the first low-priority one.

    `sources` are in the order exiftool reads them (file order; a maker note at its place inside
    the Exif IFD).
    """
    preferred: T | None = None
    fallback: T | None = None
    for source in sources:
        value = field(source)
        if value is None:
            continue
        if source.preferred:
            preferred = value
        elif fallback is None:
            fallback = value
    return preferred if preferred is not None else fallback
