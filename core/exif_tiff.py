"""Bounded reading of TIFF-style structures (IFDs, binary records) from untrusted bytes.

Makers' private data (MakerNote) and some proprietary JPEG segments are laid out like TIFF
directories, but with their own base offsets and byte orders, so Pillow cannot read them. These
helpers read them directly from the raw bytes. Every read is range-checked: an offset or count
pointing outside the data gives None (or is skipped), never an exception, and the work is capped
by `MAX_ENTRIES` per directory and `MAX_VALUE_BYTES` per value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from core.exif_values import as_ascii

# No camera writes more than a few hundred entries in one directory; a lying count is cut here.
MAX_ENTRIES = 1000
# The largest single value read (a maker note may carry a preview image; we never want one).
MAX_VALUE_BYTES = 64 * 1024

# TIFF field types: bytes per element.
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_INT_FORMATS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I"}
ASCII_TYPE = 2
LONG_TYPE = 4
IFD_TYPE = 13


@dataclass(frozen=True, slots=True)
class ByteView:
    """Range-checked integer reads from bytes in one byte order."""

    data: bytes
    little: bool

    def _unpack(self, fmt: str, position: int) -> int | None:
        size = struct.calcsize(fmt)
        if position < 0 or position + size > len(self.data):
            return None
        value: int = struct.unpack_from(("<" if self.little else ">") + fmt, self.data, position)[0]
        return value

    def u8(self, position: int) -> int | None:
        return self._unpack("B", position)

    def u16(self, position: int) -> int | None:
        return self._unpack("H", position)

    def s16(self, position: int) -> int | None:
        return self._unpack("h", position)

    def u32(self, position: int) -> int | None:
        return self._unpack("I", position)

    def s32(self, position: int) -> int | None:
        return self._unpack("i", position)

    def take(self, position: int, size: int) -> bytes | None:
        """`size` bytes at `position`, or None when they are not all there."""
        if position < 0 or size < 0 or position + size > len(self.data):
            return None
        return self.data[position : position + size]

    def with_order(self, little: bool) -> ByteView:
        return ByteView(self.data, little)


@dataclass(frozen=True, slots=True)
class Entry:
    """One IFD entry: its type, element count, the absolute position of its value and the value bytes."""

    kind: int
    count: int
    position: int
    raw: bytes

    def ints(self, little: bool) -> tuple[int, ...] | None:
        """The value as integers for the integer types (BYTE, SHORT, LONG, signed, IFD), else None."""
        fmt = _INT_FORMATS.get(self.kind)
        if fmt is None:
            return None
        return struct.unpack(("<" if little else ">") + fmt * self.count, self.raw)

    def text(self, max_length: int = 200) -> str | None:
        """The value as cleaned text (NUL terminated, like EXIF ASCII), for ASCII and UNDEFINED types."""
        if self.kind not in (ASCII_TYPE, 7, 1):
            return None
        return as_ascii(self.raw, max_length)


def read_ifd(view: ByteView, offset: int, base: int = 0) -> dict[int, Entry]:
    """The entries of the IFD at `offset` of `view.data`, keyed by tag; {} when there is none.

    Values longer than 4 bytes live at `base` + their stored offset: 0 for offsets counted from the
    TIFF header, the maker note's own start for makers that count from there. Entries whose type is
    unknown or whose value lies (even partly) outside the data are left out; the first occurrence
    of a repeated tag is kept.
    """
    count = view.u16(offset)
    if count is None or count == 0:
        return {}
    entries: dict[int, Entry] = {}
    for index in range(min(count, MAX_ENTRIES)):
        start = offset + 2 + 12 * index
        tag, kind, number = view.u16(start), view.u16(start + 2), view.u32(start + 4)
        if tag is None or kind is None or number is None:
            break
        size = _TYPE_SIZES.get(kind, 0) * number
        if size == 0 or size > MAX_VALUE_BYTES or tag in entries:
            continue
        if size <= 4:
            position: int | None = start + 8
        else:
            pointer = view.u32(start + 8)
            position = None if pointer is None else base + pointer
        raw = view.take(position, size) if position is not None else None
        if raw is not None and position is not None:
            entries[tag] = Entry(kind, number, position, raw)
    return entries


def tiff_header(data: bytes) -> tuple[ByteView, int] | None:
    """The byte order and first-IFD offset of a TIFF structure ("II*\\0" or "MM\\0*"), or None."""
    if data[:4] == b"II*\x00":
        view = ByteView(data, little=True)
    elif data[:4] == b"MM\x00*":
        view = ByteView(data, little=False)
    else:
        return None
    first = view.u32(4)
    return (view, first) if first is not None else None


def guess_order(view: ByteView, offset: int) -> ByteView:
    """The byte order in which the IFD at `offset` looks plausible; `view`'s own order first.

    Several makers (exiftool's "ByteOrder => Unknown") write their maker note in an order that
    need not be the EXIF block's: a directory of 1..500 entries whose first entry has a known
    type is what a real one looks like.
    """
    for little in (view.little, not view.little):
        candidate = view.with_order(little)
        count, kind = candidate.u16(offset), candidate.u16(offset + 4)
        if count is not None and kind is not None and 0 < count <= 500 and kind in _TYPE_SIZES:
            return candidate
    return view
