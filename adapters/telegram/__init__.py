"""Telegram: send the bot a photo, get back the annotated photo and a summary.

`create` is the factory registered under the `photodetective.adapters` entry point (see
`bot.platforms`): it returns None, after one log line, when no bot token is configured, and
raises `bot.settings.SettingsError` when the Telegram settings do not fit together.
"""

from __future__ import annotations

import logging

from adapters.telegram.app import TelegramAdapter
from adapters.telegram.config import TelegramConfig, TelegramSettings
from bot.service import PhotoService
from bot.settings import ENV_PREFIX, Settings

log = logging.getLogger(__name__)

__all__ = ["TelegramAdapter", "TelegramConfig", "create"]


def create(settings: Settings, service: PhotoService) -> TelegramAdapter | None:
    """The Telegram adapter for these settings, or None when Telegram is not configured."""
    if settings.section(TelegramSettings).token is None:
        log.info("Telegram is off: set %sTELEGRAM_TOKEN (from @BotFather) to enable it", ENV_PREFIX)
        return None
    return TelegramAdapter(
        TelegramConfig.from_settings(settings, service.capabilities, service.backend), service
    )
