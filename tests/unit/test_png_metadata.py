"""A PNG whose metadata is a decompression bomb is analysed without that chunk, not refused.

The hostile files are made here: a small, valid photo with a zTXt, iTXt or iCCP chunk that
inflates past Pillow's per-chunk limit, placed before or after the image data.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from core.analysis_types import Photo
from core.errors import CorruptImage
from core.png_metadata import MAX_METADATA_CHUNKS, without_hostile_metadata
from core.prepare import prepare_photo

RED = (255, 0, 0)
BLUE = (0, 0, 255)
# 16 MB of zeros: about 16 KB compressed, 16 times Pillow's limit of 1 MB per text chunk.
BOMB = zlib.compress(bytes(16 * PngImagePlugin.MAX_TEXT_CHUNK), 9)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def photo_png() -> bytes:
    """Red left half, blue right half, with one harmless caption."""
    image = Image.new("RGB", (240, 160), BLUE)
    image.paste(RED, (0, 0, 120, 160))
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Harbour at dusk", zip=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def insert(png: bytes, extra: bytes, *, after_image: bool) -> bytes:
    """`extra` just after IHDR (read when the file is opened) or just before IEND (read on decode)."""
    at = len(png) - 12 if after_image else 33
    return png[:at] + extra + png[at:]


HOSTILE = {
    "zTXt": chunk(b"zTXt", b"Comment\x00\x00" + BOMB),
    "iTXt": chunk(b"iTXt", b"Description\x00\x01\x00en\x00\x00" + BOMB),
    "iCCP": chunk(b"iCCP", b"icc\x00\x00" + BOMB),
    "zTXt unknown method": chunk(b"zTXt", b"Comment\x00\x07abc"),
}


@pytest.mark.parametrize("after_image", [False, True], ids=["before-pixels", "after-pixels"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_metadata_bomb_is_skipped_and_the_photo_analysed(kind: str, after_image: bool) -> None:
    data = insert(photo_png(), HOSTILE[kind], after_image=after_image)

    prepared = prepare_photo(Photo(data, "upload.png"))

    assert (prepared.original_width, prepared.original_height) == (240, 160)
    assert prepared.image.getpixel((30, 80)) == pytest.approx(RED, abs=40)
    assert prepared.image.getpixel((210, 80)) == pytest.approx(BLUE, abs=40)


def test_only_the_hostile_chunk_is_left_out() -> None:
    png = photo_png()
    data = insert(png, HOSTILE["zTXt"], after_image=False)

    cleaned = without_hostile_metadata(data)

    assert cleaned.dropped == 1
    assert cleaned.data == png
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert isinstance(image, PngImagePlugin.PngImageFile)
        assert image.text == {"Title": "Harbour at dusk"}


def test_a_png_without_hostile_metadata_is_returned_as_it_is() -> None:
    png = photo_png()
    cleaned = without_hostile_metadata(png)
    assert cleaned.dropped == 0
    assert cleaned.data is png


def test_text_adding_up_past_pillows_total_is_cut_where_pillow_would_stop() -> None:
    """Each chunk is within the per-chunk limit, but together they pass MAX_TEXT_MEMORY (64 MB)."""
    almost = zlib.compress(bytes(PngImagePlugin.MAX_TEXT_CHUNK), 9)
    count = PngImagePlugin.MAX_TEXT_MEMORY // PngImagePlugin.MAX_TEXT_CHUNK + 3
    extra = b"".join(chunk(b"zTXt", b"n%d\x00\x00" % i + almost) for i in range(count))
    data = insert(photo_png(), extra, after_image=False)

    cleaned = without_hostile_metadata(data)

    # The caption's 15 characters come first, so 63 of the 1 MB texts fit and the rest are left out.
    assert cleaned.dropped == count - 63
    prepared = prepare_photo(Photo(data, "upload.png"))
    assert prepared.image.size == (240, 160)


def test_damaged_image_data_is_still_damaged() -> None:
    """Leaving metadata out must not make Pillow lenient about the pixels themselves."""
    data = bytearray(insert(photo_png(), HOSTILE["iTXt"], after_image=False))
    idat = data.index(b"IDAT")
    data[idat + 8 : idat + 40] = bytes(32)
    with pytest.raises(CorruptImage):
        prepare_photo(Photo(bytes(data), "upload.png"))


def test_a_broken_chunk_structure_is_left_for_pillow_to_refuse() -> None:
    png = photo_png()
    cut = insert(png, HOSTILE["zTXt"], after_image=False)[:-200] + b"\x00\x01"
    cleaned = without_hostile_metadata(cut)
    assert cleaned.data.endswith(b"\x00\x01")
    assert len(cleaned.data) == len(cut) - len(HOSTILE["zTXt"])


def test_past_a_thousand_text_chunks_the_rest_are_left_out_unread() -> None:
    """Millions of tiny captions cost Pillow seconds per megabyte to parse; no camera writes more
    than a handful, so only the first MAX_METADATA_CHUNKS are kept."""
    tiny = b"".join(chunk(b"tEXt", b"k%d\x00v" % i) for i in range(MAX_METADATA_CHUNKS + 500))
    data = insert(photo_png(), tiny, after_image=True)

    cleaned = without_hostile_metadata(data)

    assert cleaned.dropped == 500 + 1  # the photo's own caption comes first and counts too
    with Image.open(io.BytesIO(cleaned.data)) as image:
        image.load()
        assert isinstance(image, PngImagePlugin.PngImageFile)
        assert len(image.text) == MAX_METADATA_CHUNKS


def test_past_a_thousand_unknown_ancillary_chunks_the_rest_are_left_out_unread() -> None:
    """Private chunks Pillow does not interpret cost as much to walk as captions; the ones it does
    interpret (transparency, colour, EXIF, animation) are never dropped."""
    private = chunk(b"prVt", b"x") * (MAX_METADATA_CHUNKS + 200)
    transparency = chunk(b"tRNS", b"\x00\x00\x00\x00\x00\x00")
    data = insert(photo_png(), private + transparency, after_image=False)

    cleaned = without_hostile_metadata(data)

    assert cleaned.dropped == 200 + 1  # and the photo's own caption, which comes after them
    assert b"tRNS" in cleaned.data
    assert prepare_photo(Photo(data, "upload.png")).image.size == (240, 160)
