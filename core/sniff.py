"""Telling what an upload is from its first bytes, never from its name.

Chat clients name files whatever they like ("image.jpg" that is an HTML error page, a video sent
as a photo), and Pillow tried on an arbitrary file runs every plugin whose signature matches,
including formats nobody should parse from strangers. So the format is decided here, from the
magic bytes, and the decoder for exactly that format is the only one ever run. Anything else is
refused with a message saying what the file looked like, which is usually enough for the sender
to see what went wrong.
"""

from __future__ import annotations

from PIL import features

from core.errors import UnsupportedFormat

# Pillow format names of what we decode. "MPO" (stereo JPEG) comes out of the JPEG decoder.
JPEG = "JPEG"
PNG = "PNG"
GIF = "GIF"
WEBP = "WEBP"
TIFF = "TIFF"
BMP = "BMP"
HEIF = "HEIF"
AVIF = "AVIF"
ACCEPTED = frozenset({JPEG, PNG, GIF, WEBP, TIFF, BMP, HEIF, AVIF})

# ISO base media ("ftyp") brands. HEIF and AVIF share the container with MP4 and QuickTime video.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_CONTAINER_BRANDS = frozenset({b"mif1", b"msf1", b"mif2", b"miaf"})
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})
_RAW_BRANDS = frozenset({b"crx "})  # Canon CR3

# Leading bytes of formats we refuse, with what to call them.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an XZ archive"),
    (b"\x1a\x45\xdf\xa3", "a video"),  # Matroska / WebM
    (b"FLV\x01", "a video"),
    (b"\x00\x00\x01\xba", "a video"),  # MPEG program stream
    (b"\x00\x00\x01\xb3", "a video"),  # MPEG-1/2 elementary stream
    (b"ID3", "an audio file"),
    (b"fLaC", "an audio file"),
    (b"OggS", "an audio or video file"),
    (b"MThd", "an audio file"),
    (b"\x00\x00\x01\x00", "a Windows icon"),
    (b"\x00\x00\x02\x00", "a Windows cursor"),
    (b"8BPS", "a Photoshop document"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (b"qoif", "a QOI image"),
    (b"II*\x00\x10\x00\x00\x00CR", "a camera RAW file"),  # Canon CR2: a TIFF we must not half-read
    (b"IIRO", "a camera RAW file"),  # Olympus ORF
    (b"IIU\x00", "a camera RAW file"),  # Panasonic RW2
    (b"FUJIFILMCCD-RAW", "a camera RAW file"),
    (b"%!PS", "a PostScript file"),
    (b"\xc5\xd0\xd3\xc6", "a PostScript file"),
    (b"{\\rtf", "a rich-text document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Office document"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a program"),
    (b"SQLite format 3\x00", "a database file"),
)

# Sizes of the BMP info header that follows the 14-byte file header (BITMAPCOREHEADER to V5).
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})

# Control characters that do not occur in text files (tab, newlines and form feed do).
_BINARY_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D} | {0x7F}


def sniff_format(data: bytes) -> str:
    """The Pillow format to decode `data` with, chosen from its magic bytes.

    Raises `UnsupportedFormat` naming what the data looked like ("an HTML page", "a video",
    "plain text", ...) when it is not one of the accepted image formats. AVIF is accepted when
    this Pillow can decode it (Pillow 11.3+ built with libavif), refused as "an AVIF image"
    otherwise.
    """
    if not data:
        raise UnsupportedFormat("an empty file")
    image_format = _image_format(data)
    if image_format == AVIF and not pillow_decodes_avif():
        raise UnsupportedFormat("an AVIF image")
    if image_format is not None:
        return image_format
    raise UnsupportedFormat(describe(data))


def pillow_decodes_avif() -> bool:
    """Whether this Pillow was built with libavif (wheels of Pillow 11.3 and later are)."""
    return bool(features.check_module("avif"))


def _image_format(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(b"BM") and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES:
        return BMP
    if data.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")) and not _is_cr2(data):
        return TIFF
    if data[4:8] == b"ftyp":
        return _iso_media_image_format(data)
    return None


def _is_cr2(data: bytes) -> bool:
    return data[8:10] == b"CR"


def _iso_media_brands(data: bytes) -> tuple[bytes, frozenset[bytes]]:
    """The major brand and the compatible brands of the leading "ftyp" box."""
    box_size = int.from_bytes(data[0:4], "big")
    end = min(max(box_size, 16), len(data), 4096)
    compatible = frozenset(data[offset : offset + 4] for offset in range(16, end - 3, 4))
    return data[8:12], compatible


def _iso_media_image_format(data: bytes) -> str | None:
    major, compatible = _iso_media_brands(data)
    if major in _AVIF_BRANDS:
        return AVIF
    if major in _HEIF_BRANDS:
        return HEIF
    if major in _HEIF_CONTAINER_BRANDS:
        if compatible & _AVIF_BRANDS:
            return AVIF
        return HEIF
    if compatible & _HEIF_BRANDS and not compatible & _AUDIO_BRANDS:
        return HEIF
    if compatible & _AVIF_BRANDS:
        return AVIF
    return None


def describe(data: bytes) -> str:
    """What non-image data looks like, for the refusal message: "a PDF", "plain text", ..."""
    if not data:
        return "an empty file"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data.startswith(b"RIFF"):
        kind = data[8:12]
        if kind in (b"AVI ", b"AMV "):
            return "a video"
        if kind == b"WAVE":
            return "an audio file"
        return "a RIFF media file"
    if data[4:8] == b"ftyp":
        major, _ = _iso_media_brands(data)
        if major in _AUDIO_BRANDS:
            return "an audio file"
        if major in _RAW_BRANDS:
            return "a camera RAW file"
        return "a video"
    if data[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "a video"  # QuickTime without an ftyp box
    if len(data) >= 188 * 3 and data[0] == data[188] == data[376] == 0x47:
        return "a video"  # MPEG transport stream: a sync byte every 188 bytes
    return _describe_text(data[:4096]) or "unknown binary data"


def _describe_text(head: bytes) -> str | None:
    """What text looks like ("an HTML page", "plain text", ...); None when `head` is binary."""
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    if any(byte in _BINARY_BYTES for byte in head):
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut at the end of `head`
            return None
        text = head[: error.start].decode("utf-8")
    lowered = text.lstrip().lower()
    if lowered.startswith("<"):
        if lowered.startswith(("<!doctype html", "<html", "<head", "<body", "<meta", "<title")):
            return "an HTML page"
        if lowered.startswith("<svg") or "<svg" in lowered:
            return "an SVG drawing"
        if "<html" in lowered or "<!doctype html" in lowered:
            return "an HTML page"
        if lowered.startswith("<?xml"):
            return "an XML document"
    if lowered.startswith(("{", "[")):
        return "JSON data"
    return "plain text"
