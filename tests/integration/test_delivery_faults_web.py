"""The web page's part of the fault table: a result the browser cannot fetch is kept.

The page's "reply" is a write to the result store; the browser fetches the result whenever it
likes, here through a proxy that fails it every way the table knows. Also: the result store
itself restarting while the worker writes (the one outage the web answer waits out).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.web.replies import WebReplies, WebTarget
from adapters.web.store import WebResult
from adapters.web.store_redis import RedisWebStore
from bot.photo_requests import FailureReply, FileRef, PhotoRequest
from bot.ports import DeliveryFailed
from tests.conftest import RedisServer
from tests.fakes.faults import Fault, FaultyProxy
from tests.integration.delivery_fault_helpers import (
    STORES,
    TRANSIENT,
    redis_url_for,
)
from tests.integration.web_harness import running_web

pytestmark = pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning")


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str | None:
    """The stores' Redis URL, or None for SQLite files."""
    return redis_url_for(request)


# -- the web page -----------------------------------------------------------------------------


def web_call(path: str) -> str:
    """The proxy's name for a request: "result" for a result's status document or images."""
    return "result" if path.startswith("/results/") else "page"


def web_rows() -> list[Any]:
    faults = (*TRANSIENT, "403")
    return [pytest.param(f, marks=[pytest.mark.slow] if f == "timeout" else []) for f in faults]


@pytest.mark.parametrize("fault_name", web_rows())
async def test_web_result_the_browser_cannot_fetch_is_kept(
    fault_name: str, store: str | None, tmp_path: Path
) -> None:
    """Whatever stands between the browser and the result, the result waits for it, analysed once."""
    async with running_web(tmp_path / "data", redis_url=store) as site:
        await site.sign_in()
        result_id = await site.uploaded_id()
        await site.finished(result_id)  # analysed and stored, whatever the browser sees next
        proxy = FaultyProxy(str(site.client.make_url("/")), web_call)
        fault = proxy.faults.add(
            {
                "429": Fault("status", "result", 429, 2, "Too Many Requests", times=3),
                "5xx for a while": Fault("status", "result", 500, for_s=2.0),
                "timeout": Fault("hang", "result", times=1),
                "dropped": Fault("drop", "result", times=3),
                "403": Fault("status", "result", 403, error="Forbidden", times=3),
            }[fault_name]
        )
        if fault_name == "5xx for a while":  # then the front end's pages, once each
            proxy.faults.add(Fault("status", "result", 502, html=True, times=1))
            proxy.faults.add(Fault("status", "result", 503, html=True, times=1))
        cookies = site.client.session.cookie_jar.filter_cookies(site.client.make_url("/"))
        header = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
        seen: list[int] = []
        async with proxy, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as browser:
            deadline = time.monotonic() + 30
            document: dict[str, Any] = {}
            while time.monotonic() < deadline:
                try:
                    async with browser.get(
                        f"{proxy.url}/results/{result_id}.json", headers={"Cookie": header}
                    ) as got:
                        seen.append(got.status)
                        if got.status == 200:
                            document = await got.json()
                            break
                except (aiohttp.ClientError, TimeoutError):
                    seen.append(0)
                await asyncio.sleep(0.3)
            async with browser.get(
                f"{proxy.url}/results/{result_id}/annotated.jpg", headers={"Cookie": header}
            ) as image:
                image_status = image.status
        usage = await site.service.usage(f"web:{'alice'}")
        stats = await site.stores.queue.stats(time.time())

    assert fault.hits >= 1
    assert seen[-1] == 200, seen
    assert any(status != 200 for status in seen), seen  # the browser did meet the fault
    assert document["status"] == "done"
    assert image_status == 200
    assert (stats.done, stats.dead, stats.delivering) == (1, 0, 0)  # analysed and stored once
    assert (usage.used, usage.active_jobs) == (1, 0)


@pytest.mark.redis
async def test_web_answer_waits_out_a_result_store_outage(tmp_path: Path) -> None:
    """The web "reply" is a write to the result store: a store outage is transient, not an end."""
    redis_server = RedisServer(tmp_path, persistent=True)  # restarted on its append-only file
    redis_server.start()
    store = RedisWebStore(redis_server.url)
    replies = WebReplies(store)
    request = PhotoRequest(
        platform="web",
        user_id="alice",
        chat_id="alice",
        message_id="r1",
        file=FileRef("upload:r1"),
        features=frozenset(),
        reply_to=WebTarget("r1", "alice").to_reply_to(),
    )
    await store.add_result(WebResult(id="r1", account="alice", created_at=time.time(), name="p.jpg"))
    notice = FailureReply(request, "timeout", "Sorry, that took too long.", user_fault=False)
    told: list[bool] = []

    async def accepted() -> None:
        told.append(True)

    redis_server.stop()
    try:
        with pytest.raises(DeliveryFailed) as refused:
            await replies.deliver(notice, accepted)
        assert not refused.value.permanent
        assert told == []
    finally:
        redis_server.start()
    try:
        await replies.deliver(notice, accepted)
        result = await store.result("r1")
    finally:
        await store.client.aclose()
        redis_server.stop()

    assert told == [True]
    assert result is not None
    assert (result.status, result.error_message) == ("failed", "Sorry, that took too long.")
