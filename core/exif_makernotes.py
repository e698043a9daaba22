"""Values from makers' private MakerNote data that standard EXIF lacks or states less precisely.

Some cameras keep the ISO, the lens or the exact exposure only in their MakerNote (EXIF tag
0x927C), in a layout of their own. The layouts and the precedence over EXIF follow exiftool's
tables (Image/ExifTool/Canon.pm, Casio.pm, Nikon.pm, Olympus.pm, Kodak.pm, Reconyx.pm and
MakerNotes.pm for how each maker's note is recognised). Only the few values `ExifData` reports
are read. Every offset, count and size is checked (`core.exif_tiff`); nothing here raises on
hostile data (`read_maker_note` catches what slips through) and nothing reads outside the EXIF
block.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime

from core.exif_found import Found
from core.exif_tiff import LONG_TYPE, ByteView, Entry, guess_order, read_ifd, tiff_header

logger = logging.getLogger(__name__)

_EXIF_IFD_POINTER = 0x8769
_MAKER_NOTE = 0x927C
_NO_VALUE = 0xFFFF  # what several makers store for "not recorded"


def read_maker_note(exif_block: bytes, make: str | None) -> list[Found]:
    """The values of the MakerNote inside a raw EXIF block (optionally "Exif\\0\\0" prefixed).

    `make` is the IFD0 Make, which (as in exiftool) decides how a note without a signature is
    read. Returns [] when there is no note, it is of an unknown kind, or it is broken.
    """
    try:
        located = _locate(exif_block.removeprefix(b"Exif\x00\x00"))
        if located is None:
            return []
        view, note = located
        reader = _reader_for(note.raw, make or "")
        return reader(view, note) if reader is not None else []
    except Exception:  # hostile data must never cost the rest of the reading
        logger.debug("unreadable maker note", exc_info=True)
        return []


def _locate(tiff: bytes) -> tuple[ByteView, Entry] | None:
    """The TIFF view and the MakerNote entry of the Exif IFD."""
    header = tiff_header(tiff)
    if header is None:
        return None
    view, first = header
    pointer = read_ifd(view, first).get(_EXIF_IFD_POINTER)
    offsets = pointer.ints(view.little) if pointer is not None else None
    if not offsets:
        return None
    note = read_ifd(view, offsets[0]).get(_MAKER_NOTE)
    return (view, note) if note is not None else None


_Reader = Callable[[ByteView, Entry], list[Found]]


def _reader_for(raw: bytes, make: str) -> _Reader | None:
    """The reader for a note, recognised as exiftool's MakerNotes.pm does (signature, then Make)."""
    if raw.startswith(b"Nikon\x00\x02"):
        return _nikon
    if make.startswith("Canon"):
        return _canon
    if raw.startswith((b"QVC\x00", b"DCI\x00")):
        return _casio_type2
    if make.startswith("CASIO"):
        return _casio
    if make.startswith("EASTMAN KODAK"):
        return _kodak
    if raw.startswith((b"OLYMP\x00", b"EPSON\x00", b"OLYMPUS\x00", b"OM SYSTEM\x00")):
        return _olympus
    if raw.startswith(b"\x01\xf1") and (raw[2:4] in (b"\x02\x00", b"\x03\x00") or make == "RECONYX"):
        return _reconyx
    if make.upper().startswith("NIKON") and not raw.startswith(b"Nikon\x00"):
        return _nikon_headerless
    return None


# --- Nikon: ISO actually used (tag 0x0002, "0 200"; a leading 1 marks the Hi ISO modes) --------


def _nikon(view: ByteView, note: Entry) -> list[Found]:
    """ "Nikon\\0\\2" notes hold a TIFF structure of their own 10 bytes in, offsets counted from it."""
    header = tiff_header(note.raw[10:])
    if header is None:
        return []
    inner, first = header
    return _nikon_iso(inner, read_ifd(inner, first))


def _nikon_headerless(view: ByteView, note: Entry) -> list[Found]:
    view = guess_order(view, note.position)
    return _nikon_iso(view, read_ifd(view, note.position))


def _nikon_iso(view: ByteView, entries: dict[int, Entry]) -> list[Found]:
    entry = entries.get(0x0002)
    values = entry.ints(view.little) if entry is not None else None
    if not values:
        return []
    iso = values[1] if len(values) >= 2 else values[0]
    # exiftool: Priority 0, "the EXIF ISO is more reliable".
    return [Found(preferred=False, iso=iso)] if 0 < iso < _NO_VALUE else []


# --- Canon: lens name, and the ISO computed from CameraSettings and ShotInfo -------------------

_CANON_ISO_CODES = {16: 50, 17: 100, 18: 200, 19: 400, 20: 800}


def _canon(view: ByteView, note: Entry) -> list[Found]:
    """A plain IFD at the start of the note, offsets counted from the TIFF header."""
    view = guess_order(view, note.position)
    entries = read_ifd(view, note.position)
    fix = _canon_base_fix(view, note, entries)
    if fix:
        entries = read_ifd(view, note.position, fix)
    found: list[Found] = []
    lens = entries.get(0x0095)
    lens_name = lens.text() if lens is not None else None
    if lens_name:
        found.append(Found(lens=lens_name))
    iso = _canon_iso(view, entries)
    if iso is not None:
        found.append(Found(preferred=False, iso=iso))  # a Composite of Priority 0 in exiftool
    return found


def _canon_base_fix(view: ByteView, note: Entry, entries: dict[int, Entry]) -> int:
    """How far the note's values moved since the camera wrote it (exiftool's FixBase for Canon).

    Editors that move the maker note without rewriting its offsets leave them pointing at the
    old place; Canon notes end with a TIFF-like footer ("II*\0" + the note's original offset)
    that tells by how much. A footer is ignored when the values already end right before it.
    """
    footer = note.raw[-8:]
    if len(note.raw) <= 8 or footer[:4] != (b"II*\x00" if view.little else b"MM\x00*"):
        return 0
    original = ByteView(footer, view.little).u32(4)
    fix = note.position - original if original is not None else 0
    values_end = max(
        (entry.position + len(entry.raw) for entry in entries.values() if len(entry.raw) > 4), default=0
    )
    if not fix or note.position + len(note.raw) - 8 - values_end in (0, 1):
        return 0
    return fix


def _canon_record(view: ByteView, entry: Entry | None) -> list[int] | None:
    """A Canon binary record as signed 16-bit values; its first value must be its byte size."""
    if entry is None or len(entry.raw) < 2:
        return None
    record = ByteView(entry.raw, view.little)
    if record.u16(0) != len(entry.raw):
        return None
    values = [record.s16(2 * index) for index in range(len(entry.raw) // 2)]
    return [value for value in values if value is not None]


def _canon_iso(view: ByteView, entries: dict[int, Entry]) -> int | None:
    """exiftool's Composite:ISO: CameraISO when numeric, else BaseISO * AutoISO / 100.

    CameraSettings[16] is CameraISO: 0x4000 | ISO, or a code (16..20 for ISO 50..800; 15 "Auto").
    ShotInfo[1] and [2] are AutoISO and BaseISO as APEX-like steps: 100 * 2^(v/32) (/32 for base).
    """
    settings = _canon_record(view, entries.get(0x0001))
    if settings is not None and len(settings) > 16:
        code = settings[16]
        numeric = 0 < code < 0x7FFF and code & 0x4000
        camera_iso = code & 0x3FFF if numeric else _CANON_ISO_CODES.get(code)
        if camera_iso:
            return camera_iso
    shot = _canon_record(view, entries.get(0x0004))
    if shot is None or len(shot) <= 2 or shot[2] == 0:
        return None
    auto = math.exp(shot[1] / 32 * math.log(2)) * 100
    base = math.exp(shot[2] / 32 * math.log(2)) * 100 / 32
    iso = base * auto / 100
    return round(iso) if math.isfinite(iso) and 0 < iso < 1_000_000 else None


# --- Casio: ISO (Priority 0) ------------------------------------------------------------------


def _casio(view: ByteView, note: Entry) -> list[Found]:
    """Type 1: a plain IFD at the start of the note; ISO is tag 0x0014."""
    view = guess_order(view, note.position)
    return _casio_iso(view, read_ifd(view, note.position).get(0x0014))


def _casio_type2(view: ByteView, note: Entry) -> list[Found]:
    """Type 2 ("QVC\\0"): the IFD starts 6 bytes in; ISO is tag 0x3014."""
    view = guess_order(view, note.position + 6)
    return _casio_iso(view, read_ifd(view, note.position + 6).get(0x3014))


def _casio_iso(view: ByteView, entry: Entry | None) -> list[Found]:
    values = entry.ints(view.little) if entry is not None else None
    if not values or values[0] >= _NO_VALUE:
        return []
    return [Found(preferred=False, iso=values[0])]


# --- Kodak: the exposure actually used, which exiftool prefers to the EXIF one ----------------


def _kodak(view: ByteView, note: Entry) -> list[Found]:
    """Binary records: "KDK INFO" (big-endian) / "KDK" (little-endian) from byte 8, or "type 3".

    Offsets from Kodak.pm: Main has FNumber at 0x1E (1/100), ExposureTime at 0x20 (1/100000 s),
    ISO at 0x60; Type3 has them at 0x3C, 0x38 and 0x4E. These tags have normal priority: exiftool
    reports them instead of the (rounded) EXIF values. 0 and 0xFFFF mean "not recorded".
    """
    raw = note.raw
    if raw.startswith(b"KDK"):
        record = ByteView(raw[8:], little=not raw.startswith(b"KDK INFO"))
        exposure, f_number, iso = record.u32(0x20), record.u16(0x1E), record.u16(0x60)
    elif len(raw) > 12 and raw[12] == 0x07 and not raw.startswith((b"MM", b"II", b"AOC")):
        record = ByteView(raw, little=False)
        exposure, f_number, iso = record.u32(0x38), record.u16(0x3C), record.u16(0x4E)
    else:
        return []
    return [
        Found(
            exposure_time=exposure / 1e5 if exposure else None,
            f_number=f_number / 100 if f_number and f_number != _NO_VALUE else None,
            iso=iso if iso and iso != _NO_VALUE else None,
        )
    ]


# --- Olympus: lens name from the Equipment directory ------------------------------------------


def _olympus(view: ByteView, note: Entry) -> list[Found]:
    """ "OLYMP\\0": IFD 8 bytes in, offsets from the TIFF header; "OLYMPUS\\0II\\3\\0" and
    "OM SYSTEM\\0": IFD 12 or 16 bytes in, offsets from the note's start. Equipment (0x2010) is
    a sub-IFD (LONG/IFD type: its offset) or embedded in place (UNDEFINED); LensModel is 0x0203.
    """
    raw = note.raw
    if raw.startswith(b"OLYMPUS\x00"):
        start, base = note.position + 12, note.position
    elif raw.startswith(b"OM SYSTEM\x00"):
        start, base = note.position + 16, note.position
    else:
        start, base = note.position + 8, 0
    view = guess_order(view, start)
    equipment = read_ifd(view, start, base).get(0x2010)
    if equipment is None:
        return []
    if equipment.kind in (LONG_TYPE, 13):
        offsets = equipment.ints(view.little)
        if not offsets:
            return []
        position = base + offsets[0]
    else:
        position = equipment.position
    lens = read_ifd(view, position, base).get(0x0203)
    name = lens.text() if lens is not None else None
    return [Found(lens=name)] if name else []


# --- Reconyx (trail cameras): capture time, Priority 0 ("not as reliable as EXIF") -------------


def _reconyx(view: ByteView, note: Entry) -> list[Found]:
    """Little-endian 16-bit words; word 0x0B starts second, minute, hour, month, day, year."""
    record = ByteView(note.raw, little=True)
    words = [record.u16(22 + 2 * index) for index in range(6)]
    if any(word is None for word in words):
        return []
    values = [word for word in words if word is not None]
    if values[0] & 0xFF00 and not values[0] & 0xFF:  # some write these big-endian (Reconyx.pm)
        values = [(word >> 8) | ((word & 0xFF) << 8) for word in values]
    second, minute, hour, month, day, year = values
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return []
    return [Found(preferred=False, datetime_original=moment)]
