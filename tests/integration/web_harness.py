"""Running the web adapter for real in tests: stores, service, the adapter, a worker, an HTTP client.

`running_web` builds what `photodetective run` builds with PHOTODETECTIVE_WEB_ENABLED=true (stores
and service from settings, the adapter through its `create` factory, a worker) and serves the
adapter's routes on 127.0.0.1 through aiohttp's test server; the `WebHarness` signs in with a
one-time link and sends forms the way a browser does (CSRF token, Origin header).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.web import WebAdapter, create
from adapters.web.commands import issue_link
from bot.health import HealthEndpoints
from bot.http_server import build_app
from bot.metrics import Metrics
from bot.service import PhotoService
from bot.settings import Settings
from bot.wiring import Stores, build_service, build_stores
from bot.worker import WorkerConfig
from core.recognizers.base import NullRecognizer, Recognizer
from tests.integration.slack_harness import eventually, jpeg
from tests.integration.worker_helpers import adapter_worker
from tests.settings_helpers import settings_from

__all__ = ["WebHarness", "eventually", "jpeg", "running_web"]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Answer:
    """A response read whole at once (aiohttp drops an unread body when the next request goes out)."""

    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebHarness:
    settings: Settings
    service: PhotoService
    stores: Stores
    adapter: WebAdapter
    client: TestClient[web.Request, web.Application]

    @property
    def origin(self) -> str:
        return str(self.client.make_url("/")).rstrip("/")

    async def get(self, path: str, **options: Any) -> Answer:
        return await self.fetch("GET", path, **options)

    async def post(self, path: str, **options: Any) -> Answer:
        return await self.fetch("POST", path, **options)

    async def fetch(self, method: str, path: str, **options: Any) -> Answer:
        options.setdefault("allow_redirects", False)
        async with self.client.request(method, path, **options) as response:
            return Answer(response.status, await response.read(), dict(response.headers))

    async def sign_in(self, name: str = "alice") -> str:
        """Create the account and follow its one-time link, as the browser would; returns the link."""
        url = (await issue_link(self.adapter.store, self.settings, name, time.time())).url
        path = url[url.index("/signin/") :]
        response = await self.get(path)
        assert response.status == 303, response.text
        return path

    async def csrf(self, path: str = "/") -> str:
        page = await self.get(path)
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def form(self, *photos: tuple[str, bytes], token: str | None = None) -> aiohttp.FormData:
        data = aiohttp.FormData()
        if token is not None:
            data.add_field("csrf_token", token)
        for name, content in photos:
            data.add_field("photo", content, filename=name, content_type="image/jpeg")
        return data

    async def upload_raw(self, filename: str, photo: bytes) -> Answer:
        """POST /upload with the multipart body written by hand, the file name as a browser sends it.

        (aiohttp's client percent-encodes file names; browsers send `<` and `>` as they are.)
        """
        boundary = "----photodetective-test"
        token = await self.csrf()
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="{filename}"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + photo
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {
            "Origin": self.origin,
            "Accept": "application/json",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        return await self.post("/upload", data=body, headers=headers)

    async def upload(
        self,
        *photos: tuple[str, bytes],
        json: bool = True,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """POST /upload as the page's form does (token from the page unless given)."""
        token = token if token is not None else await self.csrf()
        all_headers = {"Origin": self.origin, **({"Accept": "application/json"} if json else {})}
        all_headers.update(headers or {})
        return await self.post("/upload", data=self.form(*photos, token=token), headers=all_headers)

    async def uploaded_id(self, photo: bytes | None = None, name: str = "photo.jpg") -> str:
        response = await self.upload((name, jpeg() if photo is None else photo))
        assert response.status == 202, response.text
        return str(response.json()["results"][0]["id"])

    async def status(self, result_id: str) -> dict[str, Any]:
        response = await self.get(f"/results/{result_id}.json")
        assert response.status == 200, response.text
        return dict(response.json())

    async def finished(self, result_id: str) -> dict[str, Any]:
        """The status document once the result is done or failed."""

        async def check() -> dict[str, Any] | None:
            status = await self.status(result_id)
            return status if status["status"] in ("done", "failed") else None

        found: dict[str, Any] | None = await eventually(check, f"result {result_id} to finish")
        assert found is not None
        return found


class ServedLikeRun(TestServer):
    """aiohttp's test server as `photodetective run` serves: a handler is not cancelled when its client
    hangs up (the test server's default is to cancel it), so tests see what production does."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        kwargs["handler_cancellation"] = False
        return web.AppRunner(self.app, **kwargs)


@asynccontextmanager
async def running_web(
    data_dir: Path,
    *,
    recognizer: Recognizer | None = None,
    worker: bool = True,
    clock: Callable[[], float] | None = None,
    **overrides: Any,
) -> AsyncIterator[WebHarness]:
    """The application with the web adapter on a local port; a worker unless `worker=False`."""
    values: dict[str, Any] = {"data_dir": data_dir, "web_enabled": True, "job_max_attempts": 1, **overrides}
    settings = settings_from(**values)
    recognizer = recognizer or NullRecognizer()
    stores = build_stores(settings)
    service = build_service(settings, stores, recognizer.capabilities, backend=recognizer.name)
    adapter = create(settings, service) if clock is None else WebAdapter(settings, service, clock=clock)
    assert isinstance(adapter, WebAdapter)
    health = HealthEndpoints(stores, settings, recognizer, Metrics())
    app = build_app([*health.routes(), *adapter.routes()])  # as `photodetective run` serves them
    client = TestClient(ServedLikeRun(app, host="127.0.0.1"))
    await client.start_server()
    stop = asyncio.Event()
    working = None
    if worker:
        config = WorkerConfig(worker_id="web-test", poll_interval_s=0.02, visibility_timeout_s=30.0)
        job_worker = adapter_worker(settings, stores, adapter, recognizer, config)
        working = asyncio.create_task(job_worker.run(stop))
    harness = WebHarness(settings, service, stores, adapter, client)
    try:
        await adapter.start()
        yield harness
    finally:
        await adapter.stop()
        stop.set()
        if working is not None:
            await working
        await client.close()
        await adapter.close()
        await stores.close()
