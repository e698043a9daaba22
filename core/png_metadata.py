"""Drop PNG metadata chunks that would make Pillow refuse a photo whose pixels are fine.

Pillow guards against compressed text that inflates enormously: a zTXt or iTXt chunk (or an iCCP
profile) that inflates past `PngImagePlugin.MAX_TEXT_CHUNK`, or text adding up past
`MAX_TEXT_MEMORY`, raises ValueError while the file is opened (or, for chunks after the image data,
while it is decoded). Left strict, that refuses the whole photo as "damaged" although only a
caption or a comment was hostile; switching on Pillow's lenient mode would also half-decode
truncated pixels, which is worse. So before Pillow sees a PNG, each such chunk is checked the way
Pillow will check it and dropped from the bytes when it would be refused. Only ancillary chunks
(text, the colour profile, and private chunks Pillow ignores anyway) are ever dropped: without them
the photo is read as sRGB and without its captions, which is what a viewer would show anyway.

The work stays bounded on hostile files: inflation stops at Pillow's per-chunk limit, once the
inflated total reaches the text budget every further compressed chunk is dropped unread, and
metadata chunks past the first `MAX_METADATA_CHUNKS` are dropped unread too (measured: 0.9 s for a
24 MB file of 23,607 bombs, which Pillow alone refuses as damaged).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from PIL import PngImagePlugin

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEADER = struct.Struct(">I4s")
_CRC_SIZE = 4
_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
#: Metadata chunks kept per file (text, and ancillary chunks Pillow does not interpret): cameras
#: and editors write a handful, while a file of millions of tiny ones (a 25 MB upload holds two
#: million) costs Pillow seconds per megabyte to parse, on each of the two opens of a photo.
MAX_METADATA_CHUNKS = 1000


def _is_droppable(kind: bytes) -> bool:
    """Text, or an ancillary chunk (lower-case first letter) that Pillow has no reader for.

    Chunks Pillow does read (transparency, gamma and colour, EXIF, animation frames) can change the
    pixels or the orientation, so they are never counted or dropped here.
    """
    if kind in _TEXT_CHUNKS:
        return True
    return 97 <= kind[0] <= 122 and not hasattr(PngImagePlugin.PngStream, f"chunk_{kind.decode('latin-1')}")


@dataclass(frozen=True)
class Cleaned:
    """The PNG to decode, and how many metadata chunks were left out of it (0: `data` is the input)."""

    data: bytes
    dropped: int


def without_hostile_metadata(data: bytes) -> Cleaned:
    """The PNG with every text or ICC chunk that Pillow would refuse left out; other bytes unchanged.

    A file whose chunk structure is broken is returned from that point on as it is, for Pillow to
    refuse (a damaged file stays damaged); only whole, well-formed chunks are ever removed.
    """
    if not data.startswith(PNG_SIGNATURE):
        return Cleaned(data, 0)
    budget = _TextBudget()
    dropped: list[tuple[int, int]] = []
    metadata = 0
    position = len(PNG_SIGNATURE)
    while position + _HEADER.size <= len(data):
        length, kind = _HEADER.unpack_from(data, position)
        end = position + _HEADER.size + length + _CRC_SIZE
        if end > len(data):
            break
        droppable = _is_droppable(kind)
        metadata += droppable
        if droppable and metadata > MAX_METADATA_CHUNKS:
            dropped.append((position, end))
        elif kind in _TEXT_CHUNKS or kind == b"iCCP":
            body = data[position + _HEADER.size : position + _HEADER.size + length]
            if not budget.accepts(kind, body):
                dropped.append((position, end))
        if kind == b"IEND":
            break
        position = end
    if not dropped:
        return Cleaned(data, 0)
    parts, kept_from = [], 0
    for start, end in dropped:
        parts.append(data[kept_from:start])
        kept_from = end
    parts.append(data[kept_from:])
    return Cleaned(b"".join(parts), len(dropped))


class _TextBudget:
    """Pillow's checks on one PNG's metadata, replayed: per-chunk inflation and the text total."""

    def __init__(self) -> None:
        self.text = 0  # what Pillow's PngStream.check_text_memory will have counted
        self.inflated = 0  # work done here, for the bound on hostile files

    def accepts(self, kind: bytes, body: bytes) -> bool:
        """Whether Pillow will read this chunk without raising; counts it when so."""
        if kind == b"tEXt":
            return self._count(len(body.partition(b"\0")[2]))
        if kind == b"iCCP":
            _, _, rest = body.partition(b"\0")
            return rest[:1] == b"\0" and self._inflates(rest[1:]) is not None
        if kind == b"zTXt":
            _, _, rest = body.partition(b"\0")
            if rest[:1] not in (b"", b"\0"):
                return False  # an unknown compression method is a SyntaxError in Pillow
            size = self._inflates(rest[1:])
            return size is not None and self._count(size)
        return self._accepts_itxt(body)

    def _accepts_itxt(self, body: bytes) -> bool:
        _, _, rest = body.partition(b"\0")
        if len(rest) < 2:
            return True  # Pillow skips it
        compressed, method, fields = rest[0], rest[1], rest[2:].split(b"\0", 2)
        if len(fields) < 3:
            return True  # Pillow skips it
        text = fields[2]
        if compressed and method == 0:
            size = self._inflates(text)
            return size is not None and self._count(size)
        return self._count(len(text))

    def _inflates(self, stream: bytes) -> int | None:
        """The inflated size when within Pillow's per-chunk limit (0 for a broken stream, which
        Pillow ignores), None when past it or when the budget for this file's work is spent."""
        if self.inflated > PngImagePlugin.MAX_TEXT_MEMORY:
            return None
        inflater = zlib.decompressobj()
        try:
            size = len(inflater.decompress(stream, PngImagePlugin.MAX_TEXT_CHUNK))
        except zlib.error:
            return 0
        self.inflated += size
        return None if inflater.unconsumed_tail else size

    def _count(self, size: int) -> bool:
        if self.text + size > PngImagePlugin.MAX_TEXT_MEMORY:
            return False
        self.text += size
        return True
