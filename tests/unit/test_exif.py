"""The EXIF reader on images generated here: every field, every container, and hostile EXIF.

Well-formed EXIF is written with piexif. Hostile EXIF (wrong types, lying counts, 0/0, broken
pointers) cannot be written by a validating library, so `_tiff` lays out the TIFF structure by hand.
"""

from __future__ import annotations

import io
import math
import random
import struct
import zlib
from datetime import UTC, datetime, timedelta, timezone

import piexif
import pytest
from PIL import Image, PngImagePlugin

from core.analysis_types import ExifData, GpsPosition
from core.exif import format_exposure, orientation_to_apply, read_exif, read_exif_bytes, register_heif_opener
from core.exif_values import describe_flash

# --- building images ----------------------------------------------------------------------------

ASCII, SHORT, LONG, RATIONAL, BYTE, UNDEFINED = 2, 3, 4, 5, 1, 7
Entry = tuple[int, int, int, bytes]  # tag, type, count (may lie), raw value bytes


def ascii_tag(tag: int, text: bytes) -> Entry:
    return (tag, ASCII, len(text) + 1, text + b"\x00")


def short_tag(tag: int, *values: int) -> Entry:
    return (tag, SHORT, len(values), struct.pack(f"<{len(values)}H", *values))


def rational_tag(tag: int, *pairs: tuple[int, int]) -> Entry:
    return (tag, RATIONAL, len(pairs), b"".join(struct.pack("<II", n, d) for n, d in pairs))


def _ifd_size(entries: list[Entry]) -> int:
    data = sum(len(value) + len(value) % 2 for *_, value in entries if len(value) > 4)
    return 2 + 12 * len(entries) + 4 + data


def _ifd_bytes(entries: list[Entry], start: int) -> bytes:
    data_start = start + 2 + 12 * len(entries) + 4
    table, data = struct.pack("<H", len(entries)), b""
    for tag, kind, count, value in sorted(entries):
        if len(value) <= 4:
            field = value.ljust(4, b"\x00")
        else:
            field = struct.pack("<I", data_start + len(data))
            data += value + b"\x00" * (len(value) % 2)
        table += struct.pack("<HHI", tag, kind, count) + field
    return table + struct.pack("<I", 0) + data


def _tiff(ifd0: list[Entry], exif: list[Entry] | None = None, gps: list[Entry] | None = None) -> bytes:
    """An "Exif\\0\\0"-prefixed little-endian TIFF block with optional Exif and GPS IFDs."""
    ifd0 = list(ifd0)
    pointers = [(0x8769, exif), (0x8825, gps)]
    for tag, sub in pointers:
        if sub is not None:
            ifd0.append((tag, LONG, 1, b"\x00" * 4))
    offset = 8 + _ifd_size(ifd0)
    blocks = b""
    for tag, sub in pointers:
        if sub is not None:
            ifd0 = [(t, k, c, struct.pack("<I", offset) if t == tag else v) for t, k, c, v in ifd0]
            blocks += _ifd_bytes(sub, offset)
            offset += _ifd_size(sub)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + _ifd_bytes(ifd0, 8) + blocks


def _jpeg(exif: bytes | None = None, size: tuple[int, int] = (40, 30), **params: object) -> bytes:
    buffer = io.BytesIO()
    extra = dict(params)
    if exif is not None:
        extra["exif"] = exif
    Image.new("RGB", size, (200, 80, 40)).save(buffer, "JPEG", **extra)
    return buffer.getvalue()


def _open(data: bytes) -> Image.Image:
    register_heif_opener()
    return Image.open(io.BytesIO(data))


def _read(data: bytes) -> ExifData:
    with _open(data) as image:
        return read_exif(image)


def _piexif(
    zeroth: dict[int, object] | None = None,
    exif: dict[int, object] | None = None,
    gps: dict[int, object] | None = None,
) -> bytes:
    block: bytes = piexif.dump({"0th": zeroth or {}, "Exif": exif or {}, "GPS": gps or {}})
    return block


FULL_CAMERA = _piexif(
    zeroth={
        piexif.ImageIFD.Make: b"Canon",
        piexif.ImageIFD.Model: b"Canon EOS 5D Mark IV",
        piexif.ImageIFD.Orientation: 8,
        piexif.ImageIFD.Software: b"Firmware 1.2.3",
    },
    exif={
        piexif.ExifIFD.LensModel: b"EF24-70mm f/2.8L II USM",
        piexif.ExifIFD.DateTimeOriginal: b"2023:07:14 18:30:05",
        piexif.ExifIFD.ExposureTime: (1, 250),
        piexif.ExifIFD.FNumber: (28, 10),
        piexif.ExifIFD.ISOSpeedRatings: 400,
        piexif.ExifIFD.FocalLength: (700, 10),
        piexif.ExifIFD.FocalLengthIn35mmFilm: 70,
        piexif.ExifIFD.Flash: 0x19,
    },
    gps={
        piexif.GPSIFD.GPSLatitudeRef: b"S",
        piexif.GPSIFD.GPSLatitude: ((33, 1), (51, 1), (5436, 100)),
        piexif.GPSIFD.GPSLongitudeRef: b"W",
        piexif.GPSIFD.GPSLongitude: ((70, 1), (39, 1), (0, 1)),
        piexif.GPSIFD.GPSAltitudeRef: 1,
        piexif.GPSIFD.GPSAltitude: (4125, 10),
        piexif.GPSIFD.GPSImgDirection: (2705, 10),
    },
)


# --- every field ----------------------------------------------------------------------------------


def test_reads_every_field_of_a_camera_jpeg() -> None:
    exif = _read(_jpeg(FULL_CAMERA, size=(60, 40)))
    assert exif == ExifData(
        make="Canon",
        model="Canon EOS 5D Mark IV",
        lens="EF24-70mm f/2.8L II USM",
        datetime_original=datetime(2023, 7, 14, 18, 30, 5),
        exposure_time=0.004,
        f_number=2.8,
        iso=400,
        focal_length=70.0,
        focal_length_35mm=70.0,
        flash="fired (auto)",
        orientation=8,
        software="Firmware 1.2.3",
        gps=GpsPosition(
            latitude=-(33 + 51 / 60 + 54.36 / 3600),
            longitude=-(70 + 39 / 60),
            altitude=-412.5,
            direction=270.5,
        ),
        image_width=60,
        image_height=40,
    )


def test_image_without_exif_has_only_its_size() -> None:
    exif = _read(_jpeg(size=(33, 21)))
    assert exif == ExifData(image_width=33, image_height=21)
    assert exif.is_empty


def test_size_is_the_stored_size_not_the_oriented_one() -> None:
    exif = _read(_jpeg(_piexif(zeroth={piexif.ImageIFD.Orientation: 6}), size=(80, 20)))
    assert (exif.image_width, exif.image_height, exif.orientation) == (80, 20, 6)


# --- date and UTC offset ----------------------------------------------------------------------------


def _dated(value: bytes, **offsets: bytes) -> ExifData:
    tags: dict[int, object] = {piexif.ExifIFD.DateTimeOriginal: value}
    if "original" in offsets:
        tags[piexif.ExifIFD.OffsetTimeOriginal] = offsets["original"]
    if "any" in offsets:
        tags[piexif.ExifIFD.OffsetTime] = offsets["any"]
    return _read(_jpeg(_piexif(exif=tags)))


def test_offset_time_original_makes_the_date_aware() -> None:
    moment = _dated(b"2022:02:16 12:55:41", original=b"+05:30").datetime_original
    assert moment == datetime(2022, 2, 16, 12, 55, 41, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def test_offset_time_is_the_fallback_and_negative_offsets_work() -> None:
    moment = _dated(b"2022:02:16 12:55:41", any=b"-03:00").datetime_original
    assert moment is not None
    assert moment.utcoffset() == timedelta(hours=-3)


def test_offset_time_original_wins_over_offset_time() -> None:
    moment = _dated(b"2022:02:16 12:55:41", original=b"+01:00", any=b"+09:00").datetime_original
    assert moment is not None
    assert moment.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("offset", [b"+99:00", b"garbage", b"   :  ", b""])
def test_invalid_offset_leaves_the_date_naive(offset: bytes) -> None:
    moment = _dated(b"2022:02:16 12:55:41", original=offset).datetime_original
    assert moment == datetime(2022, 2, 16, 12, 55, 41)


@pytest.mark.parametrize(
    "value", [b"    :  :     :  :  ", b"0000:00:00 00:00:00", b"2022:13:45 25:61:00", b"yesterday", b""]
)
def test_blank_or_impossible_dates_are_none(value: bytes) -> None:
    assert _dated(value).datetime_original is None


def test_sub_seconds_and_trailing_junk_are_ignored() -> None:
    assert _dated(b"2012:02:11 14:17:08.253").datetime_original == datetime(2012, 2, 11, 14, 17, 8)


def test_date_from_xmp_when_exif_has_none() -> None:
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
        b'exif:DateTimeOriginal="2013-07-05T03:18:27Z"/></rdf:RDF></x:xmpmeta>'
    )
    moment = _read(_jpeg(xmp=xmp)).datetime_original
    assert moment == datetime(2013, 7, 5, 3, 18, 27, tzinfo=UTC)


# --- GPS -----------------------------------------------------------------------------------------------


def _gps(**tags: object) -> GpsPosition | None:
    names = {
        "lat_ref": piexif.GPSIFD.GPSLatitudeRef,
        "lat": piexif.GPSIFD.GPSLatitude,
        "lon_ref": piexif.GPSIFD.GPSLongitudeRef,
        "lon": piexif.GPSIFD.GPSLongitude,
        "alt_ref": piexif.GPSIFD.GPSAltitudeRef,
        "alt": piexif.GPSIFD.GPSAltitude,
        "direction": piexif.GPSIFD.GPSImgDirection,
    }
    return _read(_jpeg(_piexif(gps={names[name]: value for name, value in tags.items()}))).gps


PARIS_LAT = ((48, 1), (51, 1), (2952, 100))
PARIS_LON = ((2, 1), (17, 1), (4020, 100))


def test_north_east_positions_are_positive() -> None:
    gps = _gps(lat_ref=b"N", lat=PARIS_LAT, lon_ref=b"E", lon=PARIS_LON, alt_ref=0, alt=(35, 1))
    assert gps is not None
    assert math.isclose(gps.latitude, 48.858200, abs_tol=1e-6)
    assert math.isclose(gps.longitude, 2.294500, abs_tol=1e-6)
    assert gps.altitude == 35.0
    assert gps.direction is None


def test_south_west_refs_make_the_position_negative() -> None:
    gps = _gps(lat_ref=b"S", lat=PARIS_LAT, lon_ref=b"W", lon=PARIS_LON)
    assert gps is not None
    assert gps.latitude < 0
    assert gps.longitude < 0


def test_altitude_ref_one_is_below_sea_level() -> None:
    gps = _gps(lat_ref=b"N", lat=PARIS_LAT, lon_ref=b"E", lon=PARIS_LON, alt_ref=1, alt=(4300, 10))
    assert gps is not None
    assert gps.altitude == -430.0


def test_decimal_minutes_are_accepted() -> None:
    gps = _gps(
        lat_ref=b"S", lat=((0, 1), (22278, 1000), (0, 1)), lon_ref=b"E", lon=((36, 1), (3385, 1000), (0, 1))
    )
    assert gps is not None
    assert math.isclose(gps.latitude, -0.3713, abs_tol=1e-6)


@pytest.mark.parametrize(
    "tags",
    [
        {"lat_ref": b"N", "lat": ((91, 1), (0, 1), (0, 1)), "lon_ref": b"E", "lon": PARIS_LON},  # |lat| > 90
        {
            "lat_ref": b"N",
            "lat": PARIS_LAT,
            "lon_ref": b"E",
            "lon": ((181, 1), (0, 1), (0, 1)),
        },  # |lon| > 180
        {"lat_ref": b"N", "lat": ((48, 0), (51, 1), (0, 1)), "lon_ref": b"E", "lon": PARIS_LON},  # x/0
        {"lat_ref": b"N", "lat": ((0, 0), (0, 0), (0, 0)), "lon_ref": b"E", "lon": ((0, 0), (0, 0), (0, 0))},
        {"lat_ref": b"N", "lat": ((0, 1), (0, 1), (0, 1)), "lon_ref": b"E", "lon": ((0, 1), (0, 1), (0, 1))},
        {"lat_ref": b"N", "lat": ((48, 1), (75, 1), (0, 1)), "lon_ref": b"E", "lon": PARIS_LON},  # 75 minutes
        {"lat_ref": b"N", "lat": PARIS_LAT},  # no longitude
        {"alt_ref": 0, "alt": (100, 1)},  # altitude alone is no position
    ],
)
def test_missing_or_nonsense_positions_are_none(tags: dict[str, object]) -> None:
    assert _gps(**tags) is None


def test_broken_altitude_or_direction_keep_the_position() -> None:
    gps = _gps(lat_ref=b"N", lat=PARIS_LAT, lon_ref=b"E", lon=PARIS_LON, alt=(10, 0), direction=(400, 1))
    assert gps is not None
    assert (gps.altitude, gps.direction) == (None, None)


# --- hostile values ------------------------------------------------------------------------------------


def test_zero_denominators_give_none_and_spare_the_other_fields() -> None:
    block = _tiff(
        [ascii_tag(0x010F, b"Nikon"), short_tag(0x0112, 3)],
        exif=[
            rational_tag(0x829A, (1, 0)),  # ExposureTime 1/0
            rational_tag(0x829D, (0, 0)),  # FNumber 0/0
            rational_tag(0x920A, (50, 0)),  # FocalLength
            short_tag(0x8827, 200),
        ],
    )
    exif = _read(_jpeg(block))
    assert (exif.exposure_time, exif.f_number, exif.focal_length) == (None, None, None)
    assert (exif.make, exif.orientation, exif.iso) == ("Nikon", 3, 200)


@pytest.mark.parametrize("orientation", [0, 9, 255])
def test_invalid_orientation_is_none(orientation: int) -> None:
    assert _read(_jpeg(_piexif(zeroth={piexif.ImageIFD.Orientation: orientation}))).orientation is None


def test_orientation_falls_back_to_xmp() -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><tiff:Orientation>6</tiff:Orientation></x:xmpmeta>'
    assert _read(_jpeg(xmp=xmp)).orientation == 6


def test_make_model_and_lens_fall_back_to_xmp() -> None:
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Make="Smith &amp; Sons"'
        b' tiff:Model = "Box\x07 Camera"><exifEX:LensModel>E 10-18mm F4 OSS</exifEX:LensModel>'
        b"</rdf:Description></x:xmpmeta>"
    )
    exif = _read(_jpeg(_piexif(zeroth={piexif.ImageIFD.Make: b"Exif Make"}), xmp=xmp))
    assert (exif.make, exif.model, exif.lens) == ("Exif Make", "Box Camera", "E 10-18mm F4 OSS")
    assert _read(_jpeg(xmp=xmp)).make == "Smith & Sons"


def test_wrong_types_give_none() -> None:
    block = _tiff(
        [
            short_tag(0x010F, 42),  # Make as a number
            rational_tag(0x0112, (6, 1)),  # Orientation as a rational
            rational_tag(0x0131, (1, 2)),  # Software as a rational
        ],
        exif=[
            ascii_tag(0x829A, b"1/250"),  # ExposureTime as text
            ascii_tag(0x8827, b"ISO 100"),  # ISO as text
            short_tag(0x9003, 2023),  # DateTimeOriginal as a number
            rational_tag(0x9209, (1, 1)),  # Flash as a rational
            rational_tag(0x829D, (28, 10), (40, 10)),  # FNumber with two values
        ],
    )
    exif = _read(_jpeg(block))
    assert exif == ExifData(image_width=40, image_height=30)


def test_hostile_strings_are_cleaned() -> None:
    block = _tiff(
        [
            ascii_tag(0x010F, b"Evil\x1b[2J\x07Corp\xe2\x80\xae"),  # escape, bell, a bidi override
            ascii_tag(0x0110, b"ION230\x00hidden after the terminator"),
            ascii_tag(0x0131, b"A" * 10_000),
        ],
        exif=[ascii_tag(0xA434, b"Lens \xff\xfe\xc3 caf\xe9")],  # invalid UTF-8
    )
    exif = _read(_jpeg(block))
    assert exif.make == "Evil[2JCorp"
    assert exif.model == "ION230"
    assert exif.software is not None
    assert len(exif.software) == 200
    assert exif.lens == "Lens ÿþÃ café"


def test_lying_counts_and_a_huge_ifd_count_do_not_raise() -> None:
    huge_software = (0x0131, ASCII, 0xFFFFFFFF, struct.pack("<I", 8))  # claims 4 GB
    huge_exposure = (0x829A, RATIONAL, 0x7FFFFFFF, b"\xff" * 4)
    block = _tiff(
        [ascii_tag(0x010F, b"Make"), ascii_tag(0x0110, b"Model"), huge_software],
        exif=[huge_exposure, short_tag(0x8827, 800)],
    )
    exif = _read(_jpeg(block))
    assert (exif.make, exif.model, exif.software) == ("Make", "Model", None)
    assert (exif.exposure_time, exif.iso) == (None, 800)

    entries = struct.pack("<HHI4s", 0x0112, SHORT, 1, struct.pack("<H", 6).ljust(4, b"\x00"))
    claims_65535 = b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 0xFFFF) + entries
    assert _read(_jpeg(claims_65535)).image_width == 40


def test_broken_sub_ifd_pointers_spare_ifd0() -> None:
    block = _tiff([ascii_tag(0x010F, b"Sony"), (0x8769, LONG, 1, struct.pack("<I", 0xFFFFFF00))])
    exif = _read(_jpeg(block))
    assert exif.make == "Sony"
    assert exif.exposure_time is None


@pytest.mark.parametrize(
    "block",
    [
        b"Exif\x00\x00",
        b"Exif\x00\x00garbage that is no TIFF header",
        b"Exif\x00\x00II*\x00\xff\xff\xff\xff",
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00",
    ],
)
def test_broken_exif_blocks_give_an_empty_reading(block: bytes) -> None:
    assert _read(_jpeg(block)) == ExifData(image_width=40, image_height=30)


def test_iso_with_a_leading_zero_value_uses_the_real_one() -> None:
    assert _read(_jpeg(_tiff([], exif=[short_tag(0x8827, 0, 200)]))).iso == 200


# --- containers --------------------------------------------------------------------------------------


def _png(exif: bytes | None = None, size: tuple[int, int] = (40, 30), **params: object) -> bytes:
    buffer = io.BytesIO()
    extra = dict(params)
    if exif is not None:
        extra["exif"] = exif
    Image.new("RGB", size, (10, 200, 30)).save(buffer, "PNG", **extra)
    return buffer.getvalue()


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 8
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        chunks.append((kind, png[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _exif_after_idat(png: bytes) -> bytes:
    """Move the eXIf chunk behind the image data, where some writers put it."""
    chunks = _chunks(png)
    exif = next(data for kind, data in chunks if kind == b"eXIf")
    rest = [(kind, data) for kind, data in chunks if kind not in (b"eXIf", b"IEND")]
    return png[:8] + b"".join(_chunk(k, d) for k, d in [*rest, (b"eXIf", exif), (b"IEND", b"")])


def test_png_exif_chunk_before_the_image_data() -> None:
    exif = _read(_png(FULL_CAMERA))
    assert (exif.make, exif.iso, exif.orientation) == ("Canon", 400, 8)


def test_png_exif_chunk_after_the_image_data_is_found_without_decoding() -> None:
    png = _exif_after_idat(_png(FULL_CAMERA))
    with _open(png) as image:
        assert "exif" not in image.info
        exif = read_exif(image)
        assert image._im is None  # no pixels were decoded (Pillow keeps them in _im)
        image.load()  # the file position was restored: decoding still works
        assert image.getpixel((0, 0)) == (10, 200, 30)
    assert (exif.make, exif.iso, exif.image_width) == ("Canon", 400, 40)


def test_png_with_a_lying_exif_chunk_length_does_not_raise() -> None:
    png = _png()
    iend = png.rindex(b"IEND") - 4
    broken = png[:iend] + struct.pack(">I", 0x7FFFFFFF) + b"eXIf" + b"\x00" * 16
    assert _read(broken) == ExifData(image_width=40, image_height=30)


def test_png_imagemagick_raw_profile() -> None:
    block = _piexif(zeroth={piexif.ImageIFD.Make: b"Magick", piexif.ImageIFD.Orientation: 3})
    text = PngImagePlugin.PngInfo()
    text.add_text("Raw profile type exif", f"\nexif\n{len(block):8d}\n{block.hex()}\n")
    exif = _read(_png(pnginfo=text))
    assert (exif.make, exif.orientation) == ("Magick", 3)


def test_webp_exif() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16)).save(buffer, "WEBP", exif=FULL_CAMERA)
    exif = _read(buffer.getvalue())
    assert (exif.make, exif.lens, exif.orientation, exif.image_width) == (
        "Canon",
        "EF24-70mm f/2.8L II USM",
        8,
        24,
    )


def _heic(exif: bytes, size: tuple[int, int] = (64, 32)) -> bytes:
    register_heif_opener()
    buffer = io.BytesIO()
    Image.new("RGB", size, (0, 0, 255)).save(buffer, "HEIF", exif=exif)
    return buffer.getvalue()


def test_heic_exif_reports_the_file_orientation_and_stored_size() -> None:
    block = _piexif(
        zeroth={piexif.ImageIFD.Make: b"Apple", piexif.ImageIFD.Orientation: 6},
        exif={piexif.ExifIFD.ISOSpeedRatings: 50, piexif.ExifIFD.OffsetTimeOriginal: b"+01:00"},
    )
    with _open(_heic(block)) as image:
        assert image.size == (32, 64)  # pillow-heif hands the image over already rotated
        exif = read_exif(image)
        assert (exif.make, exif.iso, exif.orientation) == ("Apple", 50, 6)
        assert (exif.image_width, exif.image_height) == (64, 32)
        assert orientation_to_apply(image, exif) == 1


def test_jpeg_orientation_is_still_to_be_applied() -> None:
    with _open(_jpeg(_piexif(zeroth={piexif.ImageIFD.Orientation: 6}))) as image:
        assert orientation_to_apply(image, read_exif(image)) == 6
    with _open(_jpeg()) as image:
        assert orientation_to_apply(image, read_exif(image)) == 1


def test_tiff_tags_are_read_from_the_file() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 10)).save(buffer, "TIFF", tiffinfo={0x010F: "Scanner Co", 0x0112: 2})
    exif = _read(buffer.getvalue())
    assert (exif.make, exif.orientation, exif.image_width) == ("Scanner Co", 2, 12)


# --- read_exif_bytes ---------------------------------------------------------------------------------


def test_read_exif_bytes_opens_the_data_itself() -> None:
    assert read_exif_bytes(_jpeg(FULL_CAMERA)).model == "Canon EOS 5D Mark IV"
    assert read_exif_bytes(_heic(_piexif(zeroth={piexif.ImageIFD.Model: b"iPhone 15"}))).model == "iPhone 15"


@pytest.mark.parametrize(
    "data", [b"", b"not an image", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00II*\x00", b"\x89PNG"]
)
def test_read_exif_bytes_on_garbage_is_empty(data: bytes) -> None:
    assert read_exif_bytes(data) == ExifData()


def test_read_exif_bytes_on_a_truncated_file_keeps_what_was_read() -> None:
    noise = Image.frombytes("RGB", (300, 200), random.Random(7).randbytes(300 * 200 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", exif=FULL_CAMERA)
    data = buffer.getvalue()
    exif = read_exif_bytes(data[: len(data) // 2])
    assert (exif.make, exif.image_width) == ("Canon", 300)


# --- display helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.004, "1/250 s"),
        (1 / 3, "1/3 s"),
        (0.5, "1/2 s"),
        (0.004686035614, "1/213 s"),
        (0.0005, "1/2000 s"),
        (0.8, "0.8 s"),
        (0.6, "0.6 s"),
        (1.0, "1 s"),
        (2.5, "2.5 s"),
        (30.0, "30 s"),
    ],
)
def test_format_exposure(seconds: float, text: str) -> None:
    assert format_exposure(seconds) == text


@pytest.mark.parametrize("seconds", [None, 0.0, -1.0, math.nan, math.inf])
def test_format_exposure_of_nothing_is_none(seconds: float | None) -> None:
    assert format_exposure(seconds) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0x00, "did not fire"),
        (0x01, "fired"),
        (0x09, "fired (forced)"),
        (0x10, "off"),
        (0x18, "did not fire (auto)"),
        (0x19, "fired (auto)"),
        (0x59, "fired (auto, red-eye reduction)"),
        (0x20, "no flash"),
        (0x26F1, None),  # reserved bits set: garbage
        (-1, None),
    ],
)
def test_flash_descriptions(value: int, text: str | None) -> None:
    assert describe_flash(value) == text
