"""Finding the EXIF block of an opened image without decoding its pixels.

`Image.getexif()` is not safe to call on a freshly opened upload: on a PNG without an early eXIf
chunk it decodes the whole image to look behind the pixel data (a 30000x30000 PNG then costs
gigabytes). So the raw block is taken from `image.info`, where every plugin leaves it at open time,
and for PNG the chunks after IDAT are walked by seeking over them, never inflating anything.
"""

from __future__ import annotations

import contextlib
import io
import re
import struct

from PIL import Image

# An EXIF block in JPEG is at most 64 KiB; other containers allow more, but nothing legitimate
# comes near this, and it bounds the memory a hostile eXIf chunk can make us read.
MAX_EXIF_BYTES = 1024 * 1024
# PNG chunk headers inspected when looking for a late eXIf chunk (a 20 MB PNG written with
# ordinary 8 KiB IDAT chunks has about 2,500).
MAX_PNG_CHUNKS = 20_000
# XMP scanned for the few properties read from it.
MAX_XMP_BYTES = 1024 * 1024

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_exif(image: Image.Image, block: bytes | None) -> Image.Exif:
    """The parsed EXIF of an opened image (empty when there is none); may raise on broken data.

    `block` is the image's `exif_block`, found once by the caller, who reads it for maker notes too.
    """
    exif = Image.Exif()
    if block is not None:
        exif.load(block)
    elif hasattr(image, "tag_v2"):
        # TIFF: the EXIF IFD0 is the image's own first IFD, read from the file, not decoded.
        return image.getexif()
    return exif


def exif_block(image: Image.Image) -> bytes | None:
    """The raw EXIF (TIFF structure, optionally "Exif\\0\\0" prefixed) the container carries."""
    block = image.info.get("exif")
    if isinstance(block, bytes) and block:
        return block[:MAX_EXIF_BYTES]
    raw_profile = image.info.get("Raw profile type exif")
    if isinstance(raw_profile, str):
        return _imagemagick_raw_profile(raw_profile)
    if image.format == "PNG":
        return _late_png_exif(image)
    return None


def _imagemagick_raw_profile(text: str) -> bytes | None:
    """ImageMagick's PNG text chunk: "\\nexif\\n   LENGTH\\nHEX...", hex split over lines."""
    lines = text[: 2 * MAX_EXIF_BYTES + 1024].split("\n")
    try:
        return bytes.fromhex("".join(lines[3:])) or None
    except ValueError:
        return None


def _late_png_exif(image: Image.Image) -> bytes | None:
    """An eXIf chunk placed after the image data, found by seeking from chunk header to header.

    The file position is restored, so decoding the image later is unaffected.
    """
    fp = getattr(image, "fp", None)
    if fp is None:
        return None
    try:
        position = fp.tell()
    except (OSError, ValueError):
        return None
    try:
        fp.seek(0)
        if fp.read(8) != _PNG_SIGNATURE:
            return None
        for _ in range(MAX_PNG_CHUNKS):
            header = fp.read(8)
            if len(header) < 8:
                return None
            length, kind = struct.unpack(">I4s", header)
            if kind == b"eXIf":
                if length > MAX_EXIF_BYTES:
                    return None
                data = fp.read(length)
                return data if len(data) == length and data else None
            if kind == b"IEND":
                return None
            fp.seek(length + 4, io.SEEK_CUR)  # data and CRC
        return None
    except (OSError, ValueError, struct.error):
        return None
    finally:
        with contextlib.suppress(OSError, ValueError):
            fp.seek(position)


def xmp_property(image: Image.Image, name: str) -> str | None:
    """The raw text of a simple XMP property such as "tiff:Orientation", or None.

    exiftool (and Pillow, for the orientation) fall back to XMP when EXIF lacks a value. A regular
    expression on a bounded prefix of the packet, never an XML parser: XMP is attacker controlled.
    Both the attribute form (name="value") and the element form (<name>value</name>) are found.
    """
    packet = _xmp_packet(image)
    if packet is None:
        return None
    escaped = re.escape(name)
    pattern = rf"""[<\s]{escaped}(?:\s*=\s*"([^"<]*)"|\s*=\s*'([^'<]*)'|\s*>([^<]*)<)"""
    match = re.search(pattern, packet)
    if match is None:
        return None
    return next(group for group in match.groups() if group is not None)


def _xmp_packet(image: Image.Image) -> str | None:
    for key in ("xmp", "XML:com.adobe.xmp"):  # JPEG/WebP/HEIF/AVIF keep bytes, PNG iTXt a str
        packet = image.info.get(key)
        if isinstance(packet, bytes) and packet:
            return packet[:MAX_XMP_BYTES].decode("utf-8", "replace")
        if isinstance(packet, str) and packet:
            return packet[:MAX_XMP_BYTES]
    return None


def decoder_applied_orientation(image: Image.Image) -> int | None:
    """The file's orientation when the decoder already applies it (pillow-heif), else None.

    pillow-heif hands over HEIF images already rotated as the container says, resets the EXIF
    Orientation to 1 so nobody rotates twice and keeps the original in info["original_orientation"].
    """
    value = image.info.get("original_orientation")
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    return None
