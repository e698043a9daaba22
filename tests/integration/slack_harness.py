"""Running the Slack adapter for real in tests: service, SQLite stores, worker, and Bolt over HTTP.

`running_slack` builds what `photodetective run` builds (stores and service from settings, the
adapter through its `create` factory, a worker, an aiohttp server with the adapter's routes) but
against a `FakeSlack` on 127.0.0.1, and gives a `SlackHarness` that sends *signed* Slack requests
(events, slash commands, shortcuts) the way Slack does.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import urlencode

import aiohttp
import piexif
from aiohttp import web
from PIL import Image
from slack_sdk.signature import SignatureVerifier

from adapters.slack import SlackAdapter, create
from bot.quota.models import Usage
from bot.service import PhotoService
from bot.settings import Settings
from bot.wiring import Stores, build_service, build_stores
from bot.worker import WorkerConfig
from core.recognizers.base import NullRecognizer, Recognizer
from tests.fakes.slack_api import FakeSlack
from tests.integration.worker_helpers import adapter_worker
from tests.settings_helpers import settings_from

SIGNING_SECRET = "fake-signing-secret-0123456789"
ALICE = "U0ALICE"
BOB = "U0BOB"
ADMIN = "U0ADMIN"
CHANNEL = "C0GENERAL"
DM = "D0ALICE"

T = TypeVar("T")


def jpeg(
    width: int = 320,
    height: int = 240,
    *,
    color: tuple[int, int, int] = (40, 120, 200),
    zeroth: dict[int, Any] | None = None,
    gps: dict[int, Any] | None = None,
) -> bytes:
    """A JPEG made here (no shared data needed), with EXIF fields when given."""
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), color)
    if zeroth or gps:
        exif = piexif.dump({"0th": zeroth or {}, "Exif": {}, "GPS": gps or {}, "1st": {}, "thumbnail": None})
        image.save(buffer, "JPEG", quality=85, exif=exif)
    else:
        image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


EIFFEL_GPS = {
    piexif.GPSIFD.GPSLatitudeRef: b"N",
    piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (3013, 100)),
    piexif.GPSIFD.GPSLongitudeRef: b"E",
    piexif.GPSIFD.GPSLongitude: ((2, 1), (17, 1), (4013, 100)),
}


@overload
async def eventually(check: Callable[[], Awaitable[T]], what: str = ..., within_s: float = ...) -> T: ...
@overload
async def eventually(check: Callable[[], T], what: str = ..., within_s: float = ...) -> T: ...
async def eventually(check: Callable[[], Any], what: str = "condition", within_s: float = 15.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy.

    The outcome is what the test asserts; `within_s` is only a generous bound against hanging.
    """
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.02)


def make_settings(**values: Any) -> Settings:
    """Settings from explicit values only (no .env file), as pydantic validates them."""
    return settings_from(**values)


@dataclass(frozen=True)
class Answer:
    """What our HTTP endpoint answered Slack: the status, and the body (an ack's text, if any)."""

    status: int
    body: str

    @property
    def text(self) -> str:
        """The ack's message text ("" for an empty ack)."""
        if not self.body.startswith("{"):
            return self.body
        return str(json.loads(self.body).get("text", ""))

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body)) if self.body.startswith("{") else {}


@dataclass
class SlackHarness:
    fake: FakeSlack
    settings: Settings
    service: PhotoService
    stores: Stores
    adapter: SlackAdapter
    base_url: str
    http: aiohttp.ClientSession
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- signed requests -------------------------------------------------------------------

    def signed_headers(self, body: str, content_type: str, *, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body) or ""
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }

    async def post(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> Answer:
        all_headers = {**self.signed_headers(body, content_type), **(headers or {})}
        async with self.http.post(
            f"{self.base_url}/slack/events", data=body, headers=all_headers
        ) as response:
            return Answer(response.status, await response.text())

    def event_body(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        return {
            "token": "legacy-verification-token",
            "team_id": self.fake.team_id,
            "api_app_id": "A0FAKE",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": self.fake.team_id, "user_id": self.fake.bot_user_id, "is_bot": True}
            ],
        }

    async def send_event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None
    ) -> Answer:
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return await self.post(json.dumps(self.event_body(event, event_id)), "application/json", headers)

    async def command(
        self, text: str, *, user: str = ALICE, channel: str = CHANNEL, response: str = "cmd"
    ) -> Answer:
        form = {
            "token": "legacy-verification-token",
            "team_id": self.fake.team_id,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/photodetective",
            "text": text,
            "api_app_id": "A0FAKE",
            "response_url": self.fake.response_url(response),
            "trigger_id": "1.2.3",
        }
        return await self.post(urlencode(form), "application/x-www-form-urlencoded")

    async def shortcut(
        self, message: dict[str, Any], *, user: str = BOB, channel: str = CHANNEL, response: str = "shortcut"
    ) -> Answer:
        payload = {
            "type": "message_action",
            "callback_id": "analyze_photo",
            "trigger_id": "1.2.3",
            "response_url": self.fake.response_url(response),
            "team": {"id": self.fake.team_id, "domain": "fake"},
            "channel": {"id": channel, "name": "general"},
            "user": {"id": user, "name": user.lower()},
            "message_ts": message["ts"],
            "message": message,
            "token": "legacy-verification-token",
            "action_ts": str(time.time()),
        }
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )

    # -- state -----------------------------------------------------------------------------

    async def jobs(self) -> int:
        """Every job ever stored (waiting, running, done or dead)."""
        stats = await self.stores.queue.stats(time.time())
        return stats.queued + stats.in_flight + stats.done + stats.dead

    async def settled_usage(self, user: str) -> Usage | None:
        """The user's quota once no job of theirs holds a slot (charge kept or refunded), else None."""
        usage = await self.service.usage(f"slack:{self.fake.team_id}:{user}")
        return usage if usage.active_jobs == 0 else None

    def responses(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.fake.responses if r["name"] == name]


def file_message(
    file: dict[str, Any], *, user: str = ALICE, channel: str = CHANNEL, text: str = "", **extra: Any
) -> dict[str, Any]:
    """A `message` event with a file share, as Slack sends it."""
    return {
        "type": "message",
        "subtype": "file_share",
        "user": user,
        "text": text,
        "files": [file],
        "channel": channel,
        "channel_type": "im" if channel.startswith("D") else "channel",
        "event_ts": extra.get("ts", ""),
        **extra,
    }


@asynccontextmanager
async def running_slack(
    fake: FakeSlack,
    data_dir: Path,
    *,
    recognizer: Recognizer | None = None,
    start: bool = True,
    ack_budget_s: float | None = None,
    worker: WorkerConfig | None = None,
    **overrides: Any,
) -> AsyncIterator[SlackHarness]:
    """The whole application with the Slack adapter, against `fake`; stopped cleanly on exit."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "slack_bot_token": fake.bot_token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_app_token": fake.app_token,
        "slack_api_url": fake.api_url,
        "slack_file_hosts": frozenset({fake.file_host}),
        "job_max_attempts": 1,
        "admins": frozenset({f"slack:{fake.team_id}:{ADMIN}"}),
        **overrides,
    }
    settings = make_settings(**values)
    recognizer = recognizer or NullRecognizer()
    stores = build_stores(settings)
    service = build_service(settings, stores, recognizer.capabilities, backend=recognizer.name)
    adapter = (
        create(settings, service)
        if ack_budget_s is None
        else SlackAdapter(settings, service, ack_budget_s=ack_budget_s)
    )
    assert isinstance(adapter, SlackAdapter)
    app = web.Application()
    app.add_routes(list(adapter.routes()))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    config = worker or WorkerConfig(worker_id="slack-test", poll_interval_s=0.02, visibility_timeout_s=30.0)
    the_worker = adapter_worker(settings, stores, adapter, recognizer, config)
    stop = asyncio.Event()
    working = asyncio.create_task(the_worker.run(stop))
    http = aiohttp.ClientSession()
    harness = SlackHarness(fake, settings, service, stores, adapter, f"http://127.0.0.1:{port}", http)
    try:
        if start:
            await adapter.start()
        yield harness
    finally:
        await adapter.stop()
        stop.set()
        await working
        await adapter.close()
        await http.close()
        await runner.cleanup()
        await stores.close()
