"""Write a small sample photo with camera EXIF, so `make run` works on a fresh machine without any photo."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageDraw

SAMPLE_EXIF = {
    0x010F: "PhotoDetective",  # Make
    0x0110: "Sample Camera",  # Model
    0x0131: "scripts/sample_photo.py",  # Software
}


def make_sample(path: Path) -> None:
    """Draw a simple scene (sky, sun, ground, a sign with text) and save it as a JPEG with EXIF."""
    image = Image.new("RGB", (1280, 960), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 620, 1280, 960), fill=(70, 140, 60))
    draw.ellipse((980, 80, 1160, 260), fill=(250, 220, 90))
    draw.rectangle((360, 380, 920, 560), fill=(250, 250, 245), outline=(40, 40, 40), width=6)
    draw.text((390, 438), "PHOTODETECTIVE", fill=(20, 20, 20), font_size=52)
    exif = Image.Exif()
    exif.update(SAMPLE_EXIF)
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x9003] = datetime.now().strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90, exif=exif)


if __name__ == "__main__":
    make_sample(Path(sys.argv[1] if len(sys.argv) > 1 else "sample.jpg"))
    print(f"wrote {sys.argv[1] if len(sys.argv) > 1 else 'sample.jpg'}")
