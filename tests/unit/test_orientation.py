"""EXIF orientation: what the camera meant to show is what the recognizer gets, boxes included.

Each test draws the picture as it should be *displayed* (a red square at a known place), stores it
the way a camera would for a given Orientation (the inverse transform, written with piexif), and
checks where the square is in the prepared image.
"""

from __future__ import annotations

import io

import piexif
import pillow_heif
import pytest
from PIL import Image, ImageChops, ImageOps

from core.analysis_types import Box, Photo, PreparedPhoto
from core.limits import ImageLimits
from core.prepare import prepare_photo

pillow_heif.register_heif_opener()

RED = (255, 0, 0)
DISPLAYED_SIZE = (300, 200)
# Where the red square is in the displayed picture, as ratios (left, top, width, height).
SQUARE = Box(left=0.1, top=0.2, width=0.2, height=0.3)

# How a camera stores the displayed picture for each EXIF Orientation (TIFF 6.0 / EXIF 2.3):
# the transform that, applied to the displayed picture, gives the stored pixels.
STORED_FROM_DISPLAYED: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,  # mirrored horizontally
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,  # mirrored vertically
    5: Image.Transpose.TRANSPOSE,  # mirrored along the main diagonal
    6: Image.Transpose.ROTATE_90,  # display = stored turned 90 degrees clockwise
    7: Image.Transpose.TRANSVERSE,  # mirrored along the anti-diagonal
    8: Image.Transpose.ROTATE_270,  # display = stored turned 90 degrees counter-clockwise
}


def displayed() -> Image.Image:
    image = Image.new("RGB", DISPLAYED_SIZE, (255, 255, 255))
    image.paste(RED, SQUARE.to_pixels(*DISPLAYED_SIZE))
    return image


def stored_photo(orientation: int, image_format: str = "JPEG") -> bytes:
    """The displayed picture as a camera stores it, with EXIF Orientation = `orientation`."""
    transform = STORED_FROM_DISPLAYED.get(orientation)
    stored = displayed() if transform is None else displayed().transpose(transform)
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: orientation}})
    buffer = io.BytesIO()
    stored.save(buffer, format=image_format, exif=exif, quality=95)
    return buffer.getvalue()


def is_red(pixel: object) -> bool:
    assert isinstance(pixel, tuple)
    red, green, blue = (int(channel) for channel in pixel[:3])
    return red > 200 and green < 60 and blue < 60


def assert_square_where_displayed(prepared: PreparedPhoto) -> None:
    """The red square covers SQUARE (as ratios) in the prepared image, and nothing else is red."""
    width, height = prepared.image.size
    x0, y0, x1, y1 = SQUARE.to_pixels(width, height)
    margin = 2  # resampling and JPEG soften the square's edges
    inside = [(x, y) for x in range(x0 + margin, x1 - margin) for y in range(y0 + margin, y1 - margin)]
    assert all(is_red(prepared.image.getpixel(point)) for point in inside)
    outside = [
        (x, y)
        for x in range(0, width, 3)
        for y in range(0, height, 3)
        if not (x0 - margin <= x < x1 + margin and y0 - margin <= y < y1 + margin)
    ]
    assert not any(is_red(prepared.image.getpixel(point)) for point in outside)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_fixture_agrees_with_pillows_reference_transpose(orientation: int) -> None:
    """Guards the test itself: Pillow's exif_transpose turns our stored file back into the picture."""
    with Image.open(io.BytesIO(stored_photo(orientation, "PNG"))) as stored:
        upright = ImageOps.exif_transpose(stored)
    assert upright.size == DISPLAYED_SIZE
    assert ImageChops.difference(upright.convert("RGB"), displayed()).getbbox() is None


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_shows_the_picture_upright(orientation: int, image_format: str) -> None:
    prepared = prepare_photo(Photo(stored_photo(orientation, image_format)))

    assert prepared.image.size == DISPLAYED_SIZE
    assert prepared.orientation == orientation
    stored_size = DISPLAYED_SIZE[::-1] if orientation >= 5 else DISPLAYED_SIZE
    assert (prepared.original_width, prepared.original_height) == stored_size
    assert_square_where_displayed(prepared)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_applied_after_downsizing(orientation: int) -> None:
    prepared = prepare_photo(Photo(stored_photo(orientation)), ImageLimits(min_side=20, max_side=120))

    width, height = prepared.image.size
    assert 90 <= width <= 120
    assert height == round(width * DISPLAYED_SIZE[1] / DISPLAYED_SIZE[0])
    assert_square_where_displayed(prepared)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_box_drawn_from_ratios_lands_on_the_square(orientation: int) -> None:
    prepared = prepare_photo(Photo(stored_photo(orientation)))

    x0, y0, x1, y1 = SQUARE.to_pixels(prepared.width, prepared.height)
    corners = [(x0 + 2, y0 + 2), (x1 - 3, y0 + 2), (x0 + 2, y1 - 3), (x1 - 3, y1 - 3)]
    assert all(is_red(prepared.image.getpixel(corner)) for corner in corners)


@pytest.mark.parametrize("invalid", [0, 9, 65535])
def test_invalid_orientations_mean_no_rotation(invalid: int) -> None:
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: invalid}})
    buffer = io.BytesIO()
    displayed().save(buffer, format="JPEG", exif=exif, quality=95)

    prepared = prepare_photo(Photo(buffer.getvalue()))

    assert prepared.orientation == 1
    assert prepared.image.size == DISPLAYED_SIZE
    assert_square_where_displayed(prepared)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_heif_is_not_rotated_twice(orientation: int) -> None:
    """pillow-heif writes the orientation as the container's own rotation and applies it when
    decoding; preparation must not rotate the already upright pixels again."""
    prepared = prepare_photo(Photo(stored_photo(orientation, "HEIF")))

    assert prepared.image.size == DISPLAYED_SIZE
    assert prepared.orientation == orientation
    assert_square_where_displayed(prepared)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_avif_orientation_is_applied_once(orientation: int) -> None:
    prepared = prepare_photo(Photo(stored_photo(orientation, "AVIF")))

    assert prepared.image.size == DISPLAYED_SIZE
    assert_square_where_displayed(prepared)
