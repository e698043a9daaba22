"""Stable, readable colours for the annotated image.

A label keeps its colour from photo to photo (and across worker processes), so users learn that
"Person" is, say, blue. That rules out Python's `hash()`, which is salted per process; a short
BLAKE2 digest of the name picks from a fixed palette instead. Faces and text lines have their own
colour families, kept out of the object palette so a face box never looks like an object box.
"""

from __future__ import annotations

import hashlib

Rgb = tuple[int, int, int]


def hex_to_rgb(value: str) -> Rgb:
    """Parse "#RRGGBB" (the palette's notation) into a Pillow colour tuple."""
    digits = value.removeprefix("#")
    if len(digits) != 6:
        raise ValueError(f"not a #RRGGBB colour: {value!r}")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


# Distinct, saturated colours that stay visible on photos (after Sasha Trubetskoy's list), without
# the yellows/oranges kept for faces and the cyan kept for text.
OBJECT_PALETTE: tuple[Rgb, ...] = tuple(
    hex_to_rgb(c)
    for c in (
        "#E6194B",  # red
        "#3CB44B",  # green
        "#4363D8",  # blue
        "#911EB4",  # purple
        "#F032E6",  # magenta
        "#469990",  # teal
        "#9A6324",  # brown
        "#800000",  # maroon
        "#808000",  # olive
        "#000075",  # navy
        "#BFEF45",  # lime
        "#FABED4",  # pink
        "#DCBEFF",  # lavender
        "#AAFFC3",  # mint
    )
)

# Faces: one warm family; neighbouring face numbers get different shades.
FACE_PALETTE: tuple[Rgb, ...] = tuple(hex_to_rgb(c) for c in ("#FFE119", "#F58231", "#FFC870"))

# Recognised celebrities are faces too, so they stay in the warm family, in a shade of their own.
CELEBRITY_COLOR: Rgb = hex_to_rgb("#FF9F1C")

# Text lines are drawn lightly, in one cool colour.
TEXT_COLOR: Rgb = hex_to_rgb("#42D4F4")


def color_for_label(name: str) -> Rgb:
    """The palette colour of a label name, identical in every process and on every run.

    Case and surrounding spaces are ignored so "dog" and "Dog " share a colour.
    """
    digest = hashlib.blake2b(name.strip().casefold().encode("utf-8"), digest_size=4).digest()
    return OBJECT_PALETTE[int.from_bytes(digest, "big") % len(OBJECT_PALETTE)]


def face_color(number: int) -> Rgb:
    """The colour of face `number` (1-based), cycling through the face family."""
    return FACE_PALETTE[(number - 1) % len(FACE_PALETTE)]


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(color: Rgb) -> float:
    """WCAG relative luminance (0 black .. 1 white) of an sRGB colour."""
    r, g, b = (_linear(c) for c in color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


BLACK: Rgb = (0, 0, 0)
WHITE: Rgb = (255, 255, 255)


def text_color_on(background: Rgb) -> Rgb:
    """Black or white, whichever contrasts more with `background` (WCAG contrast ratio)."""
    lum = relative_luminance(background)
    contrast_black = (lum + 0.05) / 0.05
    contrast_white = 1.05 / (lum + 0.05)
    return BLACK if contrast_black >= contrast_white else WHITE
