"""Maker-note values (core.exif_makernotes), the bounded IFD reader under them (core.exif_tiff)
and exiftool's precedence rule (core.exif_found), on maker notes laid out byte by byte here.

Each note is built the way its maker writes it (layouts from exiftool's Canon.pm, Casio.pm,
Nikon.pm, Olympus.pm, Kodak.pm, Reconyx.pm), inside a real EXIF block whose Exif IFD points at it.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable
from datetime import datetime

import pytest
from PIL import Image

from core.exif import read_exif_bytes
from core.exif_found import Found, resolve
from core.exif_makernotes import read_maker_note
from core.exif_tiff import MAX_ENTRIES, ByteView, guess_order, read_ifd, tiff_header

ASCII, SHORT, LONG, RATIONAL, UNDEFINED, IFD = 2, 3, 4, 5, 7, 13
Entry = tuple[int, int, int, bytes]  # tag, type, count, value bytes (already in the right byte order)


def ascii_entry(tag: int, text: bytes) -> Entry:
    return (tag, ASCII, len(text) + 1, text + b"\x00")


def shorts(tag: int, values: list[int], order: str = "<") -> Entry:
    return (tag, SHORT, len(values), struct.pack(f"{order}{len(values)}h", *values))


def ifd(entries: list[Entry], start: int, order: str = "<", base: int = 0) -> bytes:
    """An IFD placed at `start`, values over 4 bytes right after it, offsets counted from `base`."""
    data_start = start + 2 + 12 * len(entries) + 4
    table, data = struct.pack(f"{order}H", len(entries)), b""
    for tag, kind, count, value in sorted(entries):
        if len(value) <= 4:
            field = value.ljust(4, b"\x00")
        else:
            field = struct.pack(f"{order}I", data_start + len(data) - base)
            data += value + b"\x00" * (len(value) % 2)
        table += struct.pack(f"{order}HHI", tag, kind, count) + field
    return table + struct.pack(f"{order}I", 0) + data


def exif_with_note(
    make: bytes, note_at: Callable[[int], bytes], exif: list[Entry] | None = None, order: str = "<"
) -> bytes:
    """An "Exif\\0\\0" TIFF block: IFD0 (Make, Exif IFD pointer), the Exif IFD (`exif` and a
    MakerNote), then the note, built by `note_at` from its offset in the TIFF structure."""
    mark = b"II*\x00" if order == "<" else b"MM\x00*"
    pointer = struct.pack(f"{order}I", 0)
    ifd0_entries = [ascii_entry(0x010F, make), (0x8769, LONG, 1, pointer)]
    exif_start = 8 + len(ifd(ifd0_entries, 8, order))
    exif_entries = [*(exif or []), (0x927C, UNDEFINED, 0, pointer)]
    note_start = exif_start + len(ifd(exif_entries, exif_start, order))
    note = note_at(note_start)
    ifd0_entries[1] = (0x8769, LONG, 1, struct.pack(f"{order}I", exif_start))
    exif_entries[-1] = (0x927C, UNDEFINED, len(note), struct.pack(f"{order}I", note_start))
    tiff = (
        mark
        + struct.pack(f"{order}I", 8)
        + ifd(ifd0_entries, 8, order)
        + ifd(exif_entries, exif_start, order)
    )
    assert len(tiff) == note_start
    return b"Exif\x00\x00" + tiff + note


def jpeg(exif: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 8), (10, 20, 30)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


EXIF_ISO_400 = [(0x8827, SHORT, 1, struct.pack("<H", 400))]


# --- exiftool's precedence ---------------------------------------------------------------------


def test_the_last_preferred_value_wins() -> None:
    sources = [Found(iso=100), Found(preferred=False, iso=50), Found(iso=200)]
    assert resolve(sources, lambda found: found.iso) == 200


def test_low_priority_values_only_fill_gaps_and_the_first_one_stays() -> None:
    assert resolve([Found(preferred=False, iso=50), Found(iso=100)], lambda found: found.iso) == 100
    sources = [Found(iso=None), Found(preferred=False, iso=50), Found(preferred=False, iso=64)]
    assert resolve(sources, lambda found: found.iso) == 50
    assert resolve([Found(), Found(preferred=False)], lambda found: found.iso) is None


# --- the bounded IFD reader --------------------------------------------------------------------


def test_read_ifd_reads_inline_and_pointed_values() -> None:
    data = b"II*\x00" + struct.pack("<I", 8) + ifd([ascii_entry(0x10F, b"Maker Name"), shorts(1, [7])], 8)
    header = tiff_header(data)
    assert header is not None
    view, first = header
    entries = read_ifd(view, first)
    assert entries[0x10F].text() == "Maker Name"
    assert entries[1].ints(view.little) == (7,)


def test_read_ifd_skips_values_outside_the_data_and_unknown_types() -> None:
    table = struct.pack("<H", 3)
    table += struct.pack("<HHII", 1, ASCII, 50, 10_000)  # points far past the end
    table += struct.pack("<HHII", 2, 99, 1, 0)  # no such TIFF type
    table += struct.pack("<HHII", 3, SHORT, 1, 5)
    view = ByteView(table + b"\x00" * 4, little=True)
    assert set(read_ifd(view, 0)) == {3}


def test_read_ifd_on_lying_counts_and_offsets_is_bounded() -> None:
    view = ByteView(struct.pack("<H", 0xFFFF) + b"\x01\x00\x03\x00\x01\x00\x00\x00\x05\x00\x00\x00", True)
    assert set(read_ifd(view, 0)) == {1}  # the other 65534 entries are not there
    assert read_ifd(view, -5) == {}
    assert read_ifd(view, 1 << 40) == {}
    huge = ByteView(struct.pack("<H", MAX_ENTRIES + 500) + b"\x01\x00\x03\x00\x01\x00\x00\x00" * 3000, True)
    assert len(read_ifd(huge, 0)) <= MAX_ENTRIES


def test_guess_order_finds_a_big_endian_note_in_a_little_endian_file() -> None:
    note = ifd([(1, SHORT, 1, struct.pack(">H", 5))], 0, ">")
    view = guess_order(ByteView(note, little=True), 0)
    assert not view.little
    assert read_ifd(view, 0)[1].ints(view.little) == (5,)


# --- Canon -------------------------------------------------------------------------------------


def canon_record(values: list[int]) -> list[int]:
    """A Canon binary record: its first value is its own size in bytes."""
    return [2 * (len(values) + 1), *values]


def canon_note(
    camera_iso: int | None = None, shot: tuple[int, int] | None = None, lens: bytes = b""
) -> Callable[[int], bytes]:
    entries: list[Entry] = []
    if camera_iso is not None:
        settings = [0] * 15 + [camera_iso] + [0] * 5  # CameraSettings[16] is CameraISO
        entries.append(shorts(0x0001, canon_record(settings)))
    if shot is not None:
        auto, base = shot
        entries.append(shorts(0x0004, canon_record([auto, base] + [0] * 10)))  # ShotInfo[1], [2]
    if lens:
        entries.append(ascii_entry(0x0095, lens))
    return lambda start: ifd(entries, start)


@pytest.mark.parametrize(
    ("camera_iso", "shot", "iso"),
    [
        (0x4000 | 320, None, 320),  # numeric CameraISO
        (17, None, 100),  # code 17 = ISO 100
        (15, (0, 128), 50),  # "Auto": BaseISO 100*2^(128/32)/32 = 50, AutoISO 100*2^0 = 100
        (15, (32, 160), 200),  # BaseISO 100, AutoISO 200 -> 200
        (0, (0, 134), 57),  # "n/a": 2^(134/32)*100/32 = 56.7 -> 57, rounded as exiftool prints it
        (0x7FFF, (0, 0), None),  # nothing: BaseISO 0 means unknown
    ],
)
def test_canon_iso_is_exiftools_composite(
    camera_iso: int, shot: tuple[int, int] | None, iso: int | None
) -> None:
    found = read_maker_note(exif_with_note(b"Canon", canon_note(camera_iso, shot)), "Canon")
    assert resolve(found, lambda item: item.iso) == iso


def test_canon_iso_only_fills_a_missing_exif_iso() -> None:
    block = exif_with_note(b"Canon", canon_note(0x4000 | 800), exif=EXIF_ISO_400)
    assert read_exif_bytes(jpeg(block)).iso == 400
    assert read_exif_bytes(jpeg(exif_with_note(b"Canon", canon_note(0x4000 | 800)))).iso == 800


def test_canon_record_with_a_wrong_size_is_ignored() -> None:
    note = [shorts(0x0001, [999] + [0] * 15 + [0x4000 | 320])]
    block = exif_with_note(b"Canon", lambda start: ifd(note, start))
    assert read_maker_note(block, "Canon") == []


def test_canon_lens_model() -> None:
    exif = read_exif_bytes(jpeg(exif_with_note(b"Canon", canon_note(lens=b"EF16-35mm f/2.8L II USM"))))
    assert exif.lens == "EF16-35mm f/2.8L II USM"


def test_canon_exif_lens_model_comes_after_the_note_and_wins() -> None:
    exif_lens = [ascii_entry(0xA434, b"EF 50mm from EXIF")]
    block = exif_with_note(b"Canon", canon_note(lens=b"EF16-35mm from the note"), exif=exif_lens)
    assert read_exif_bytes(jpeg(block)).lens == "EF 50mm from EXIF"


def test_canon_note_moved_by_an_editor_is_found_through_its_footer() -> None:
    """Offsets still count from where the note was written, 54 bytes later; the footer says so."""

    def moved(start: int) -> bytes:
        body = ifd([ascii_entry(0x0095, b"EF-S 18-55mm")], start, base=-54)  # offsets 54 too far
        return body + b"II*\x00" + struct.pack("<I", start + 54)

    assert read_exif_bytes(jpeg(exif_with_note(b"Canon", moved))).lens == "EF-S 18-55mm"


def test_canon_footer_is_ignored_when_the_values_already_end_before_it() -> None:
    def unmoved(start: int) -> bytes:
        body = ifd([ascii_entry(0x0095, b"EF-S 18-55mm")], start)
        return body + b"II*\x00" + struct.pack("<I", start + 54)  # a stale footer

    assert read_exif_bytes(jpeg(exif_with_note(b"Canon", unmoved))).lens == "EF-S 18-55mm"


# --- Casio, Nikon --------------------------------------------------------------------------------


def test_casio_type1_iso() -> None:
    note = [(0x0014, SHORT, 1, struct.pack("<H", 64))]
    block = exif_with_note(b"CASIO", lambda start: ifd(note, start))
    assert read_exif_bytes(jpeg(block)).iso == 64


def test_casio_type2_big_endian_iso_in_a_little_endian_file() -> None:
    note = [(0x3014, SHORT, 1, struct.pack(">H", 50))]
    block = exif_with_note(
        b"CASIO COMPUTER CO.,LTD", lambda start: b"QVC\x00\x00\x00" + ifd(note, start + 6, ">")
    )
    assert read_exif_bytes(jpeg(block)).iso == 50


def test_casio_iso_does_not_override_exif() -> None:
    note = [(0x0014, SHORT, 1, struct.pack("<H", 64))]
    block = exif_with_note(b"CASIO", lambda start: ifd(note, start), exif=EXIF_ISO_400)
    assert read_exif_bytes(jpeg(block)).iso == 400


def nikon_note(iso: tuple[int, int]) -> Callable[[int], bytes]:
    """ "Nikon\\0\\2\\x10\\0\\0" then a big-endian TIFF structure of its own; offsets count from it."""
    inner = b"MM\x00*" + struct.pack(">I", 8) + ifd([(0x0002, SHORT, 2, struct.pack(">2H", *iso))], 8, ">")
    return lambda start: b"Nikon\x00\x02\x10\x00\x00" + inner


def test_nikon_iso_skips_the_hi_iso_flag() -> None:
    assert read_exif_bytes(jpeg(exif_with_note(b"NIKON CORPORATION", nikon_note((0, 200))))).iso == 200
    assert read_exif_bytes(jpeg(exif_with_note(b"NIKON CORPORATION", nikon_note((1, 6400))))).iso == 6400


def test_nikon_all_zero_iso_is_none() -> None:
    assert read_exif_bytes(jpeg(exif_with_note(b"NIKON CORPORATION", nikon_note((0, 0))))).iso is None


# --- Kodak: normal priority, so the note's precise values replace the EXIF ones -----------------


def kodak_main(exposure: int, f_number: int, iso: int, order: str = ">") -> bytes:
    record = bytearray(0x70)
    struct.pack_into(f"{order}H", record, 0x1E, f_number)
    struct.pack_into(f"{order}I", record, 0x20, exposure)
    struct.pack_into(f"{order}H", record, 0x60, iso)
    return (b"KDK INFO" if order == ">" else b"KDK\x00\x00\x00\x00\x00") + bytes(record)


EXIF_EXPOSURE = [
    (0x829A, RATIONAL, 1, struct.pack("<II", 1, 180)),
    (0x829D, RATIONAL, 1, struct.pack("<II", 67, 10)),
]


@pytest.mark.parametrize("order", [">", "<"])
def test_kodak_main_values_replace_the_rounded_exif_ones(order: str) -> None:
    block = exif_with_note(
        b"EASTMAN KODAK COMPANY", lambda start: kodak_main(464, 673, 108, order), exif=EXIF_EXPOSURE
    )
    exif = read_exif_bytes(jpeg(block))
    assert exif.exposure_time == pytest.approx(0.00464)
    assert exif.f_number == pytest.approx(6.73)
    assert exif.iso == 108


def test_kodak_type3_and_its_not_recorded_iso() -> None:
    record = bytearray(0x60)
    record[12] = 0x07
    struct.pack_into(">I", record, 0x38, 3111)
    struct.pack_into(">H", record, 0x3C, 390)
    struct.pack_into(">H", record, 0x4E, 0xFFFF)
    exif = read_exif_bytes(jpeg(exif_with_note(b"EASTMAN KODAK COMPANY", lambda start: bytes(record))))
    assert exif.exposure_time == pytest.approx(0.03111)
    assert exif.f_number == pytest.approx(3.9)
    assert exif.iso is None


def test_kodak_zeros_do_not_erase_exif_values() -> None:
    block = exif_with_note(b"EASTMAN KODAK COMPANY", lambda start: kodak_main(0, 0, 0), exif=EXIF_EXPOSURE)
    exif = read_exif_bytes(jpeg(block))
    assert exif.exposure_time == pytest.approx(1 / 180)
    assert exif.f_number == pytest.approx(6.7)


# --- Olympus, Reconyx ----------------------------------------------------------------------------


def test_olympus_lens_from_the_equipment_sub_ifd() -> None:
    """ "OLYMPUS\\0II\\3\\0": offsets count from the note's start; Equipment is an IFD-type pointer."""

    def note(start: int) -> bytes:
        equipment = ifd([ascii_entry(0x0203, b"OLYMPUS M.14-42mm F3.5-5.6 II R")], 64, base=0)
        main = ifd([(0x2010, IFD, 1, struct.pack("<I", 64))], 12, base=0)
        body = (b"OLYMPUS\x00II\x03\x00" + main).ljust(64, b"\x00")
        return body + equipment

    exif = read_exif_bytes(jpeg(exif_with_note(b"OLYMPUS IMAGING CORP.", note)))
    assert exif.lens == "OLYMPUS M.14-42mm F3.5-5.6 II R"


def test_old_olympus_embedded_equipment_directory() -> None:
    """ "OLYMP\\0": offsets from the TIFF header; Equipment embedded in place as UNDEFINED data."""

    def note(start: int) -> bytes:
        main_at = start + 8
        equipment_at = main_at + 2 + 12 + 4
        equipment = ifd([ascii_entry(0x0203, b"ZUIKO DIGITAL 14-54mm")], equipment_at)
        main = struct.pack("<HHHII", 1, 0x2010, UNDEFINED, len(equipment), equipment_at) + b"\x00" * 4
        return b"OLYMP\x00\x01\x00" + main + equipment

    exif = read_exif_bytes(jpeg(exif_with_note(b"OLYMPUS OPTICAL CO.,LTD", note)))
    assert exif.lens == "ZUIKO DIGITAL 14-54mm"


def reconyx_note(words: list[int]) -> bytes:
    return b"\x01\xf1\x03\x00\x03\x00\x00\x00" + b"\x00" * 14 + struct.pack("<6H", *words) + b"\x00" * 20


def test_reconyx_capture_time_fills_a_missing_exif_date() -> None:
    block = exif_with_note(b"RECONYX", lambda start: reconyx_note([0, 0, 10, 3, 16, 2020]))
    assert read_exif_bytes(jpeg(block)).datetime_original == datetime(2020, 3, 16, 10, 0, 0)


def test_reconyx_big_endian_words_and_impossible_dates() -> None:
    swapped = [((word & 0xFF) << 8) | (word >> 8) for word in [5, 30, 12, 12, 31, 2019]]
    block = exif_with_note(b"RECONYX", lambda start: reconyx_note(swapped))
    assert read_exif_bytes(jpeg(block)).datetime_original == datetime(2019, 12, 31, 12, 30, 5)
    broken = exif_with_note(b"RECONYX", lambda start: reconyx_note([0, 0, 10, 13, 40, 2020]))
    assert read_exif_bytes(jpeg(broken)).datetime_original is None


def test_reconyx_date_does_not_override_exif() -> None:
    exif_date = [ascii_entry(0x9003, b"2021:01:02 03:04:05")]
    block = exif_with_note(b"RECONYX", lambda start: reconyx_note([0, 0, 10, 3, 16, 2020]), exif=exif_date)
    assert read_exif_bytes(jpeg(block)).datetime_original == datetime(2021, 1, 2, 3, 4, 5)


# --- hostile notes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "note"),
    [
        (b"Canon", b""),
        (b"Canon", b"\xff\xff" + b"\x01\x00\x03\x00\xff\xff\xff\x7f\xf0\xff\xff\xff" * 3),
        (b"Canon", b"\x01\x00\x01\x00\x03\x00\x02\x00\x00\x00\x00\x00\x00\x00" + b"II*\x00\xff\xff\xff\xff"),
        (b"CASIO", b"QVC\x00\x00\x00\xff\xff"),
        (b"NIKON", b"Nikon\x00\x02\x10\x00\x00MM\x00*\xff\xff\xff\xff"),
        (b"EASTMAN KODAK COMPANY", b"KDK INFO\x01"),
        (b"OLYMPUS", b"OLYMPUS\x00II\x03\x00\x01\x00\x10\x20\x0d\x00\x01\x00\x00\x00\xff\xff\xff\xff"),
        (b"OLYMPUS", b"OLYMP\x00\x01\x00\x01\x00\x10\x20\x07\x00\xff\xff\xff\xff\x00\x00\x00\x00"),
        (b"RECONYX", b"\x01\xf1\x03\x00"),
    ],
)
def test_broken_notes_give_nothing_and_spare_the_exif_values(make: bytes, note: bytes) -> None:
    block = exif_with_note(make, lambda start: note, exif=EXIF_ISO_400)
    assert isinstance(read_maker_note(block, make.decode()), list)
    exif = read_exif_bytes(jpeg(block))
    assert exif.make == make.decode()
    assert exif.iso == 400


@pytest.mark.parametrize(
    "make", ["Canon", "CASIO", "NIKON CORPORATION", "EASTMAN KODAK COMPANY", "OLYMPUS", "RECONYX"]
)
def test_random_corruption_of_notes_never_raises(make: str) -> None:
    builders: dict[str, Callable[[int], bytes]] = {
        "Canon": canon_note(0x4000 | 100, (0, 128), b"EF 50mm"),
        "CASIO": lambda start: b"QVC\x00\x00\x00" + ifd([(0x3014, SHORT, 1, b"\x00\x32")], start + 6, ">"),
        "NIKON CORPORATION": nikon_note((0, 200)),
        "EASTMAN KODAK COMPANY": lambda start: kodak_main(464, 673, 108),
        "OLYMPUS": lambda start: b"OLYMPUS\x00II\x03\x00" + ifd([(0x2010, IFD, 1, b"\x20\x00\x00\x00")], 12),
        "RECONYX": lambda start: reconyx_note([0, 0, 10, 3, 16, 2020]),
    }
    block = bytearray(exif_with_note(make.encode(), builders[make]))
    generator = random.Random(make)
    for _ in range(300):
        mutated = bytearray(block)
        for _ in range(generator.randint(1, 8)):
            position = generator.randrange(6, len(mutated))
            mutated[position] = generator.randrange(256)
        assert isinstance(read_maker_note(bytes(mutated), make), list)


def test_no_exif_structure_gives_no_note() -> None:
    assert read_maker_note(b"", "Canon") == []
    assert read_maker_note(b"Exif\x00\x00garbage", "Canon") == []
    assert read_maker_note(b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00", "Canon") == []
