"""The README is the front page: short, with pictures that exist and links that lead somewhere.

`mkdocs build --strict` checks the links inside docs/, but not README.md, CONTRIBUTING.md or
CHANGELOG.md, which GitHub shows from the repository root; this checks theirs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP_PAGES = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")
MAX_README_LINES = 200


def local_targets(markdown: str) -> list[str]:
    """Relative link and image targets of a Markdown page (Markdown and HTML syntax), anchors dropped."""
    found = re.findall(r"\]\(([^)\s]+)\)", markdown) + re.findall(r'(?:src|href)="([^"]+)"', markdown)
    return [t.split("#")[0] for t in found if not re.match(r"[a-z]+:|#", t) and t.split("#")[0]]


def broken_links(page: Path) -> list[str]:
    """Targets of `page` that do not exist in the checkout."""
    return [t for t in local_targets(page.read_text(encoding="utf-8")) if not (page.parent / t).exists()]


def test_readme_is_short_and_shows_the_product() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES
    pictures = [t for t in local_targets(text) if t.startswith("docs/img/")]
    assert len(pictures) >= 2, "the README shows at least two generated pictures"


@pytest.mark.parametrize("name", TOP_PAGES)
def test_top_level_pages_link_to_files_that_exist(name: str) -> None:
    assert broken_links(ROOT / name) == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("# here\n", encoding="utf-8")
    page = tmp_path / "README.md"
    links = '[ok](docs/here.md#a) [gone](docs/gone.md) <img src="docs/img/none.png">'
    page.write_text(f"{links} [web](https://x.org/) [top](#top)\n", encoding="utf-8")
    assert broken_links(page) == ["docs/gone.md", "docs/img/none.png"]
