"""Every answer of the service's HTTP server carries the security headers and names no versions.

The application is built as `photodetective run` builds it (`bot.http_server.build_app`) with the
web page's routes and the health checks; the answers checked include aiohttp's own 404 and 405,
the health checks, a malformed request aiohttp refuses before any route, and a 408 the web page
sends itself. /metrics is not on this listener at all: it has its own, on loopback by default.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from bot.health import HealthEndpoints
from bot.http_server import SERVER_NAME, start_metrics
from bot.metrics import Metrics
from core.recognizers.base import NullRecognizer
from tests.integration.runner_helpers import free_port
from tests.integration.web_harness import WebHarness, running_web
from tests.settings_helpers import settings_from


def assert_stamped(headers: Any, what: str) -> None:
    csp = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp, what
    assert "frame-ancestors 'none'" in csp, what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("Referrer-Policy") == "same-origin", what
    assert headers.get("Server") == SERVER_NAME, (what, headers.get("Server"))


async def raw(web: WebHarness, request: bytes) -> bytes:
    url = web.client.make_url("/")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


async def test_errors_health_and_pages_all_carry_the_headers(tmp_path: Path) -> None:
    async with running_web(tmp_path, worker=False) as web:
        await web.sign_in()
        answers = {
            "aiohttp's 404": await web.get("/nothing-here"),
            "aiohttp's 405": await web.get("/upload"),
            "our 404": await web.get("/results/nothing"),
            "the page": await web.get("/"),
            "healthz": await web.get("/healthz"),
            "static": await web.get("/static/app.js"),
        }
        malformed = await raw(web, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n")
        metrics_here = await web.get("/metrics")
    assert answers["aiohttp's 404"].status == 404
    assert answers["aiohttp's 405"].status == 405
    assert answers["healthz"].status == 200
    for what, answer in answers.items():
        assert_stamped(answer.headers, what)
    assert answers["static"].headers["Cache-Control"] == "no-cache"  # a handler's own value stays
    head = malformed.split(b"\r\n\r\n", 1)[0].decode()
    assert head.split(" ", 2)[1] == "400", head
    assert "Server: PhotoDetective" in head  # refused before any route: no security headers, no version
    assert "aiohttp" not in head.lower(), head
    assert "python" not in head.lower(), head
    assert metrics_here.status == 404


async def test_metrics_are_served_on_their_own_loopback_listener(tmp_path: Path) -> None:
    port = free_port()
    settings = settings_from(data_dir=tmp_path, metrics_port=port)
    health = HealthEndpoints(_NoStores(), settings, NullRecognizer(), Metrics())  # type: ignore[arg-type]
    runner = await start_metrics(settings, health.metrics_routes())
    assert runner is not None
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{port}/metrics") as answer,
        ):
            text = await answer.text()
            headers = answer.headers
    finally:
        await runner.cleanup()
    assert settings.metrics_host == "127.0.0.1"
    assert answer.status == 200
    assert "photodetective_photos_received_total" in text
    assert_stamped(headers, "/metrics")


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    assert await start_metrics(settings_from(data_dir=tmp_path, metrics_port=0), []) is None


class _NoStores:
    """Stores whose queue cannot be asked: /metrics still answers (without the queue gauges)."""

    @property
    def queue(self) -> Any:
        raise RuntimeError("no queue in this test")
