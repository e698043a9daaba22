"""Settings for tests from keyword values, the way the old flat names read.

`telegram_token=...`, `slack_mode=...` or `web_enabled=...` go to that adapter's own settings section
(`TelegramSettings.token`, `SlackSettings.mode`); everything else to the application's settings.
No .env file is read, so a developer's own .env never leaks into a test.
"""

from __future__ import annotations

from typing import Any

from adapters.slack.config import SlackSettings
from adapters.telegram.config import TelegramSettings
from adapters.web.config import WebSettings
from bot.settings import Settings, SettingsSection

SECTIONS: dict[str, type[SettingsSection]] = {
    "telegram_": TelegramSettings,
    "slack_": SlackSettings,
    "web_": WebSettings,
}


def settings_from(**values: Any) -> Settings:
    """Settings plus every adapter section, validated as pydantic would at start."""
    own: dict[str, Any] = {}
    per_section: dict[type[SettingsSection], dict[str, Any]] = {kind: {} for kind in SECTIONS.values()}
    for name, value in values.items():
        prefix = next((p for p in SECTIONS if name.startswith(p)), None)
        if prefix is None:
            own[name] = value
        else:
            per_section[SECTIONS[prefix]][name.removeprefix(prefix)] = value
    settings = Settings(_env_file=None, **own)  # type: ignore[call-arg]
    return settings.with_sections(*(kind(_env_file=None, **kw) for kind, kw in per_section.items()))  # type: ignore[call-arg]
