"""The README's settings table, generated from the settings model so the two cannot drift apart.

`python -m bot.settings_doc` prints it; a test checks the README holds exactly this table.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    print(settings_block())
