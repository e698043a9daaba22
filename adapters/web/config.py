"""The `PHOTODETECTIVE_WEB_*` variables: the web page's own settings, owned by the web adapter.

Registered under the `photodetective.settings` entry-point group, so `load_settings` validates
them at start with the application's settings and the README's table lists them.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from bot.settings import ENV_PREFIX, SettingsSection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebSettings(SettingsSection):
    """The upload page and results pages served on the shared HTTP port; off unless enabled."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}WEB_")

    enabled: bool = Field(False, description="Serve the web page (upload, results) on the HTTP port.")
    public_url: str | None = Field(
        None,
        description="The page's address as browsers see it (https://photos.example.org); POSTs must "
        "come from this origin and cookies are Secure when it is https. Default: the request's own host.",
    )
    retention_days: float = Field(7.0, gt=0, description="Days a result (photo, images, analysis) is kept.")
    access: Literal["accounts", "proxy", "open"] = Field(
        "accounts",
        description="Who may use the page: accounts (sign-in links from `photodetective web user add`), "
        "proxy (a trusted reverse proxy's user header) or open (anyone who reaches it: private networks).",
    )
    proxy_user_header: str = Field(
        "X-Forwarded-User", description="The authenticated-user header a trusted proxy sets (access=proxy)."
    )
    trusted_proxies: Annotated[
        tuple[Network, ...],
        NoDecode,
        Field(
            description="Proxies (CIDRs, comma separated) whose X-Forwarded-For and user header are believed."
        ),
    ] = ()
    session_secret: SecretStr | None = Field(
        None, description="Key signing session cookies; default: generated once and kept in data_dir."
    )
    session_days: float = Field(30.0, gt=0, description="Days a sign-in lasts.")
    signin_link_hours: float = Field(72.0, gt=0, description="Hours a one-time sign-in link stays valid.")
    ip_daily_limit: int = Field(100, ge=0, description="Photos uploaded per client IP address per day.")
    ip_concurrent_uploads: int = Field(
        3, ge=1, description="Uploads one IP address may send at the same time."
    )
    account_concurrent_uploads: int = Field(
        2, ge=1, description="Uploads one account may send at the same time."
    )
    max_files: int = Field(10, ge=1, le=100, description="Photos in one upload.")
    upload_stall_s: float = Field(
        30.0,
        gt=0,
        description="Seconds an upload may send no bytes before it is dropped (408) and its slot freed.",
    )
    upload_timeout_s: float = Field(
        600.0,
        gt=0,
        description="Seconds one upload (all its photos) may take in all before it is dropped (408).",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        """Accept "10.0.0.0/8, 127.0.0.1" from the environment as well as a list."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple | set | frozenset):
            try:
                return tuple(ipaddress.ip_network(str(item), strict=False) for item in value)
            except ValueError as exc:
                raise ValueError(f"not an address or CIDR: {exc}") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _origin_like(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.startswith("https://"))
