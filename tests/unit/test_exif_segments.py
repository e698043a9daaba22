"""Camera values from proprietary JPEG segments (core.exif_segments), on segments built here.

Canon CIFF (APP0 heap), Olympus APP12 "[picture info]" text, Casio QVCI (APP1), FLIR FFF (APP1,
possibly split in chunks) and IPTC in a Photoshop APP13, laid out as exiftool's CanonRaw.pm,
APP12.pm, Casio.pm, FLIR.pm and IPTC.pm describe them, inserted into a JPEG made by Pillow.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import piexif
import pytest
from PIL import Image

from core.analysis_types import ExifData
from core.exif import read_exif, read_exif_bytes
from core.exif_segments import MAX_CIFF_ENTRIES, MAX_SEGMENTS, read_segments

# --- building JPEGs -------------------------------------------------------------------------------


def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def jpeg(
    before_exif: Sequence[bytes] = (), after_exif: Sequence[bytes] = (), exif: bytes | None = None
) -> bytes:
    """A small JPEG with `before_exif` segments right after SOI and `after_exif` ones before DQT."""
    buffer = io.BytesIO()
    params = {"exif": exif} if exif is not None else {}
    Image.new("RGB", (24, 16), (90, 60, 30)).save(buffer, "JPEG", **params)
    data = buffer.getvalue()
    tables = data.index(b"\xff\xdb")
    return data[:2] + b"".join(before_exif) + data[2:tables] + b"".join(after_exif) + data[tables:]


def read(data: bytes) -> ExifData:
    return read_exif_bytes(data)


def standard_exif(make: bytes = b"FUJIFILM", date: bytes = b"2001:05:19 18:36:41") -> bytes:
    block: bytes = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: make, piexif.ImageIFD.Model: b"FinePix2400Zoom"},
            "Exif": {
                piexif.ExifIFD.DateTimeOriginal: date,
                piexif.ExifIFD.FNumber: (35, 10),
                piexif.ExifIFD.FocalLength: (6, 1),
            },
        }
    )
    return block


# --- Canon CIFF -----------------------------------------------------------------------------------


def heap(entries: list[tuple[int, bytes]]) -> bytes:
    """A CIFF heap: values, then the directory (count, 10-byte entries), then its offset.

    Entries whose tag has bit 0x4000 carry their 8 bytes in the directory itself.
    """
    values, directory = b"", b""
    for tag, value in entries:
        if tag & 0x4000:
            directory += struct.pack("<H", tag) + value.ljust(8, b"\x00")[:8]
        else:
            directory += struct.pack("<HII", tag, len(value), len(values))
            values += value
    return values + struct.pack("<H", len(entries)) + directory + struct.pack("<I", len(values))


def ciff(root: bytes) -> bytes:
    header = b"II" + struct.pack("<I", 26) + b"HEAPJPGM"
    return segment(0xFFE0, header.ljust(26, b"\x00") + root)


POWERSHOT_A5 = 972687386  # 2000-10-27 22:56:26 UTC


def powershot_ciff() -> bytes:
    camera_object = heap([(0x080A, b"Canon\x00Canon PowerShot A5\x00")])
    exif_information = heap([(0x4000 | 0x1029, struct.pack("<4H", 1, 5, 199, 146))])  # in the entry
    root = heap(
        [
            (0x180E, struct.pack("<IiI", POWERSHOT_A5, 0, 0)),
            (0x2807, camera_object),  # sub-heaps
            (0x300B, exif_information),
        ]
    )
    return ciff(root)


def test_ciff_make_model_time_and_focal_length() -> None:
    exif = read(jpeg(before_exif=[powershot_ciff()]))
    assert (exif.make, exif.model) == ("Canon", "Canon PowerShot A5")
    assert exif.datetime_original == datetime(2000, 10, 27, 22, 56, 26)
    assert exif.focal_length == 5


def test_ciff_after_exif_wins_for_make_and_time_but_not_focal_length() -> None:
    """exiftool reads segments in order; CIFF Make/Model/time have normal priority, FocalLength 0."""
    exif = read(jpeg(after_exif=[powershot_ciff()], exif=standard_exif()))
    assert (exif.make, exif.model) == ("Canon", "Canon PowerShot A5")
    assert exif.datetime_original == datetime(2000, 10, 27, 22, 56, 26)
    assert exif.focal_length == 6


def test_exif_after_ciff_wins() -> None:
    """Pillow writes EXIF after a leading APP0, so a CIFF inserted right after SOI comes first."""
    exif = read(jpeg(before_exif=[powershot_ciff()], exif=standard_exif()))
    assert exif.make == "FUJIFILM"
    assert exif.datetime_original == datetime(2001, 5, 19, 18, 36, 41)


@pytest.mark.parametrize(
    "root",
    [
        b"",
        b"\x00\x00\x00\x00",  # directory at 0 with no entries
        struct.pack("<H", 0xFFFF) + struct.pack("<I", 0),  # 65535 entries announced, none there
        struct.pack("<HHII", 1, 0x2807, 10, 0) + struct.pack("<I", 0),  # a sub-heap that is itself
        struct.pack("<HHII", 1, 0x080A, 1 << 31, 1 << 31) + struct.pack("<I", 0),  # value far away
        b"\x00" * 8 + struct.pack("<I", 0xFFFFFFF0),  # directory offset out of the heap
    ],
)
def test_broken_ciff_gives_nothing_and_never_raises(root: bytes) -> None:
    exif = read(jpeg(before_exif=[ciff(root)], exif=standard_exif()))
    assert exif.make == "FUJIFILM"


def test_ciff_entries_beyond_the_budget_are_not_read() -> None:
    """Directories may be re-entered from many places; the entries read in all are capped."""
    make_model = (0x080A, b"Canon\x00Canon PowerShot A5\x00")
    padding = [(0x4000 | 0x0001, b"")] * (MAX_CIFF_ENTRIES - 5)
    assert read(jpeg(before_exif=[ciff(heap([*padding, make_model]))])).make == "Canon"
    padding = [(0x4000 | 0x0001, b"")] * (MAX_CIFF_ENTRIES + 5)
    assert read(jpeg(before_exif=[ciff(heap([*padding, make_model]))])).make is None


def test_deeply_nested_ciff_heaps_stop() -> None:
    inner = heap([(0x080A, b"Canon\x00Deep\x00")])
    for _ in range(40):
        inner = heap([(0x300A, inner)])
    assert read(jpeg(before_exif=[ciff(inner)])).model is None


# --- Olympus APP12, Casio QVCI ----------------------------------------------------------------------

APP12 = (
    b"OLYMPUS OPTICAL CO.,LTD.   \x00 713\r\n[picture info]\r\nTimeDate=909698819\r\nShutter=33363\r\n"
    b"Flash=1\r\nFNumber=F2.8\r\nZoom=x1.0\r\n[camera info]\r\nType=SR55\r\nID=OLYMPUS DIGITAL CAMERA\r\n"
)


def test_app12_picture_info() -> None:
    exif = read(jpeg(after_exif=[segment(0xFFEC, APP12)]))
    assert exif.datetime_original == datetime(1998, 10, 29, 22, 6, 59)  # Unix time, UTC
    assert exif.exposure_time == pytest.approx(0.033363)
    assert exif.f_number == pytest.approx(2.8)


def test_app12_pairs_on_one_line_are_split_at_the_next_tag() -> None:
    text = b"[picture info] TimeDate=909698819 Shutter=33363 FNumber=F2.8 ImageSize=640-480\x00"
    exif = read(jpeg(after_exif=[segment(0xFFEC, text)]))
    assert exif.exposure_time == pytest.approx(0.033363)
    assert exif.f_number == pytest.approx(2.8)


def test_app12_only_fills_gaps_even_after_exif() -> None:
    exif = read(jpeg(after_exif=[segment(0xFFEC, APP12)], exif=standard_exif()))
    assert exif.f_number == pytest.approx(3.5)
    assert exif.datetime_original == datetime(2001, 5, 19, 18, 36, 41)
    assert exif.exposure_time == pytest.approx(0.033363)  # EXIF has none


@pytest.mark.parametrize(
    "text",
    [
        b"[picture info]\r\nTimeDate=99999999999999999999\r\nShutter=abc\r\nFNumber=F\r\n",
        b"[picture info]" + b"x=" * 30000,
        b"Type=" + bytes(range(256)) * 50,
        b"[picture info]" + b"[" * 65000,  # exiftool's own expression backtracks for minutes on these
        b"[picture info]" + b"a" * 65000,
    ],
)
def test_app12_nonsense_gives_nothing(text: bytes) -> None:
    exif = read(jpeg(after_exif=[segment(0xFFEC, text[:65000])]))
    assert (exif.datetime_original, exif.exposure_time, exif.f_number) == (None, None, None)


def qvci(date: bytes) -> bytes:
    return segment(0xFFE1, (b"QVCI\x00".ljust(0x4D, b"\x00") + date + b"\x00").ljust(0x86, b"\x00"))


def test_casio_qvci_date() -> None:
    exif = read(jpeg(after_exif=[qvci(b"1998.10.24.12.08.57")]))
    assert exif.datetime_original == datetime(1998, 10, 24, 12, 8, 57)


def test_casio_qvci_nonsense_date_is_none() -> None:
    assert read(jpeg(after_exif=[qvci(b"1998.13.99.12.08.57")])).datetime_original is None


# --- FLIR -----------------------------------------------------------------------------------------


def fff(lens: bytes, little_record: bool = False) -> bytes:
    """FFF data: 64-byte header (version 100 at 0x14, index at 0x18, count at 0x1C), a 32-byte
    index entry for record 0x20 (CameraInfo) and the record, LensModel at 0x170."""
    record = bytearray(0x1C0)
    struct.pack_into("<H" if little_record else ">H", record, 0, 2)
    record[0x170 : 0x170 + len(lens)] = lens
    header = bytearray(b"FFF\x00".ljust(0x40, b"\x00"))
    struct.pack_into(">III", header, 0x14, 100, 0x40, 2)
    empty = b"\x00" * 0x20
    entry = struct.pack(">HHIIII", 0x20, 1, 0x64, 1, 0x80, len(record)).ljust(0x20, b"\x00")
    return bytes(header) + empty + entry + bytes(record)


def flir_chunks(data: bytes, count: int) -> list[bytes]:
    size = -(-len(data) // count)
    parts = [data[index * size : (index + 1) * size] for index in range(count)]
    return [
        segment(0xFFE1, b"FLIR\x00\x01" + bytes([number, count - 1]) + part)
        for number, part in enumerate(parts)
    ]


@pytest.mark.parametrize("chunks", [1, 3])
def test_flir_lens_model(chunks: int) -> None:
    exif = read(jpeg(after_exif=flir_chunks(fff(b"FOL7"), chunks)))
    assert exif.lens == "FOL7"


def test_flir_camera_info_in_its_own_byte_order() -> None:
    assert read(jpeg(after_exif=flir_chunks(fff(b"FOL38", little_record=True), 1))).lens == "FOL38"


def test_flir_with_a_missing_chunk_gives_nothing() -> None:
    chunks = flir_chunks(fff(b"FOL7"), 3)
    assert read(jpeg(after_exif=[chunks[0], chunks[2]])).lens is None


@pytest.mark.parametrize(
    "data",
    [
        b"FFF\x00" + b"\xff" * 60,  # unknown version in both byte orders
        b"FFF\x00".ljust(0x14, b"\x00") + struct.pack(">III", 100, 0x40, 0xFFFFFFFF),  # lying count
        b"FFF\x00".ljust(0x14, b"\x00")
        + struct.pack(">III", 100, 0x40, 1)
        + b"\x00" * 0x20
        + struct.pack(">HHIIII", 0x20, 1, 0, 0, 0xFFFFFF00, 0x1000),  # record out of range
    ],
)
def test_broken_flir_gives_nothing(data: bytes) -> None:
    assert read(jpeg(after_exif=flir_chunks(data, 1))).lens is None


# --- IPTC ---------------------------------------------------------------------------------------


def iptc(*datasets: tuple[int, bytes]) -> bytes:
    records = b"".join(
        b"\x1c\x02" + bytes([number]) + struct.pack(">H", len(value)) + value for number, value in datasets
    )
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(records)) + records
    if len(records) % 2:
        resource += b"\x00"
    return segment(0xFFED, b"Photoshop 3.0\x00" + resource)


def test_iptc_date_and_time_created_with_offset() -> None:
    exif = read(jpeg(after_exif=[iptc((55, b"20061029"), (60, b"062751-0500"))]))
    assert exif.datetime_original == datetime(2006, 10, 29, 6, 27, 51, tzinfo=timezone(timedelta(hours=-5)))


def test_iptc_needs_both_date_and_time_and_never_overrides_exif() -> None:
    assert read(jpeg(after_exif=[iptc((55, b"20061029"))])).datetime_original is None
    exif = read(jpeg(after_exif=[iptc((55, b"20061029"), (60, b"062751"))], exif=standard_exif()))
    assert exif.datetime_original == datetime(2001, 5, 19, 18, 36, 41)


def test_iptc_with_lying_sizes_gives_nothing() -> None:
    broken = b"\x1c\x02\x37\x7f\xff20061029"
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(broken)) + broken
    assert read(jpeg(after_exif=[segment(0xFFED, b"Photoshop 3.0\x00" + resource)])).datetime_original is None


# --- many segments and random damage ------------------------------------------------------------


def test_segments_beyond_the_cap_are_not_read() -> None:
    """Pillow keeps every APPn segment; a file with thousands of them costs only the first ones."""
    date = qvci(b"1998.10.24.12.08.57")
    filler = [segment(0xFFE5, b"x")] * MAX_SEGMENTS
    with Image.open(io.BytesIO(jpeg(after_exif=[*filler[:-10], date]))) as image:
        assert read_exif(image).datetime_original == datetime(1998, 10, 24, 12, 8, 57)
    with Image.open(io.BytesIO(jpeg(after_exif=[*filler, date]))) as image:
        assert read_segments(image).found == ()
        assert read_exif(image).datetime_original is None


def test_random_damage_to_segments_never_raises() -> None:
    generator = random.Random(7)
    pieces = [
        powershot_ciff(),
        segment(0xFFEC, APP12),
        qvci(b"1998.10.24.12.08.57"),
        *flir_chunks(fff(b"FOL7"), 2),
    ]
    for _ in range(200):
        damaged = []
        for piece in pieces:
            mutated = bytearray(piece)
            for _ in range(generator.randint(0, 6)):
                position = generator.randrange(4, len(mutated))
                mutated[position] = generator.randrange(256)
            damaged.append(bytes(mutated))
        assert isinstance(read(jpeg(after_exif=damaged)), ExifData)
