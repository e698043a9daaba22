"""The annotated image: what is drawn, where labels go, stable colours and a metadata-free JPEG."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from core.analysis_types import (
    Analysis,
    Box,
    Celebrity,
    DetectedObject,
    Emotion,
    Face,
    FaceAttributes,
    Feature,
    TextLine,
)
from core.annotate import annotate, encode_annotated, plan_annotations, style_for
from core.colors import (
    CELEBRITY_COLOR,
    FACE_PALETTE,
    OBJECT_PALETTE,
    TEXT_COLOR,
    color_for_label,
    relative_luminance,
    text_color_on,
)

PROJECT = Path(__file__).resolve().parents[2]
BACKGROUND = (40, 40, 40)


def _analysis(**parts: object) -> Analysis:
    return Analysis(backend="test", features=frozenset(Feature), **parts)  # type: ignore[arg-type]


def _assert_layout_ok(analysis: Analysis, width: int, height: int) -> None:
    plan = plan_annotations(analysis, width, height)
    for label in plan.labels:
        assert label.rect.within(width, height), label
    for a, b in itertools.combinations(plan.labels, 2):
        assert not a.rect.overlaps(b.rect), (a, b)


def _crowd(count: int) -> Analysis:
    """`count` boxes at almost the same place, the worst case for label layout."""
    objects = tuple(
        DetectedObject(
            f"Thing {i}", 0.9 - i * 0.01, Box(0.40 + (i % 3) * 0.01, 0.40 + (i % 4) * 0.01, 0.2, 0.2)
        )
        for i in range(count)
    )
    return _analysis(objects=objects)


# --- drawing --------------------------------------------------------------------------------


def test_annotate_returns_a_new_image_and_leaves_the_input_untouched() -> None:
    image = Image.new("RGB", (640, 480), BACKGROUND)
    image.info["comment"] = b"keep me"
    before = image.tobytes()
    dog = DetectedObject("Dog", 0.97, Box(0.25, 0.25, 0.5, 0.5))

    out = annotate(image, _analysis(objects=(dog,)))

    assert out is not image
    assert out.size == image.size
    assert out.mode == "RGB"
    assert image.tobytes() == before
    assert image.info == {"comment": b"keep me"}
    assert out.tobytes() != before


def test_object_box_is_drawn_in_its_label_colour_with_a_solid_label() -> None:
    image = Image.new("RGB", (800, 600), BACKGROUND)
    box = Box(0.25, 0.5, 0.5, 0.25)
    analysis = _analysis(objects=(DetectedObject("Dog", 0.97, box),))

    out = annotate(image, analysis)
    plan = plan_annotations(analysis, 800, 600)

    x0, y0, x1, y1 = box.to_pixels(800, 600)
    color = color_for_label("Dog")
    # Left and bottom edges of the outline (the label covers part of the top edge).
    assert out.getpixel((x0, (y0 + y1) // 2)) == color
    assert out.getpixel(((x0 + x1) // 2, y1 - 1)) == color
    assert out.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == BACKGROUND  # boxes are outlines only
    (label,) = plan.labels
    assert label.text == "Dog 97%"
    assert label.background == color
    r = label.rect
    assert out.getpixel((r.x + 1, r.y + 1)) == color  # solid background behind the text
    crop = out.crop((r.x, r.y, r.right, r.bottom))
    assert label.foreground in {c for _, c in crop.getcolors(maxcolors=r.w * r.h) or []}


def test_faces_are_numbered_left_to_right_with_their_attributes() -> None:
    right = Face(
        Box(0.6, 0.2, 0.2, 0.3),
        0.99,
        FaceAttributes(age_low=40, age_high=48, smiling=False, emotions=(Emotion("HAPPY", 0.8),)),
    )
    left = Face(
        Box(0.1, 0.2, 0.2, 0.3),
        0.99,
        FaceAttributes(age_low=25, age_high=32, smiling=True, eyeglasses=True),
    )
    plan = plan_annotations(_analysis(faces=(right, left)), 1200, 800)

    texts = [label.text for label in plan.labels]
    assert texts == ["#1 25-32, smiling, glasses", "#2 40-48, happy"]
    assert {label.background for label in plan.labels} <= set(FACE_PALETTE)


def test_text_lines_are_thin_and_unlabelled_celebrities_are_named() -> None:
    text = TextLine("OPEN", 0.99, Box(0.1, 0.7, 0.3, 0.1))
    celeb = Celebrity("Jane Example", 0.98, Box(0.5, 0.1, 0.2, 0.3))
    plan = plan_annotations(_analysis(text=(text,), celebrities=(celeb,)), 1920, 1080)

    assert [label.text for label in plan.labels] == ["Jane Example"]
    text_mark = next(m for m in plan.marks if m.color == TEXT_COLOR)
    celeb_mark = next(m for m in plan.marks if m.color == CELEBRITY_COLOR)
    assert text_mark.width < celeb_mark.width


def test_sizes_scale_with_the_image() -> None:
    small, large = style_for(400, 300), style_for(1920, 1080)
    assert 11 <= small.font_size < large.font_size
    assert small.line_width <= large.line_width
    assert style_for(1080, 1920) == large  # portrait and landscape alike
    dog = _analysis(objects=(DetectedObject("Dog", 0.9, Box(0.3, 0.3, 0.3, 0.3)),))
    small_label = plan_annotations(dog, 400, 300).labels[0].rect
    large_label = plan_annotations(dog, 1920, 1080).labels[0].rect
    assert small_label.h < large_label.h
    # Similar share of the image height on both, so both read alike when shown at the same size.
    assert small_label.h / 300 > large_label.h / 1080


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_any_image_mode_gives_an_rgb_result(mode: str) -> None:
    image = Image.new(mode, (200, 150))
    out = annotate(image, _analysis(objects=(DetectedObject("Cat", 0.5, Box(0.1, 0.1, 0.5, 0.5)),)))
    assert out.mode == "RGB"
    assert out.size == (200, 150)


def test_corrupt_and_degenerate_boxes_are_skipped_without_error() -> None:
    nan = float("nan")
    objects = (
        DetectedObject("Nan", 0.9, Box(nan, 0.1, 0.2, 0.2)),
        DetectedObject("Inf", 0.9, Box(0.1, float("inf"), 0.2, 0.2)),
        DetectedObject("Empty", 0.9, Box(0.5, 0.5, 0.0, 0.0)),
        DetectedObject("Outside", 0.9, Box(1.5, 1.5, 0.2, 0.2)),
        DetectedObject("Negative", 0.9, Box(0.5, 0.5, -0.2, 0.2)),
        DetectedObject("Spill", 0.9, Box(-0.5, -0.5, 3.0, 3.0)),
    )
    analysis = _analysis(objects=objects)
    plan = plan_annotations(analysis, 300, 200)
    assert [label.text.split()[0] for label in plan.labels] == ["Spill"]
    assert plan.marks[0].corners == (0, 0, 299, 199)
    annotate(Image.new("RGB", (300, 200)), analysis)


# --- label layout ---------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1080, 1920), (400, 300)])
def test_crowded_labels_never_overlap_and_stay_inside(width: int, height: int) -> None:
    analysis = _crowd(20)
    _assert_layout_ok(analysis, width, height)


def test_crowded_labels_are_stacked_not_dropped_when_there_is_room() -> None:
    plan = plan_annotations(_crowd(20), 1920, 1080)
    assert plan.dropped_labels == 0
    assert len(plan.labels) == 20


def test_labels_are_dropped_rather_than_piled_up_when_the_image_is_full() -> None:
    plan = plan_annotations(_crowd(60), 200, 120)
    assert plan.dropped_labels > 0
    assert len(plan.labels) + plan.dropped_labels == 60
    _assert_layout_ok(_crowd(60), 200, 120)


@pytest.mark.parametrize(
    "box",
    [
        Box(0.9, 0.9, 0.1, 0.1),  # bottom right corner
        Box(0.0, 0.0, 0.1, 0.1),  # top left corner: no room above
        Box(0.95, 0.0, 0.05, 1.0),  # along the right edge
        Box(0.0, 0.97, 1.0, 0.03),  # a thin strip at the bottom
        Box(0.0, 0.0, 1.0, 1.0),  # the whole image
    ],
)
def test_labels_at_the_edges_stay_inside_the_image(box: Box) -> None:
    analysis = _analysis(
        objects=(DetectedObject("Traffic Light", 0.88, box),),
        faces=(Face(box, 0.9, FaceAttributes(age_low=20, age_high=30)),),
    )
    plan = plan_annotations(analysis, 640, 360)
    assert len(plan.labels) == 2
    _assert_layout_ok(analysis, 640, 360)


def test_a_label_wider_than_the_image_is_shortened_to_fit() -> None:
    name = "Extraordinarily Long Label Name " * 5
    analysis = _analysis(objects=(DetectedObject(name, 0.5, Box(0.1, 0.1, 0.5, 0.5)),))
    (label,) = plan_annotations(analysis, 200, 200).labels
    assert label.text.endswith("…")
    assert label.rect.within(200, 200)


def test_a_hostile_name_is_drawn_on_one_line() -> None:
    analysis = _analysis(objects=(DetectedObject("Dog\nCat\r\x1b[31mEvil", 0.5, Box(0.1, 0.1, 0.5, 0.5)),))
    (label,) = plan_annotations(analysis, 400, 400).labels
    assert label.text == "Dog Cat  [31mEvil 50%"
    annotate(Image.new("RGB", (400, 400)), analysis)


def test_twenty_boxes_on_full_hd_draw_and_encode() -> None:
    faces = tuple(
        Face(Box(0.05 * i, 0.1 + 0.02 * i, 0.08, 0.12), 0.9, FaceAttributes(age_low=20, age_high=30))
        for i in range(5)
    )
    analysis = _analysis(objects=_crowd(15).objects, faces=faces)
    data = encode_annotated(annotate(Image.new("RGB", (1920, 1080), BACKGROUND), analysis))
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.size == (1920, 1080)


# --- colours --------------------------------------------------------------------------------


def test_label_colours_are_stable_across_processes() -> None:
    names = ["Dog", "Person", "Car", "Traffic Light", "Bicycle"]
    script = f"from core.colors import color_for_label as c; print([c(n) for n in {names!r}])"
    outputs = set()
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=PROJECT, env=env, capture_output=True, text=True, check=True
        )
        outputs.add(result.stdout.strip())
    assert outputs == {str([color_for_label(n) for n in names])}


def test_label_colours_come_from_the_object_palette_and_spread_out() -> None:
    names = ["Dog", "Cat", "Person", "Car", "Tree", "Bird", "Chair", "Cup", "Phone", "Bottle"]
    colors = {color_for_label(n) for n in names}
    assert colors <= set(OBJECT_PALETTE)
    assert len(colors) >= 5
    assert color_for_label("dog ") == color_for_label("Dog")
    assert not set(OBJECT_PALETTE) & {*FACE_PALETTE, CELEBRITY_COLOR, TEXT_COLOR}


@pytest.mark.parametrize("background", [*OBJECT_PALETTE, *FACE_PALETTE, CELEBRITY_COLOR])
def test_label_text_contrasts_with_its_background(background: tuple[int, int, int]) -> None:
    fg = text_color_on(background)
    lighter, darker = sorted((relative_luminance(fg), relative_luminance(background)), reverse=True)
    assert (lighter + 0.05) / (darker + 0.05) >= 4.5  # WCAG AA for normal text


def _name_with_colour(colour: tuple[int, int, int]) -> str:
    return next(f"Thing {i}" for i in range(10_000) if color_for_label(f"Thing {i}") == colour)


def _contrast(a: tuple[int, ...], b: tuple[int, int, int]) -> float:
    lighter, darker = sorted((relative_luminance((a[0], a[1], a[2])), relative_luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


BOX_KINDS = [
    *(("object", colour) for colour in OBJECT_PALETTE),
    ("face", FACE_PALETTE[0]),
    ("celebrity", CELEBRITY_COLOR),
    ("text", TEXT_COLOR),
]


@pytest.mark.parametrize(("kind", "colour"), BOX_KINDS, ids=[f"{k}-{c}" for k, c in BOX_KINDS])
def test_every_box_shows_on_a_background_of_its_own_colour(kind: str, colour: tuple[int, int, int]) -> None:
    """A box colour is sometimes the photo's own (a red box on a red car): each box has a thin
    black or white outline that contrasts with its colour at least 3:1 (WCAG's bar for graphics)."""
    box = Box(0.3, 0.3, 0.4, 0.4)
    if kind == "object":
        analysis = _analysis(objects=(DetectedObject(_name_with_colour(colour), 0.9, box),))
    elif kind == "face":
        analysis = _analysis(faces=(Face(box, 0.99),))
    elif kind == "celebrity":
        analysis = _analysis(celebrities=(Celebrity("Jane Example", 0.98, box),))
    else:
        analysis = _analysis(text=(TextLine("OPEN", 0.99, box),))
    image = Image.new("RGB", (800, 600), colour)

    out = annotate(image, analysis)

    x0, y0, x1, y1 = box.to_pixels(800, 600)
    y_mid, x_mid = (y0 + y1) // 2, (x0 + x1) // 2
    left_edge = [out.getpixel((x, y_mid)) for x in range(x0 - 6, x0 + 10)]
    bottom_edge = [out.getpixel((x_mid, y)) for y in range(y1 - 10, y1 + 6)]
    for edge in (left_edge, bottom_edge):
        best = max(_contrast(pixel, colour) for pixel in edge if isinstance(pixel, tuple))
        assert best >= 3.0, (kind, colour, edge)


# --- encoding -------------------------------------------------------------------------------


def _jpeg_markers(data: bytes) -> list[int]:
    """The marker bytes of every segment before the image data (SOS)."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [], 2
    while pos < len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return markers


def _photo_with_metadata() -> Image.Image:
    """A JPEG as a camera would send it: EXIF with GPS, an ICC profile, XMP and a comment."""
    image = Image.new("RGB", (320, 240), (200, 100, 50))
    exif = image.getexif()
    exif[0x010F] = "Camera Maker"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, icc_profile=icc, comment=b"secret comment", xmp=b"<x:xmpmeta/>")
    reopened = Image.open(io.BytesIO(buffer.getvalue()))
    reopened.load()
    assert reopened.getexif()
    assert reopened.info.get("icc_profile")
    assert reopened.info.get("comment")
    return reopened


def test_encoded_image_carries_no_exif_icc_xmp_or_comment() -> None:
    source = _photo_with_metadata()
    dog = DetectedObject("Dog", 0.97, Box(0.2, 0.2, 0.5, 0.5))

    data = encode_annotated(annotate(source, _analysis(objects=(dog,))))

    markers = _jpeg_markers(data)
    assert 0xE1 not in markers  # APP1: EXIF and XMP
    assert 0xE2 not in markers  # APP2: ICC profile
    assert 0xFE not in markers  # COM: comment
    for secret in (b"Exif", b"Camera Maker", b"secret", b"xmpmeta"):
        assert secret not in data
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.format == "JPEG"
        assert dict(reopened.getexif()) == {}
        assert "icc_profile" not in reopened.info
        assert "comment" not in reopened.info


def test_encoding_strips_metadata_even_from_an_unannotated_image() -> None:
    data = encode_annotated(_photo_with_metadata(), quality=70)
    assert not {0xE1, 0xE2, 0xFE} & set(_jpeg_markers(data))
