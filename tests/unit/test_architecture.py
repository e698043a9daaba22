"""Imports point one way: adapters -> bot -> core. These tests keep it so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What each layer may not import, by top-level module name.
FORBIDDEN = {
    "core": {
        "bot",
        "adapters",
        "telegram",
        "slack_bolt",
        "slack_sdk",
        "redis",
        "aiohttp",
        "pydantic_settings",
    },
    "bot": {"adapters", "telegram", "slack_bolt", "slack_sdk"},
}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module a file imports, including imports inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_inwards(layer: str) -> None:
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no Python files found in {layer}/"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN[layer]) for path in files
    }
    offenders = {path: bad for path, bad in offenders.items() if bad}
    assert offenders == {}, f"{layer}/ must not import these: {offenders}"


def test_checker_sees_nested_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import redis.asyncio\n    from bot.cli import main\n")
    assert imported_modules(sample) == {"redis", "bot"}
