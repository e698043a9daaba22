"""One version everywhere a user or operator reads it: the CLI, the package, the image labels, the changelog.

The number lives in pyproject.toml; the others are checked against it so a release cannot bump one
and forget the rest.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def test_cli_prints_the_project_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"photodetective {_project_version()}"


def test_container_labels_carry_the_project_version() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z]+)="([^"]*)"', dockerfile))
    assert labels.get("org.opencontainers.image.version") == _project_version()
    assert labels.get("org.opencontainers.image.licenses") == "MIT"


def test_changelog_has_a_section_for_the_project_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(_project_version())}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)
