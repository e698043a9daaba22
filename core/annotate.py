"""Draw what the recognizer found on the photo, and encode it without any metadata.

`annotate` draws on a copy of the prepared image: thin boxes around text lines, coloured boxes
for objects (one stable colour per label name), numbered boxes for faces and boxes for recognised
celebrities, each with a label on a solid background. Every box line has a thin black or white
edge on both sides, so it shows on any photo, even one of its own colour. Sizes follow the image
so labels read the same on a 400 px thumbnail and on a 1920 px photo. Labels are laid out so they
stay inside the image and never cover each other: each tries above its box, then inside, then
below; if all those spots are taken it slides to the nearest free spot beside the other labels,
and is left out (box still drawn) only when no spot is free. Faces are placed first, then celebrities, then
objects by confidence, so the important labels get the best spots.

`plan_annotations` does all the geometry without touching pixels, so the layout can be tested
(and reused) on its own; `annotate` only paints the plan. `encode_annotated` writes a JPEG with
no EXIF, ICC profile, XMP or comment: the annotated image goes back to chats and must not leak
the GPS position or camera details of the original.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from core.analysis_types import Analysis, Box
from core.colors import CELEBRITY_COLOR, TEXT_COLOR, Rgb, color_for_label, face_color, text_color_on
from core.summary import face_items, format_percent

ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Style:
    """Sizes in pixels for one image: all grow with the image's long side."""

    font_size: int
    line_width: int
    text_line_width: int
    padding: int


def style_for(width: int, height: int) -> Style:
    """Sizes that keep labels readable whatever the image size (22 px text on a 1920 px photo)."""
    long_side = max(width, height)
    font_size = min(max(round(8 + long_side * 0.0075), 11), 72)
    line_width = max(1, round(font_size / 7))
    return Style(
        font_size=font_size,
        line_width=line_width,
        text_line_width=max(1, line_width // 2),
        padding=max(2, round(font_size * 0.2)),
    )


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font: no system fonts needed, the same look everywhere."""
    font = ImageFont.load_default(size=size)
    assert isinstance(font, ImageFont.FreeTypeFont), "Pillow was built without FreeType"
    return font


@dataclass(frozen=True, slots=True)
class Rect:
    """A pixel rectangle, half-open: it covers x..x+w-1 and y..y+h-1."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def overlaps(self, other: Rect) -> bool:
        """True when the two share at least one pixel (touching edges do not count)."""
        return (
            self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom
        )

    def within(self, width: int, height: int) -> bool:
        return self.x >= 0 and self.y >= 0 and self.right <= width and self.bottom <= height


@dataclass(frozen=True, slots=True)
class Mark:
    """A box outline to draw: pixel corners (inclusive) on the image, colour and line width.

    `halo` is black or white, whichever contrasts more with `color`: a thin line of it runs along
    both sides of the coloured line, so a box stays visible where the photo has its very colour (a
    red box on a red car, a yellow face box on a yellow wall).
    """

    corners: tuple[int, int, int, int]
    color: Rgb
    width: int

    @property
    def halo(self) -> Rgb:
        return text_color_on(self.color)

    @property
    def halo_width(self) -> int:
        """One pixel on thin lines, a third of the line on thick ones."""
        return max(1, round(self.width / 3))


@dataclass(frozen=True, slots=True)
class PlacedLabel:
    """A label's text and where it goes; `rect` is its solid background."""

    text: str
    rect: Rect
    background: Rgb
    foreground: Rgb


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything `annotate` paints: box outlines in drawing order, then labels on top."""

    style: Style
    marks: tuple[Mark, ...]
    labels: tuple[PlacedLabel, ...]
    dropped_labels: int  # labels left out because no free spot was left
    baseline: int  # text baseline below a label rectangle's top edge


@dataclass(frozen=True, slots=True)
class _LabelRequest:
    text: str
    corners: tuple[int, int, int, int]
    color: Rgb


def _corners(box: Box, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Inclusive pixel corners of a box, clipped to the image; None for empty or corrupt boxes."""
    if not all(math.isfinite(v) for v in (box.left, box.top, box.width, box.height)):
        return None
    x0, y0, x1, y1 = Box.clamped(box.left, box.top, box.width, box.height).to_pixels(width, height)
    x1, y1 = min(x1, width) - 1, min(y1, height) - 1
    if x1 < x0 or y1 < y0:
        return None
    return x0, y0, x1, y1


def _one_line(text: str) -> str:
    """Drawn labels must be a single line: ImageDraw would start a new line at "\\n"."""
    return "".join(" " if ord(c) < 32 or 0x7F <= ord(c) < 0xA0 else c for c in text).strip()


class _Layout:
    """Places label rectangles so none overlaps another and all stay inside the image."""

    def __init__(self, width: int, height: int, style: Style) -> None:
        self.width = width
        self.height = height
        self.style = style
        self.font = _font(style.font_size)
        # Ink extent of tall and deep glyphs relative to the baseline, so every label is the same height.
        _, top, _, bottom = self.font.getbbox("ÁÉgjy#%(", anchor="ls")
        self.baseline = style.padding - math.floor(top)
        self.label_height = math.ceil(bottom) - math.floor(top) + 2 * style.padding
        self.placed: list[PlacedLabel] = []

    def fit_text(self, text: str) -> tuple[str, int] | None:
        """The text (shortened with "…" if it is wider than the image) and its label width."""
        pad2 = 2 * self.style.padding
        width = math.ceil(self.font.getlength(text)) + pad2
        if width <= self.width:
            return text, width
        while text:
            text = text[:-1].rstrip()
            candidate = text + ELLIPSIS
            width = math.ceil(self.font.getlength(candidate)) + pad2
            if width <= self.width:
                return candidate, width
        return None

    def _clamp(self, x: int, y: int, w: int, h: int) -> Rect:
        return Rect(min(max(x, 0), self.width - w), min(max(y, 0), self.height - h), w, h)

    def _free(self, rect: Rect) -> bool:
        return rect.within(self.width, self.height) and not any(rect.overlaps(p.rect) for p in self.placed)

    def _slide(self, x: int, preferred_y: int, w: int, h: int) -> Rect | None:
        """The free spot in the column at `x` nearest to `preferred_y`.

        If the preferred spot is taken, the nearest free one touches the edge of another label
        or of the image, so only those positions need checking.
        """
        column = Rect(x, 0, w, self.height)
        ys = {0, self.height - h}
        for p in self.placed:
            if p.rect.overlaps(column):
                ys.update((p.rect.bottom, p.rect.y - h))
        for y in sorted((y for y in ys if 0 <= y <= self.height - h), key=lambda y: abs(y - preferred_y)):
            rect = Rect(x, y, w, h)
            if self._free(rect):
                return rect
        return None

    def place(self, request: _LabelRequest) -> PlacedLabel | None:
        h = self.label_height
        if h > self.height:
            return None
        fitted = self.fit_text(request.text)
        if fitted is None:
            return None
        text, w = fitted
        x0, y0, x1, y1 = request.corners
        candidates = (
            self._clamp(x0, y0 - h, w, h),  # above the box, on its top edge
            self._clamp(x0, y0, w, h),  # inside, top left
            self._clamp(x0, y1 + 1, w, h),  # below the box
            self._clamp(x0, y1 + 1 - h, w, h),  # inside, bottom left
        )
        rect = next((c for c in candidates if self._free(c)), None)
        if rect is None:
            first = candidates[0]
            right = self._clamp(x1 + 1 - w, first.y, w, h).x
            rect = self._slide(first.x, first.y, w, h) or self._slide(right, first.y, w, h)
        if rect is None:
            return None
        label = PlacedLabel(text, rect, request.color, text_color_on(request.color))
        self.placed.append(label)
        return label


def _requests(
    analysis: Analysis, width: int, height: int, style: Style
) -> tuple[list[Mark], list[_LabelRequest]]:
    """Box outlines in drawing order (text lightest and first, faces last) and labels by priority."""
    text_marks: list[Mark] = []
    for line in analysis.text:
        corners = _corners(line.box, width, height)
        if corners is not None:
            text_marks.append(Mark(corners, TEXT_COLOR, style.text_line_width))

    object_marks: list[Mark] = []
    object_labels: list[_LabelRequest] = []
    for obj in sorted(analysis.objects, key=lambda o: -o.confidence):
        corners = _corners(obj.box, width, height)
        if corners is None:
            continue
        color = color_for_label(obj.name)
        object_marks.append(Mark(corners, color, style.line_width))
        object_labels.append(
            _LabelRequest(f"{_one_line(obj.name)} {format_percent(obj.confidence)}", corners, color)
        )

    celebrity_marks: list[Mark] = []
    celebrity_labels: list[_LabelRequest] = []
    for celeb in sorted(analysis.celebrities, key=lambda c: -c.confidence):
        corners = _corners(celeb.box, width, height)
        if corners is None:
            continue
        celebrity_marks.append(Mark(corners, CELEBRITY_COLOR, style.line_width))
        celebrity_labels.append(_LabelRequest(_one_line(celeb.name), corners, CELEBRITY_COLOR))

    face_marks: list[Mark] = []
    face_labels: list[_LabelRequest] = []
    for face, item in zip(analysis.faces, face_items(analysis), strict=True):
        corners = _corners(face.box, width, height)
        if corners is None:
            continue
        color = face_color(item.number)
        face_marks.append(Mark(corners, color, style.line_width))
        text = _one_line(f"{item.tag} {item.description}")
        face_labels.append(_LabelRequest(text, corners, color))

    marks = [*text_marks, *object_marks, *celebrity_marks, *face_marks]
    return marks, [*face_labels, *celebrity_labels, *object_labels]


def plan_annotations(analysis: Analysis, width: int, height: int) -> Plan:
    """Work out every outline and label position for an image of this size, without drawing.

    Guarantees: every label rectangle lies inside the image and no two overlap; a label that
    cannot be placed is dropped (its box is still drawn) and counted in `dropped_labels`.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    style = style_for(width, height)
    marks, requests = _requests(analysis, width, height, style)
    layout = _Layout(width, height, style)
    placed = [label for label in (layout.place(r) for r in requests) if label is not None]
    return Plan(
        style,
        tuple(marks),
        tuple(placed),
        dropped_labels=len(requests) - len(placed),
        baseline=layout.baseline,
    )


def _rgb_copy(image: Image.Image) -> Image.Image:
    """A new RGB image with the same pixels (transparency flattened onto white), without metadata."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        copy = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    else:
        copy = image.convert("RGB")  # always a new image, even when already RGB
    copy.info = {}
    return copy


def _paint(image: Image.Image, plan: Plan) -> None:
    draw = ImageDraw.Draw(image)
    for mark in plan.marks:
        # Halo first, `halo_width` wider on each side of the line, then the line over its middle.
        x0, y0, x1, y1 = mark.corners
        h = mark.halo_width
        draw.rectangle((x0 - h, y0 - h, x1 + h, y1 + h), outline=mark.halo, width=mark.width + 2 * h)
        draw.rectangle(mark.corners, outline=mark.color, width=mark.width)
    font = _font(plan.style.font_size)
    for label in plan.labels:
        r = label.rect
        draw.rectangle((r.x, r.y, r.right - 1, r.bottom - 1), fill=label.background)
        position = (r.x + plan.style.padding, r.y + plan.baseline)
        draw.text(position, label.text, font=font, fill=label.foreground, anchor="ls")


def annotate(image: Image.Image, analysis: Analysis) -> Image.Image:
    """Return a new RGB image with the analysis drawn on it; `image` is left untouched.

    `image` must be the prepared (oriented, downsized) image the recognizer saw, since boxes are
    ratios of exactly that image.
    """
    out = _rgb_copy(image)
    plan = plan_annotations(analysis, out.width, out.height)
    _paint(out, plan)
    return out


def encode_annotated(image: Image.Image, quality: int = 85) -> bytes:
    """JPEG bytes with no EXIF, ICC profile, XMP or comment, whatever `image.info` carried.

    Pillow copies a comment from `image.info` into the file on its own, so the pixels are saved
    from a copy with empty metadata rather than trusting the caller's image.
    """
    clean = _rgb_copy(image)
    buffer = io.BytesIO()
    clean.save(buffer, format="JPEG", quality=quality, exif=b"", optimize=False)
    return buffer.getvalue()
