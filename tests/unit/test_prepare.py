"""Photo preparation: accepted formats, refusals and limits, colour conversion, size and JPEG output."""

from __future__ import annotations

import contextlib
import io
import pickle
import random
import struct
import warnings
import zlib
from collections.abc import Iterator

import pillow_heif
import pytest
from PIL import Image, ImageChops, ImageCms, ImageFile, ImageStat

import core.prepare
from core.analysis_types import ExifData, Photo, PreparedPhoto
from core.errors import CorruptImage, TooLarge, TooSmall, UnsupportedFormat
from core.limits import ImageLimits
from core.prepare import prepare_photo

pillow_heif.register_heif_opener()

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def encode(image: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **params)
    return buffer.getvalue()


def prepare(data: bytes, limits: ImageLimits | None = None) -> PreparedPhoto:
    return prepare_photo(Photo(data, "upload"), limits or ImageLimits())


def scene(size: tuple[int, int]) -> Image.Image:
    """Red left half, blue right half: colours that survive any codec, checked at known places."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1]))
    return image


def close_to(actual: object, expected: tuple[int, ...], tolerance: int = 12) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def noise(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Incompressible pixels: the worst case for JPEG size."""
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) of every segment before the image data."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        yield marker, data[position + 4 : position + 2 + length]
        if marker == 0xDA:
            return
        position += 2 + length


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose SOF0 header claims another size (its scan data is unchanged)."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def with_png_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR claims another size, with a valid CRC so only the size is a lie."""
    ihdr = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]


# --- accepted formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "source_format"),
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
def test_each_format_is_accepted(image_format: str, source_format: str) -> None:
    prepared = prepare(encode(scene((240, 160)), image_format, quality=90))

    assert prepared.source_format == source_format
    assert prepared.image.mode == "RGB"
    assert prepared.image.size == (240, 160)
    assert (prepared.original_width, prepared.original_height) == (240, 160)
    assert close_to(prepared.image.getpixel((60, 80)), RED)
    assert close_to(prepared.image.getpixel((180, 80)), BLUE)


def animation(image_format: str) -> bytes:
    first, second = Image.new("RGB", (160, 120), RED), Image.new("RGB", (160, 120), BLUE)
    return encode(first, image_format, save_all=True, append_images=[second], quality=90)


@pytest.mark.parametrize("image_format", ["GIF", "WEBP", "PNG", "MPO", "TIFF"])
def test_only_the_first_frame_of_a_multi_frame_file_is_used(image_format: str) -> None:
    data = animation(image_format)
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 2

    prepared = prepare(data)

    assert prepared.source_format == image_format
    assert close_to(prepared.image.getpixel((80, 60)), RED)


def test_the_file_name_does_not_matter() -> None:
    png = encode(scene((120, 100)), "PNG")
    assert prepare_photo(Photo(png, "holiday.jpg")).source_format == "PNG"
    with pytest.raises(UnsupportedFormat, match="an HTML page"):
        prepare_photo(Photo(b"<html><body>Forbidden</body></html>", "photo.jpg"))


def test_an_empty_upload_is_refused_as_such() -> None:
    with pytest.raises(UnsupportedFormat) as caught:
        prepare(b"")
    assert str(caught.value).startswith("That file looks like an empty file, not a photo.")


# --- limits -----------------------------------------------------------------------------------


def test_too_many_bytes_are_refused_before_anything_else() -> None:
    data = encode(noise((200, 200)), "PNG")  # about 120 KB
    with pytest.raises(TooLarge) as caught:
        prepare(data, ImageLimits(max_bytes=50_000))

    assert caught.value.reason == "too_many_bytes"
    assert str(caught.value) == f"This file is {round(len(data) / 1000)} KB; the limit is 50 KB."


def test_megabyte_sizes_are_shown_in_megabytes() -> None:
    data = b"\xff\xd8\xff" + bytes(2_600_000)
    with pytest.raises(TooLarge, match=r"^This file is 2\.6 MB; the limit is 2 MB\.$"):
        prepare(data, ImageLimits(max_bytes=2_000_000))


def test_pixels_are_limited_from_the_header_before_decoding() -> None:
    data = with_jpeg_size(encode(scene((16, 16)), "JPEG"), 65000, 65000)
    with pytest.raises(TooLarge) as caught:
        prepare(data)

    assert caught.value.reason == "too_many_pixels"
    assert str(caught.value) == "This image is 65000×65000 pixels; the limit is 100 megapixels."


def test_a_png_decompression_bomb_is_refused_with_a_clear_message() -> None:
    data = with_png_size(encode(Image.new("RGB", (16, 16)), "PNG"), 10000, 10000)
    with pytest.raises(TooLarge) as caught:
        prepare(data)

    assert caught.value.reason == "too_many_pixels_to_decode"
    message = str(caught.value)
    assert "10000×10000 pixels" in message
    assert "the limit for PNG images is 50 megapixels" in message
    assert "decompression bomb" in message


def test_the_full_decode_cap_spares_jpegs_which_the_decoder_scales_down() -> None:
    limits = ImageLimits(max_full_decode_pixels=1_000_000, max_side=400)
    image = scene((1200, 1000))

    assert max(prepare(encode(image, "JPEG"), limits).image.size) <= 400
    for image_format in ("PNG", "WEBP", "TIFF"):
        with pytest.raises(TooLarge, match=r"the limit for \w+ images is 1 megapixels"):
            prepare(encode(image, image_format), limits)


def test_pillows_own_bomb_threshold_neither_trips_first_nor_warns() -> None:
    """Pillow warns above 89.5 Mpx and refuses above 179 Mpx; ours (100 Mpx) is the only rule."""
    jpeg = encode(scene((16, 16)), "JPEG")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # Within our limit but over Pillow's warning threshold: decoding starts (and finds the
        # data cut short), so neither Pillow's warning nor a TooLarge came first.
        with pytest.raises(CorruptImage):
            prepare(with_jpeg_size(jpeg, 10000, 9500)[:-2])
        # Over Pillow's error threshold but allowed by the application's settings.
        with pytest.raises(CorruptImage):
            prepare(with_jpeg_size(jpeg, 14000, 14000)[:-2], ImageLimits(max_pixels=200_000_000))


def test_a_gif_frame_growing_the_canvas_is_refused_by_size() -> None:
    """Pillow enlarges a GIF's canvas to its first frame at open, and checks that size itself."""
    data = encode(Image.new("P", (16, 16)), "GIF")
    frame = data.index(b",\x00\x00\x00\x00")  # image descriptor at (0, 0)
    grown = data[: frame + 5] + struct.pack("<HH", 20000, 20000) + data[frame + 9 :]
    with pytest.raises(TooLarge) as caught:
        prepare(grown)

    assert caught.value.reason == "too_many_pixels"
    assert str(caught.value) == "This image has 400 megapixels; the limit is 100 megapixels."


def test_pillows_global_pixel_limit_is_left_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    prepare(encode(scene((120, 100)), "PNG"))
    assert before == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("size", [(79, 200), (200, 79), (40, 40)])
def test_images_under_the_minimum_side_are_too_small(size: tuple[int, int]) -> None:
    with pytest.raises(TooSmall) as caught:
        prepare(encode(scene(size), "PNG"))

    assert caught.value.reason == "too_small"
    assert str(caught.value) == (
        f"This image is {size[0]}×{size[1]} pixels; photos must be at least 80 pixels on each side."
    )


def test_the_minimum_side_itself_is_accepted() -> None:
    assert prepare(encode(scene((80, 80)), "PNG")).image.size == (80, 80)


def test_an_image_too_thin_to_keep_the_minimum_side_once_scaled_is_refused() -> None:
    with pytest.raises(TooSmall) as caught:
        prepare(encode(scene((4000, 150)), "PNG"))

    assert caught.value.reason == "too_narrow"
    assert "4000×150 pixels: too long and thin" in str(caught.value)


def test_limits_are_validated_when_made() -> None:
    with pytest.raises(ValueError, match="max_jpeg_bytes"):
        ImageLimits(max_jpeg_bytes=1000)
    with pytest.raises(ValueError, match="max_side"):
        ImageLimits(min_side=100, max_side=50)
    with pytest.raises(ValueError, match="jpeg_quality"):
        ImageLimits(jpeg_quality=100)
    assert ImageLimits().min_long_side == 1440


# --- damaged files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "name"),
    [
        ("JPEG", "JPEG"),
        ("PNG", "PNG"),
        ("GIF", "GIF"),
        ("WEBP", "WebP"),
        ("TIFF", "TIFF"),
        ("BMP", "BMP"),
        ("HEIF", "HEIC"),
        ("AVIF", "AVIF"),
    ],
)
@pytest.mark.parametrize("kept", [0.98, 0.6, 0.1])
def test_truncated_files_are_refused_not_half_processed(image_format: str, name: str, kept: float) -> None:
    data = encode(noise((200, 150)), image_format, quality=90)
    with pytest.raises(CorruptImage) as caught:
        prepare(data[: int(len(data) * kept)])

    assert caught.value.reason == "corrupt"
    assert str(caught.value).startswith(f"This {name} file is damaged or incomplete")


def test_a_png_with_damaged_image_data_is_refused() -> None:
    data = bytearray(encode(noise((200, 150)), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 2000 : idat + 2100] = bytes(100)  # CRCs are not checked for IDAT; zlib notices
    with pytest.raises(CorruptImage):
        prepare(bytes(data))


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10,
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(40),
        b"GIF89a\x10\x00",
        b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(8),
        b"II*\x00\xff\xff\xff\x7f" + bytes(32),
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(16),
    ],
)
def test_headers_without_an_image_are_refused_as_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptImage):
        prepare(data)


def test_a_jpeg_with_headers_but_no_image_data_is_corrupt() -> None:
    data = encode(noise((200, 150)), "JPEG")
    with pytest.raises(CorruptImage):
        prepare(data[: data.index(b"\xff\xda") + 14])


def test_an_exif_reader_that_decodes_cannot_let_a_truncated_image_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reader never raises; had it decoded our image and swallowed the error, a half-filled
    image would look loaded. Decoding is done on an image object the reader never saw."""

    def decoding_reader(image: Image.Image) -> ExifData:
        with contextlib.suppress(OSError):
            image.load()
        return ExifData()

    monkeypatch.setattr(core.prepare, "read_exif", decoding_reader)
    for image_format in ("JPEG", "PNG"):
        data = encode(noise((200, 150)), image_format)
        with pytest.raises(CorruptImage):
            prepare(data[: len(data) // 2])


def test_truncated_images_stay_refused_by_pillow() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_preparing_refuses_to_run_when_pillow_accepts_truncated_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        prepare(encode(scene((120, 100)), "PNG"))


# --- colour -----------------------------------------------------------------------------------


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (120, 100), (0, 255, 255, 0))  # Pillow writes Adobe's inverted CMYK
    prepared = prepare(encode(cmyk, "JPEG", quality=95))
    assert close_to(prepared.image.getpixel((60, 50)), RED)


@pytest.mark.parametrize("image_format", ["PNG", "GIF"])
def test_palette_transparency_is_shown_over_white(image_format: str) -> None:
    image = Image.new("P", (120, 100), 0)
    image.putpalette([*RED, *BLUE])
    image.paste(1, (60, 0, 120, 100))
    prepared = prepare(encode(image, image_format, transparency=1))

    assert prepared.image.getpixel((30, 50)) == RED
    assert prepared.image.getpixel((90, 50)) == WHITE


def test_alpha_is_composited_over_white() -> None:
    image = Image.new("RGBA", (120, 100), (255, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 40, 100))
    image.paste((255, 0, 0, 128), (40, 0, 80, 100))
    prepared = prepare(encode(image, "PNG"))

    assert prepared.image.getpixel((20, 50)) == RED
    assert close_to(prepared.image.getpixel((60, 50)), (255, 127, 127), tolerance=2)
    assert prepared.image.getpixel((100, 50)) == WHITE


def test_grey_with_alpha_is_composited_over_white() -> None:
    image = Image.new("LA", (120, 100), (0, 128))
    assert close_to(prepare(encode(image, "PNG")).image.getpixel((60, 50)), (127, 127, 127), 2)


def test_one_bit_images_become_black_and_white() -> None:
    image = Image.new("1", (120, 100), 0)
    image.paste(1, (60, 0, 120, 100))
    prepared = prepare(encode(image, "PNG"))
    assert prepared.image.getpixel((30, 50)) == (0, 0, 0)
    assert prepared.image.getpixel((90, 50)) == WHITE


def test_16_bit_grey_is_scaled_not_clipped() -> None:
    image = Image.new("I;16", (120, 100), 128 * 257)
    image.paste(65535, (60, 0, 120, 100))
    data = encode(image, "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "I;16"

    prepared = prepare(data)

    assert close_to(prepared.image.getpixel((30, 50)), (128, 128, 128), 1)
    assert prepared.image.getpixel((90, 50)) == WHITE


def test_32_bit_integer_grey_is_scaled_by_its_16_bit_range() -> None:
    image = Image.new("I", (120, 100), 0)
    image.paste(40000, (60, 0, 120, 100))
    prepared = prepare(encode(image, "TIFF"))
    assert prepared.image.getpixel((30, 50)) == (0, 0, 0)
    assert close_to(prepared.image.getpixel((90, 50)), (156, 156, 156), 1)


def test_float_grey_in_0_to_1_is_scaled() -> None:
    image = Image.new("F", (120, 100), 0.5)
    assert close_to(prepare(encode(image, "TIFF")).image.getpixel((60, 50)), (128, 128, 128), 1)


def linear_rgb_profile() -> bytes:
    """An ICC v2 profile for linear-light RGB with sRGB primaries: 50% grey is not 128 in sRGB."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(v * 65536)) for v in (x, y, z))

    description = b"Linear RGB for tests\x00"
    tags = {
        b"desc": b"desc" + bytes(4) + struct.pack(">I", len(description)) + description + bytes(12 + 67),
        b"wtpt": xyz(0.9642, 1.0, 0.8249),
        b"rXYZ": xyz(0.4361, 0.2225, 0.0139),
        b"gXYZ": xyz(0.3851, 0.7169, 0.0971),
        b"bXYZ": xyz(0.1431, 0.0606, 0.7141),
        b"rTRC": b"curv" + bytes(8),  # no entries: identity, i.e. gamma 1.0
        b"gTRC": b"curv" + bytes(8),
        b"bTRC": b"curv" + bytes(8),
    }
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, body = struct.pack(">I", len(tags)), b""
    for signature, payload in tags.items():
        payload += bytes(-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += payload
    size = 128 + table_size + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + b"\x02\x10\x00\x00mntrRGB XYZ "
        + bytes(12)
        + b"acsp"
        + bytes(24)
        + struct.pack(">I", 0)
        + xyz(0.9642, 1.0, 0.8249)[8:]
    )
    header += bytes(128 - len(header))
    return header + table + body


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_an_embedded_icc_profile_is_converted_to_srgb(image_format: str) -> None:
    grey = Image.new("RGB", (120, 100), (128, 128, 128))
    prepared = prepare(encode(grey, image_format, icc_profile=linear_rgb_profile(), quality=95))
    # Linear 0.502 is 0.735 in sRGB's curve: 188.
    assert close_to(prepared.image.getpixel((60, 50)), (188, 188, 188), 3)


def test_an_srgb_profile_changes_nothing() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    grey = Image.new("RGB", (120, 100), (128, 128, 128))
    assert prepare(encode(grey, "PNG", icc_profile=srgb)).image.getpixel((60, 50)) == (128, 128, 128)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_an_unusable_icc_profile_is_ignored_not_fatal(mode: str) -> None:
    grey = Image.new(mode, (120, 100), 128 if mode == "L" else (128, 128, 128))
    for profile in (b"this is not an ICC profile", linear_rgb_profile()[:200]):
        assert prepare(encode(grey, "PNG", icc_profile=profile)).image.getpixel((60, 50)) == (128, 128, 128)
    # A valid RGB profile does not describe greyscale pixels.
    if mode == "L":
        assert prepare(encode(grey, "PNG", icc_profile=linear_rgb_profile())).image.getpixel((60, 50)) == (
            128,
            128,
            128,
        )


# --- output -----------------------------------------------------------------------------------


def test_neither_the_jpeg_nor_the_image_carries_metadata() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    exif[0x0112] = 1
    data = encode(scene((240, 160)), "JPEG", exif=exif.tobytes(), icc_profile=linear_rgb_profile())

    prepared = prepare(data)

    markers = {marker: payload for marker, payload in jpeg_segments(prepared.jpeg)}
    assert not any(
        marker == 0xE1 or payload.startswith(b"ICC_PROFILE") for marker, payload in markers.items()
    )
    assert "exif" not in prepared.image.info
    assert "icc_profile" not in prepared.image.info
    assert len(prepared.image.getexif()) == 0
    assert prepared.exif.orientation == 1  # read from the original, though


def smooth(size: tuple[int, int]) -> Image.Image:
    """Gradients in three directions: detail a JPEG keeps, unlike noise."""
    ramp = Image.linear_gradient("L")
    channels = [ramp.resize(size), ramp.rotate(90).resize(size), Image.radial_gradient("L").resize(size)]
    return Image.merge("RGB", channels)


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    return max(ImageStat.Stat(ImageChops.difference(first.convert("RGB"), second.convert("RGB"))).mean)


def test_the_jpeg_shows_the_image() -> None:
    original = smooth((300, 200))
    prepared = prepare(encode(original, "PNG"))
    decoded = Image.open(io.BytesIO(prepared.jpeg))

    assert decoded.format == "JPEG"
    assert decoded.size == prepared.image.size
    assert mean_difference(decoded, prepared.image) < 2
    assert mean_difference(prepared.image, original) == 0


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_the_prepared_photo_travels_between_processes(image_format: str) -> None:
    """The worker pool pickles the result; the image must be plain pixels, not an open file."""
    prepared = prepare(encode(smooth((300, 200)), image_format))
    assert type(prepared.image) is Image.Image

    copy = pickle.loads(pickle.dumps(prepared))

    assert copy.jpeg == prepared.jpeg
    assert copy.image.tobytes() == prepared.image.tobytes()


def test_a_jpeg_over_the_byte_limit_gets_a_lower_quality_first() -> None:
    image = noise((600, 400))
    default = len(prepare(encode(image, "PNG")).jpeg)
    limit = int(default * 0.8)

    prepared = prepare(encode(image, "PNG"), ImageLimits(max_jpeg_bytes=limit))

    assert len(prepared.jpeg) <= limit
    assert prepared.image.size == (600, 400)


def test_a_jpeg_that_no_quality_brings_under_the_limit_is_made_smaller() -> None:
    prepared = prepare(encode(noise((1000, 800)), "PNG"), ImageLimits(max_jpeg_bytes=64_000))

    assert len(prepared.jpeg) <= 64_000
    assert prepared.image.width < 1000
    assert abs(prepared.image.width / prepared.image.height - 1000 / 800) < 0.02
    assert Image.open(io.BytesIO(prepared.jpeg)).size == prepared.image.size


@pytest.mark.parametrize(
    ("image_format", "size", "expected"),
    [
        ("JPEG", (1600, 1200), (400, 300)),  # DCT scale 1/4 lands in range: no resize
        ("JPEG", (3000, 2000), (375, 250)),  # 1/8
        ("JPEG", (2400, 1600), (300, 200)),  # 1/8, exactly 0.75 x max_side
        ("JPEG", (1000, 750), (400, 300)),  # 1/2 gives 500: one resize
        ("JPEG", (399, 300), (399, 300)),  # small: untouched
        ("PNG", (1600, 1200), (320, 240)),  # box reduction by 5
        ("PNG", (500, 400), (400, 320)),  # no integer factor fits: one resize
        ("PNG", (1000, 300), (334, 100)),
        ("PNG", (300, 399), (300, 399)),
    ],
)
def test_the_long_side_ends_between_three_quarters_of_and_the_maximum(
    image_format: str, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    limits = ImageLimits(max_side=400)
    prepared = prepare(encode(scene(size), image_format), limits)

    assert prepared.image.size == expected
    if max(size) > 400:
        assert limits.min_long_side <= max(prepared.image.size) <= 400
    assert (prepared.original_width, prepared.original_height) == size
    assert close_to(prepared.image.getpixel((expected[0] // 4, expected[1] // 2)), RED)


def test_downscaling_keeps_every_one_pixel_line() -> None:
    """2000 -> 1920 px must blend rows, not drop one in 25 (that erases thin strokes of small text)."""
    image = Image.new("L", (2000, 500), 255)
    lines = range(10, 490, 7)
    for y in lines:
        image.paste(0, (0, y, 2000, y + 1))

    prepared = prepare(encode(image, "PNG")).image.convert("L")

    assert prepared.size == (1920, 480)
    for y in lines:
        scaled = round(y * 0.96)
        darkest, _ = prepared.crop((960, scaled - 1, 961, scaled + 2)).getextrema()
        assert isinstance(darkest, float | int)
        assert darkest < 140, f"line {y} faded to {darkest}"


def test_a_12_megapixel_jpeg_comes_out_between_1440_and_1920() -> None:
    prepared = prepare(encode(scene((4000, 3000)), "JPEG"))
    assert prepared.image.size == (1920, 1440)
    assert len(prepared.jpeg) < 5_000_000
