"""The README's settings table, generated from the settings model so the two cannot drift apart.

`python -m bot.settings_doc` prints it, `python -m bot.settings_doc --write README.md` replaces
the table in place; a test checks the README holds exactly this table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import SecretStr

from bot.settings import ENV_PREFIX, Settings

BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"


def _default(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, frozenset):
        return ",".join(sorted(str(v) for v in value)) or "(empty)"
    return str(value)


def settings_table() -> str:
    """A Markdown table: variable, default, meaning; one row per settings field, in model order."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        default = _default(field.default).replace("|", "\\|")
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | `{default}` | {description} |")
    return "\n".join(rows)


def settings_block() -> str:
    """The table between the markers the README uses, ready to paste."""
    return f"{BEGIN}\n{settings_table()}\n{END}"


def write_into(path: Path) -> None:
    """Replace the block between the markers in a Markdown file with the current table."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + settings_block() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write_into(Path(sys.argv[2]))
    else:
        print(settings_block())
