"""The docs' pictures stay small: what scripts/docs_images.py keeps of a photo and of a page screenshot.

The script itself needs Chromium and a running bot (`make docs-images`); these check only the two
steps that decide what lands in the repository, on generated images.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "docs_images.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_images", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_photo_is_shrunk_to_the_docs_size_without_metadata(tmp_path: Path) -> None:
    docs_images = _script()
    source = tmp_path / "big.jpg"
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    Image.new("RGB", (3000, 2000), (200, 120, 40)).save(source, exif=exif)
    target = tmp_path / "small.jpg"
    docs_images.save_photo(source, target)
    with Image.open(target) as saved:
        assert max(saved.size) == docs_images.PHOTO_SIDE
        assert saved.size[0] / saved.size[1] == 1.5
        assert not saved.getexif()


def test_a_page_screenshot_keeps_its_top_at_the_given_width_in_256_colours(tmp_path: Path) -> None:
    docs_images = _script()
    source = tmp_path / "page.png"
    page = Image.new("RGB", (1280, 4000), "white")
    page.paste((20, 90, 200), (0, 0, 1280, 60))  # a header bar: the top must survive the crop
    page.save(source)
    target = tmp_path / "kept.png"
    docs_images.save_page(source, target, width=640)
    with Image.open(target) as saved:
        assert saved.mode == "P"
        assert saved.size == (640, docs_images.PAGE_MAX_HEIGHT // 2)
        red, _, blue = saved.convert("RGB").getpixel((10, 10))  # type: ignore[misc]
        assert blue > 150 > red
