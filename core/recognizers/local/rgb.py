"""The photo as RGB without a copy when it already is (every model here reads RGB).

`Image.convert("RGB")` copies even an RGB image: on a 1920 px photo that is 8 MB and a few
milliseconds, and the pipeline asked for it once per model input and once per face.
"""

from __future__ import annotations

from PIL import Image

__all__ = ["as_rgb"]


def as_rgb(image: Image.Image) -> Image.Image:
    """The image itself when it is RGB, else its RGB conversion (callers never modify it)."""
    return image if image.mode == "RGB" else image.convert("RGB")
