"""Fetching a Slack file for the worker: files.info first, then `url_private` with the bot token.

Three rules keep this safe:

- The bot token is sent only to hosts listed in `PHOTODETECTIVE_SLACK_FILE_HOSTS` (default `files.slack.com`),
  over HTTPS (plain HTTP only to a loopback address, for local fakes). Redirects are followed by
  hand, under the same rule, so the token never travels to a host we did not choose.
- files.info tells the size before anything is downloaded; the download is cut off as soon as it
  passes the limit too, whatever Content-Length said.
- Slack answers a missing or wrong token (or a token without `files:read`) with HTTP 200 and its
  HTML sign-in page instead of the file. That page is recognised by its Content-Type and
  reported as our configuration problem (retried, refunded), not as "your file is not a photo".
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from urllib.parse import urljoin, urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.files import SlackFile, describe_type, is_available, is_image
from bot.notices import file_too_large
from bot.photo_requests import FileRef, PhotoRequest
from bot.ports import FetchFailed
from core.errors import PhotoRejected, UnsupportedFormat

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
DOWNLOAD_TIMEOUT_S = 60.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_GONE_ERRORS = frozenset({"file_not_found", "file_deleted"})
GONE = "That file was deleted, or I am not allowed to see it."
LOGIN_PAGE = (
    "Slack answered with its sign-in page instead of the file: the bot token is wrong or lacks the "
    "files:read scope (reinstall the app from adapters/slack/manifest.yml)"
)


class LoginPageError(FetchFailed):
    """Slack sent its HTML sign-in page: our token is not accepted for files (an operator's problem)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_may_go_to(url: str, hosts: frozenset[str]) -> bool:
    """Whether the bot token may be sent to `url`: a listed host (or host:port), over HTTPS.

    Plain HTTP is accepted only for loopback addresses, which is where test fakes live.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return False
    if not host:
        return False
    listed = host in hosts or (port is not None and f"{host}:{port}" in hosts)
    if not listed:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))


class SlackPhotoSource:
    """`bot.ports.PhotoSource` for Slack files; one aiohttp session per event loop, closed by `close`."""

    def __init__(self, client: AsyncWebClient, token: str, file_hosts: frozenset[str]) -> None:
        self.client = client
        self._token = token
        self.file_hosts = file_hosts
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    async def fetch(self, request: PhotoRequest, ref: FileRef, max_bytes: int) -> bytes:
        """files.info (size, type, URL), then the download; see the module docstring for the rules."""
        info = await self.file_info(ref.file_id)
        size = info.get("size")
        if isinstance(size, int) and size > max_bytes:
            raise file_too_large(size, max_bytes)
        if not is_available(info):
            raise PhotoRejected("not_available", GONE)
        if is_image(info) is False:
            raise UnsupportedFormat(describe_type(info))
        url = info.get("url_private_download") or info.get("url_private")
        if not isinstance(url, str) or not url:
            raise FetchFailed(f"files.info gave no url_private for {ref.file_id}")
        return await self.download(url, max_bytes)

    async def file_info(self, file_id: str) -> SlackFile:
        """The file object from files.info; a deleted or invisible file is the user's problem, not ours."""
        try:
            response = await self.client.files_info(file=file_id)
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error in _GONE_ERRORS:
                raise PhotoRejected("not_found", GONE) from exc
            raise FetchFailed(f"files.info failed: {error or exc.response.status_code}") from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise FetchFailed(f"files.info failed: {exc}") from exc
        file = response.get("file")
        if not isinstance(file, dict):
            raise FetchFailed("files.info answered without a file")
        return file

    async def download(self, url: str, max_bytes: int) -> bytes:
        """GET `url_private` with the bot token, following redirects only to allowed hosts."""
        session = self._session_for_loop()
        for _ in range(MAX_REDIRECTS + 1):
            if not token_may_go_to(url, self.file_hosts):
                host = urlsplit(url).netloc or url[:40]
                raise FetchFailed(
                    f"not sending the bot token to {host!r}: not in PHOTODETECTIVE_SLACK_FILE_HOSTS"
                )
            try:
                async with session.get(
                    url, headers={"Authorization": f"Bearer {self._token}"}, allow_redirects=False
                ) as response:
                    if response.status in _REDIRECTS and "Location" in response.headers:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    return await self._read(response, max_bytes)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise FetchFailed(f"download failed: {type(exc).__name__}: {exc}") from exc
        raise FetchFailed("too many redirects")

    async def _read(self, response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
        if response.status in (404, 410):
            raise PhotoRejected("not_found", GONE)
        if response.status != 200:
            raise FetchFailed(f"download answered HTTP {response.status}")
        if response.content_type == "text/html":
            log.error(LOGIN_PAGE)
            raise LoginPageError(LOGIN_PAGE)
        declared = response.content_length
        if declared is not None and declared > max_bytes:
            raise file_too_large(declared, max_bytes)
        chunks: list[bytes] = []
        total = 0
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            total += len(chunk)
            if total > max_bytes:
                raise file_too_large(total, max_bytes, at_least=True)
            chunks.append(chunk)
        return b"".join(chunks)

    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S))
            self._session, self._session_loop = session, loop
        return session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
