"""EXIF reading (placeholder: replaced by the full reader)."""

from __future__ import annotations

from PIL import Image

from core.models import ExifData


def read_exif(image: Image.Image) -> ExifData:
    """Read camera metadata from a freshly opened (not yet decoded) image; never raises."""
    try:
        orientation = image.getexif().get(0x0112)
    except Exception:
        return ExifData()
    return ExifData(orientation=orientation if orientation in range(1, 9) else None)
