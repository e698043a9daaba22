"""The format of an upload is decided by its first bytes, and refusals say what the file looked like."""

from __future__ import annotations

import gzip
import io
import zipfile

import pillow_heif
import pytest
from PIL import Image

from core import sniff
from core.errors import UnsupportedFormat

pillow_heif.register_heif_opener()


def encoded(image_format: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (16, 16), "red").save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("image_format", "expected"),
    [
        ("JPEG", "JPEG"),
        ("PNG", "PNG"),
        ("GIF", "GIF"),
        ("WEBP", "WEBP"),
        ("TIFF", "TIFF"),
        ("BMP", "BMP"),
        ("HEIF", "HEIF"),
        ("AVIF", "AVIF"),
    ],
)
def test_accepted_formats_are_recognised_by_content(image_format: str, expected: str) -> None:
    assert sniff.sniff_format(encoded(image_format)) == expected


def test_big_endian_tiff_and_bigtiff_are_tiff() -> None:
    assert sniff.sniff_format(b"MM\x00*\x00\x00\x00\x08" + bytes(64)) == "TIFF"
    assert sniff.sniff_format(b"II+\x00\x08\x00\x00\x00" + bytes(64)) == "TIFF"


def iso_media(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + bytes(64)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (iso_media(b"mif1", b"mif1", b"heic"), "HEIF"),
        (iso_media(b"mif1", b"mif1", b"avif"), "AVIF"),
        (iso_media(b"msf1", b"msf1", b"hevc"), "HEIF"),
        (iso_media(b"heix", b"mif1"), "HEIF"),
        (iso_media(b"avis", b"msf1"), "AVIF"),
    ],
)
def test_heif_family_is_told_apart_by_brands(data: bytes, expected: str) -> None:
    assert sniff.sniff_format(data) == expected


def refusal(data: bytes) -> UnsupportedFormat:
    with pytest.raises(UnsupportedFormat) as caught:
        sniff.sniff_format(data)
    return caught.value


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", encoded("JPEG"))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "looked_like"),
    [
        (b"", "an empty file"),
        (b"<!DOCTYPE html>\n<html><body>Not found</body></html>", "an HTML page"),
        (b"\n  <html><head><title>Login</title></head></html>", "an HTML page"),
        (b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN"><html/>', "an HTML page"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "an SVG drawing"),
        (b'<?xml version="1.0"?><rss/>', "an XML document"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF"),
        (zip_archive(), "a ZIP archive"),
        (gzip.compress(b"hello", mtime=0), "a gzip archive"),
        (iso_media(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "a video"),
        (iso_media(b"qt  ", b"qt  "), "a video"),
        (iso_media(b"M4A ", b"M4A ", b"mp42"), "an audio file"),
        (iso_media(b"crx ", b"crx "), "a camera RAW file"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + bytes(32), "a video"),
        (b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(32), "a video"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(32), "an audio file"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(32), "an audio file"),
        (b"\x00\x00\x01\x00\x01\x00\x10\x10" + bytes(32), "a Windows icon"),
        (b"8BPS\x00\x01" + bytes(32), "a Photoshop document"),
        (b"II*\x00\x10\x00\x00\x00CR\x02\x00" + bytes(32), "a camera RAW file"),
        (b"MZ\x90\x00" + bytes(60), "a Windows program"),
        (b"Dear bot, here is my photo.\nThanks!\n", "plain text"),
        ("Grüße aus Köln: ein Foto folgt".encode(), "plain text"),
        (b'{"error": "not found"}', "JSON data"),
        (b"BMW 320d, 2019, 50 000 km", "plain text"),  # "BM" but no BMP header
        (bytes(range(256)) * 4, "unknown binary data"),
    ],
)
def test_refusals_say_what_the_file_looked_like(data: bytes, looked_like: str) -> None:
    error = refusal(data)
    assert error.looked_like == looked_like
    assert error.reason == "unsupported_format"
    assert f"looks like {looked_like}, not a photo" in str(error)


def test_text_cut_inside_a_multibyte_character_is_still_text() -> None:
    head = ("é" * 2048).encode()  # 4096 bytes: the 4096-byte window ends exactly on a boundary
    assert refusal(head + "é".encode()).looked_like == "plain text"
    assert refusal(b"a" + head).looked_like == "plain text"  # window ends inside a character


def test_avif_is_refused_by_name_when_this_pillow_cannot_decode_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sniff, "pillow_decodes_avif", lambda: False)
    assert refusal(encoded("AVIF")).looked_like == "an AVIF image"


def test_this_pillow_decodes_avif() -> None:
    """Pillow 13 ships libavif, so AVIF uploads are accepted rather than refused."""
    assert sniff.pillow_decodes_avif()
