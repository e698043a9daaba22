"""What the Telegram adapter needs from the settings, validated once when the adapter is built.

The adapter never reads `Settings` after this: tests build a `TelegramConfig` directly with
short poll timeouts, and a bad combination (webhook mode without a secret) stops the process at
start with a message naming the environment variable to fix.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bot.settings import ENV_PREFIX, Settings, SettingsError, SettingsSection
from core.analysis_types import Feature

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name, not a secret)
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramSettings(SettingsSection):
    """The `PHOTODETECTIVE_TELEGRAM_*` variables, registered under `photodetective.settings`."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}TELEGRAM_")

    token: SecretStr | None = Field(None, description="Bot token from @BotFather; enables Telegram.")
    mode: Literal["polling", "webhook"] = Field("polling", description="How updates arrive.")
    webhook_url: str | None = Field(
        None,
        description="Public HTTPS URL Telegram posts updates to (webhook mode), ending in /telegram/webhook.",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token (webhook mode; required)."
    )
    api_url: str = Field(
        "https://api.telegram.org", description="Bot API server (a local Bot API server, or a test fake)."
    )


@dataclass(frozen=True)
class TelegramConfig:
    """The Telegram side of the settings.

    `backend` is the recognizer as users should read it in /help; `poll_timeout_s` is the long
    poll (Telegram holds getUpdates open this long when idle).
    """

    token: str
    api_url: str = "https://api.telegram.org"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    poll_timeout_s: int = 30
    backend: str = "Amazon Rekognition"
    backend_is_cloud: bool = True
    location_in_private: bool = True
    location_in_groups: bool = False

    def __post_init__(self) -> None:
        if self.mode != "webhook":
            return
        if not self.webhook_secret:
            raise SettingsError(
                f"{ENV_PREFIX}TELEGRAM_WEBHOOK_SECRET is required in webhook mode: Telegram sends it with "
                "every update so forged requests can be refused (1-256 characters: A-Z, a-z, 0-9, _ and -)."
            )
        if not _SECRET.fullmatch(self.webhook_secret):
            raise SettingsError(
                f"{ENV_PREFIX}TELEGRAM_WEBHOOK_SECRET may only use A-Z, a-z, 0-9, _ and - (1-256 characters)."
            )
        if not self.webhook_url or not self.webhook_url.startswith("https://"):
            raise SettingsError(
                f"{ENV_PREFIX}TELEGRAM_WEBHOOK_URL must be the public https:// URL of {WEBHOOK_PATH} "
                "in webhook mode."
            )
        if not self.webhook_url.rstrip("/").endswith(WEBHOOK_PATH):
            log.warning(
                "%sTELEGRAM_WEBHOOK_URL does not end in %s; make sure your proxy forwards it there",
                ENV_PREFIX,
                WEBHOOK_PATH,
            )

    @property
    def base_url(self) -> str:
        return f"{self.api_url.rstrip('/')}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.api_url.rstrip('/')}/file/bot"

    @classmethod
    def from_settings(
        cls, settings: Settings, capabilities: frozenset[Feature], backend: str = "none"
    ) -> TelegramConfig:
        """Read the Telegram settings; raises SettingsError naming the variable when they don't fit."""
        telegram = settings.section(TelegramSettings)
        if telegram.token is None:
            raise SettingsError(f"{ENV_PREFIX}TELEGRAM_TOKEN is not set")
        secret = telegram.webhook_secret
        return cls(
            token=telegram.token.get_secret_value(),
            api_url=telegram.api_url,
            mode=telegram.mode,
            webhook_url=telegram.webhook_url,
            webhook_secret=secret.get_secret_value() if secret is not None else None,
            backend=describe_backend(backend, capabilities),
            backend_is_cloud=bool(capabilities) and backend == "rekognition",
            location_in_private=settings.location_in_private,
            location_in_groups=settings.location_in_groups,
        )


_BACKEND_NAMES = {
    "rekognition": "Amazon Rekognition",
    "local": "built-in offline models (photos stay on this server)",
}


def describe_backend(backend: str, capabilities: frozenset[Feature]) -> str:
    """The recognizer in users' words, from the name of the one the service actually runs."""
    if not capabilities or backend == "none":
        return "none (only camera data is read)"
    return _BACKEND_NAMES.get(backend, backend)
