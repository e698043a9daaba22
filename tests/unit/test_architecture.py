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


def imported_module_paths(path: Path) -> set[str]:
    """Full dotted names of every module a file imports from ("bot.cli", "bot.notices")."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


#: Entry points for people (the `photodetective` command); adapters take texts from bot.notices.
ENTRY_POINT_MODULES = ("bot.cli", "bot.operator_cli")


def test_adapters_import_nothing_from_the_command_line() -> None:
    files = sorted((ROOT / "adapters").rglob("*.py"))
    assert files
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_module_paths(path)
            if any(name == m or name.startswith(m + ".") for m in ENTRY_POINT_MODULES)
        )
        for path in files
    }
    assert {path: bad for path, bad in offenders.items() if bad} == {}


def test_entry_point_checker_sees_every_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from bot import cli\nimport bot.operator_cli\ndef f():\n    from bot.cli import main\n"
    )
    assert {"bot.cli", "bot.operator_cli", "bot.cli.main"} <= imported_module_paths(sample)


def test_checker_sees_nested_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import redis.asyncio\n    from bot.cli import main\n")
    assert imported_modules(sample) == {"redis", "bot"}
