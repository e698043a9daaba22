"""Camera values from JPEG segments other than EXIF: Canon CIFF, Olympus APP12, Casio QVCI, FLIR, IPTC.

Cameras from before EXIF was common (Canon PowerShot A5, Olympus D-320L, Casio QV-7000SX) wrote
their metadata in segments of their own, FLIR thermal cameras keep the lens in theirs, and news
software (Photo Mechanic) writes the capture time as IPTC. exiftool reads all of these; the
layouts and priorities here follow its tables (CanonRaw.pm, APP12.pm, Casio.pm, FLIR.pm,
IPTC.pm, Exif.pm's Composite:DateTimeOriginal). The segments are the ones Pillow already keeps
in `image.applist` at open time: nothing is read from the file and no pixel is decoded. Every
offset, size, count and nesting depth is checked, and no reader raises.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image

from core.exif_found import Found
from core.exif_tiff import ByteView
from core.exif_values import as_ascii, parse_datetime

logger = logging.getLogger(__name__)

# Segments looked at (a JPEG has a handful; a hostile one may have thousands of empty ones).
MAX_SEGMENTS = 1000
# CIFF: directory entries read in all, and nesting depth of its heaps.
MAX_CIFF_ENTRIES = 2000
MAX_CIFF_DEPTH = 8
# FLIR: bytes of concatenated chunks kept, and records in its index.
MAX_FLIR_BYTES = 16 * 1024 * 1024
MAX_FLIR_RECORDS = 1000
# APP12 "tag=value" tokens read.
MAX_APP12_TOKENS = 2000

_EXIF_SIGNATURE = b"Exif\x00\x00"
_XMP_SIGNATURE = b"http://ns.adobe.com/xap/1.0/\x00"


@dataclass(frozen=True, slots=True)
class Segments:
    """The proprietary sources of a JPEG, each at its segment's index, and where EXIF and XMP sit."""

    found: tuple[tuple[int, Found], ...] = ()
    exif_at: int = 0
    xmp_at: int = 1


def read_segments(image: Image.Image) -> Segments:
    """What the non-EXIF segments of an opened JPEG say; empty for other formats. Never raises."""
    applist = getattr(image, "applist", None)
    if not isinstance(applist, list):
        return Segments()
    segments = [
        (name, data)
        for name, data in applist[:MAX_SEGMENTS]
        if isinstance(name, str) and isinstance(data, bytes)
    ]
    found: list[tuple[int, Found]] = []
    for index, (name, data) in enumerate(segments):
        reader = _reader_for(name, data)
        if reader is not None:
            found.extend((index, item) for item in _safely(reader, data))
    flir = _safely(_flir, b"".join(_flir_chunks(segments)))
    if flir:
        last_chunk = max(index for index, (_, data) in enumerate(segments) if data.startswith(b"FLIR\x00"))
        found.extend((last_chunk, item) for item in flir)
    return Segments(
        found=tuple(found),
        exif_at=_first_index(segments, "APP1", _EXIF_SIGNATURE),
        xmp_at=_first_index(segments, "APP1", _XMP_SIGNATURE),
    )


def _safely(reader: Callable[[bytes], list[Found]], data: bytes) -> list[Found]:
    try:
        return reader(data)
    except Exception:  # a hostile segment costs only its own values
        logger.debug("unreadable JPEG segment", exc_info=True)
        return []


def _first_index(segments: Sequence[tuple[str, bytes]], name: str, signature: bytes) -> int:
    return next(
        (index for index, (kind, data) in enumerate(segments) if kind == name and data.startswith(signature)),
        len(segments),
    )


def _reader_for(name: str, data: bytes) -> Callable[[bytes], list[Found]] | None:
    if name == "APP0" and data[:2] in (b"II", b"MM") and data[6:14] == b"HEAPJPGM":
        return _ciff
    if name == "APP12" and (b"[picture info]" in data or b"Type=" in data):
        return _picture_info
    if name == "APP1" and data.startswith(b"QVCI\x00"):
        return _qvci
    return None


def _unix_time(seconds: int | None) -> datetime | None:
    """exiftool's ConvertUnixTime: seconds since 1970 as a UTC wall-clock time (naive)."""
    if seconds is None or seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


# --- Canon CIFF (APP0 "II....HEAPJPGM"): make, model, capture time, focal length ---------------

_CIFF_MAKE_MODEL = 0x080A
_CIFF_TIME_STAMP = 0x180E
_CIFF_FOCAL_LENGTH = 0x1029


def _ciff(data: bytes) -> list[Found]:
    """A CIFF heap: the last 4 bytes of a heap give its directory's offset in the heap; entries
    are (tag, size, offset); tag bits 0x3800 give the type (0x2800/0x3000: a sub-heap), bit 0x4000
    means the 8-byte value sits in the entry itself. Offsets count from the heap's start.

    Make, Model and DateTimeOriginal have normal priority in exiftool; FocalLength has Priority 0.
    """
    view = ByteView(data, little=data.startswith(b"II"))
    header_length = view.u32(2)
    if header_length is None or not 14 <= header_length < len(data):
        return []
    walk = _CiffWalk(values={}, seen=set())
    _ciff_heap(view, header_length, len(data) - header_length, walk, 0)
    values = walk.values
    make = model = None
    make_model = values.get(_CIFF_MAKE_MODEL)
    if make_model is not None:
        make, model = as_ascii(make_model[:6]), as_ascii(make_model[6:])
    stamp = values.get(_CIFF_TIME_STAMP)
    moment = _unix_time(ByteView(stamp, view.little).u32(0)) if stamp is not None else None
    focal = values.get(_CIFF_FOCAL_LENGTH)
    focal_mm = ByteView(focal, view.little).u16(2) if focal is not None else None
    return [
        Found(make=make, model=model, datetime_original=moment),
        Found(preferred=False, focal_length=float(focal_mm) if focal_mm else None),
    ]


@dataclass(slots=True)
class _CiffWalk:
    """What a CIFF walk collected and what it may still do: `MAX_CIFF_ENTRIES` entries in all,
    each directory once (so a heap that points back at itself ends)."""

    values: dict[int, bytes]
    seen: set[int]
    entries_left: int = MAX_CIFF_ENTRIES


def _ciff_heap(view: ByteView, start: int, size: int, walk: _CiffWalk, depth: int) -> None:
    """Collect the small values of a heap and its sub-heaps into `walk.values` (first one per tag)."""
    directory_offset = view.u32(start + size - 4) if size >= 4 else None
    if directory_offset is None or directory_offset >= size or depth > MAX_CIFF_DEPTH:
        return
    directory = start + directory_offset
    count = view.u16(directory)
    if count is None or directory in walk.seen:
        return
    walk.seen.add(directory)
    for index in range(count):
        walk.entries_left -= 1
        if walk.entries_left < 0:
            return
        entry = directory + 2 + 10 * index
        tag, length, offset = view.u16(entry), view.u32(entry + 2), view.u32(entry + 6)
        if tag is None or length is None or offset is None or tag & 0x8000:
            return  # exiftool: "Bad CRW directory entry"
        kind, in_entry, tag_id = (tag >> 8) & 0x38, tag & 0x4000, tag & 0x3FFF
        inside = offset + length <= size
        if kind in (0x28, 0x30) and not in_entry:
            if inside:
                _ciff_heap(view, start + offset, length, walk, depth + 1)
            continue
        if in_entry:
            value = view.take(entry + 2, 8)
        else:
            value = view.take(start + offset, min(length, 4096)) if inside else None
        if value is not None:
            walk.values.setdefault(tag_id, value)


# --- Olympus / Agfa / Polaroid APP12 "[picture info]" text --------------------------------------

# "tag=value" pairs as exiftool's APP12.pm finds them: a tag is a run of word characters, "#" or
# "-" before "="; its value runs to the next tag, "[" or the end of the line. exiftool does this
# with one backtracking expression, which takes minutes on 64 KiB of "[" or of letters; here a
# tag can only start where a run starts and the run is matched possessively, so it is linear.
_APP12_TAG = re.compile(r"(?<![\w#-])([\w#-]++)=", re.ASCII)
_APP12_LINE_BREAKS = re.compile(r"[\r\n\0]")
_APP12_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
_LEADING_LETTERS = re.compile(r"^[A-Za-z ]*")


def _app12_tags(data: bytes) -> dict[str, str]:
    """The first value of every tag in an APP12 text segment ("[section]" headers are skipped)."""
    tags: dict[str, str] = {}
    tokens = 0
    for line in _APP12_LINE_BREAKS.split(data.decode("latin-1")):
        matches = list(_APP12_TAG.finditer(line))
        for index, match in enumerate(matches):
            tokens += 1
            if tokens > MAX_APP12_TOKENS:
                return tags
            end = matches[index + 1].start() if index + 1 < len(matches) else len(line)
            value = line[match.end() : end].split("[", 1)[0]
            value = _APP12_UNPRINTABLE.split(value, maxsplit=1)[0].strip()
            if value:
                tags.setdefault(match.group(1), value)
    return tags


def _picture_info(data: bytes) -> list[Found]:
    """TimeDate (Unix seconds or a date), Shutter or shtr (microseconds) and FNumber ("F2.8").

    The whole table has Priority 0 in exiftool: it only fills what EXIF lacks.
    """
    tags = _app12_tags(data)
    shutter = _number(tags.get("Shutter") or tags.get("shtr"))
    f_number = _number(_LEADING_LETTERS.sub("", tags.get("FNumber", "")))
    return [
        Found(
            preferred=False,
            datetime_original=_picture_info_time(tags.get("TimeDate")),
            exposure_time=shutter * 1e-6 if shutter else None,
            f_number=f_number or None,
        )
    ]


def _picture_info_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    if value.isdecimal():
        return _unix_time(int(value)) if len(value) <= 11 else None
    return parse_datetime(value)


def _number(text: str | None) -> float | None:
    """A positive finite decimal number, or None."""
    if not text or len(text) > 32:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if 0 < number < 1e12 else None


# --- Casio QV-7000SX APP1 "QVCI": capture time ---------------------------------------------------


def _qvci(data: bytes) -> list[Found]:
    """DateTimeOriginal is string[20] at byte 0x4D of the segment, as "1998.10.24.12.08.57"."""
    text = as_ascii(data[0x4D : 0x4D + 20])
    if text is None:
        return []
    text = re.sub(r"^(\d+:\d+:\d+):", r"\1 ", text.replace(".", ":"))
    return [Found(datetime_original=parse_datetime(text))]


# --- FLIR thermal cameras: lens from the CameraInfo record of the APP1 "FLIR" FFF data ----------


def _flir_chunks(segments: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """The FLIR data split over APP1 "FLIR\\0" segments (8-byte headers; byte 6 is the chunk
    number, byte 7 the last chunk number), in chunk order; [] when incomplete or inconsistent."""
    chunks: dict[int, bytes] = {}
    total = None
    size = 0
    for name, data in segments:
        if name != "APP1" or not data.startswith(b"FLIR\x00") or len(data) < 8:
            continue
        if total is None:
            total = data[7] + 1
        elif data[7] + 1 != total:
            return []
        size += len(data) - 8
        if size > MAX_FLIR_BYTES:
            return []
        chunks.setdefault(data[6], data[8:])
    if total is None or any(number not in chunks for number in range(total)):
        return []
    return [chunks[number] for number in range(total)]


def _flir(data: bytes) -> list[Found]:
    """FFF: "FFF\\0" header of 0x40 bytes; version at 0x14 (100..199 tells the byte order); the
    record index at the offset stored at 0x18, with the count at 0x1C, 32 bytes per record (type,
    subtype, version, id, offset, length). Record 0x20, CameraInfo, has LensModel at 0x170
    (string[32]); its first 16-bit value (2) tells its own byte order. Normal priority in exiftool.
    """
    if len(data) < 0x40 or data[:4] not in (b"FFF\x00", b"AFF\x00"):
        return []
    view = next(
        (
            candidate
            for candidate in (ByteView(data, little=False), ByteView(data, little=True))
            if 100 <= (candidate.u32(0x14) or 0) < 200
        ),
        None,
    )
    if view is None:
        return []
    index, count = view.u32(0x18), view.u32(0x1C)
    if index is None or count is None:
        return []
    for number in range(min(count, MAX_FLIR_RECORDS)):
        entry = index + 0x20 * number
        if view.u16(entry) != 0x20:
            continue
        offset, length = view.u32(entry + 0x0C), view.u32(entry + 0x10)
        record = view.take(offset, length) if offset is not None and length is not None else None
        if record is None or len(record) < 0x170 + 32:
            return []
        lens = as_ascii(record[0x170 : 0x170 + 32])
        return [Found(lens=lens)] if lens else []
    return []


# --- IPTC DateCreated + TimeCreated (exiftool's Composite:DateTimeOriginal) ---------------------

_IPTC_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})$")
_IPTC_TIME = re.compile(r"(\d{2})(\d{2})(\d{2})([+-]\d{2})?(\d{2})?$")
MAX_IPTC_BYTES = 256 * 1024


def iptc_datetime(image: Image.Image) -> Found:
    """IPTC DateCreated (2:55) with TimeCreated (2:60) as a capture time; an empty Found if absent.

    exiftool builds DateTimeOriginal from them only when the file has no DateTimeOriginal at all
    (a Composite), so the result is low priority and belongs last. The IPTC block is the one
    Pillow took from the Photoshop APP13 segment (resource 0x0404) at open time.
    """
    resources = image.info.get("photoshop")
    block = resources.get(0x0404) if isinstance(resources, dict) else None
    if not isinstance(block, bytes):
        return Found(preferred=False)
    try:
        return Found(preferred=False, datetime_original=_iptc_moment(_iptc_records(block)))
    except Exception:
        logger.debug("unreadable IPTC block", exc_info=True)
        return Found(preferred=False)


def _iptc_records(block: bytes) -> dict[tuple[int, int], bytes]:
    """IIM datasets: 0x1C, record, dataset, 16-bit big-endian size, data (first of each kept)."""
    records: dict[tuple[int, int], bytes] = {}
    view = ByteView(block[:MAX_IPTC_BYTES], little=False)
    position = 0
    while view.u8(position) == 0x1C:
        record, dataset, size = view.u8(position + 1), view.u8(position + 2), view.u16(position + 3)
        if record is None or dataset is None or size is None or size & 0x8000:
            break  # extended sizes are only used for large binary data
        value = view.take(position + 5, size)
        if value is None:
            break
        records.setdefault((record, dataset), value)
        position += 5 + size
    return records


def _iptc_moment(records: dict[tuple[int, int], bytes]) -> datetime | None:
    date_text = as_ascii(records.get((2, 55), b""))
    time_text = as_ascii(records.get((2, 60), b""))
    date = _IPTC_DATE.match(date_text or "")
    time = _IPTC_TIME.match(time_text or "")
    if date is None or time is None:
        return None
    hour, minute, second, offset_hours, offset_minutes = time.groups()
    text = f"{date[1]}:{date[2]}:{date[3]} {hour}:{minute}:{second}"
    offset = f"{offset_hours}:{offset_minutes or '00'}" if offset_hours else None
    return parse_datetime(text, offset)
