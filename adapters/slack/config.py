"""The `PHOTODETECTIVE_SLACK_*` variables: Slack's own settings, owned by the Slack adapter.

Registered under the `photodetective.settings` entry-point group, so `load_settings` validates
them at start with the application's settings and the README's table lists them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from bot.settings import ENV_PREFIX, SettingsSection, comma_separated


class SlackSettings(SettingsSection):
    """How the bot reaches Slack; a bot token turns the platform on."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}SLACK_")

    bot_token: SecretStr | None = Field(None, description="Slack bot token (xoxb-...); enables Slack.")
    signing_secret: SecretStr | None = Field(None, description="Slack signing secret (HTTP mode).")
    app_token: SecretStr | None = Field(None, description="Slack app-level token (xapp-..., Socket Mode).")
    mode: Literal["http", "socket"] = Field("http", description="Events over HTTP or Socket Mode.")
    api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (tests use a fake).")
    file_hosts: Annotated[
        frozenset[str], NoDecode, Field(description="Hosts the bot token may be sent to for file downloads.")
    ] = frozenset({"files.slack.com"})

    @field_validator("file_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        """Accept "files.slack.com, files-edu.slack.com" from the environment as well as a list."""
        return comma_separated(value)
