"""The outside-in fault table (issue 21): every platform call the bot makes, failing every way.

For Telegram and Slack, each row injects one fault at one call the bot makes for a photo, through
the fakes' fault tables (`tests.fakes.faults`: the platforms' documented error shapes, a hung
request, a dropped connection), and runs the whole bot (adapter, service, worker, SQLite or Redis
stores) until the job has ended. The invariant, whatever the fault: the photo ends with exactly
one answer (the analysis, or one failure notice when its job was dead-lettered or the file was
gone), or, when the platform refuses the answer itself for good, with none and a dead letter; and
the user is charged at most once, and only for an analysis they received.

The few rows that wait out a real client timeout are marked `slow`; the rest take a second or two.
A connection refused outright is one separate test: the fake is down for a while, then back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram.ext import Application

import adapters.slack.client as slack_client
import adapters.slack.source as slack_source
import adapters.telegram.app as telegram_app
from adapters.telegram import TelegramAdapter, TelegramConfig
from adapters.telegram.limits import FloodControl
from adapters.web.replies import WebReplies, WebTarget
from adapters.web.store import WebResult
from adapters.web.store_redis import RedisWebStore
from bot.delivery import DeliveryPolicy
from bot.photo_requests import FailureReply, FileRef, PhotoRequest
from bot.ports import DeliveryFailed
from bot.settings import Settings
from bot.wiring import Stores, build_service, build_stores
from bot.worker import Worker
from core.recognizers.base import NullRecognizer
from tests.conftest import RedisServer
from tests.fakes.faults import Fault, FaultyProxy
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.slack_harness import ALICE, DM, file_message, running_slack
from tests.integration.slack_harness import jpeg as slack_jpeg
from tests.integration.telegram_helpers import bot_settings, jpeg, worker_config
from tests.integration.web_harness import running_web
from tests.integration.worker_helpers import adapter_worker

pytestmark = pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning")

FAST = DeliveryPolicy(backoff_s=0.2, backoff_max_s=1.0, horizon_s=3600)
READ_TIMEOUT_S = 2.0  # the Bot API client's, so a hung request ends in seconds


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> str | None:
    """The stores' Redis URL, or None for SQLite files."""
    if request.param == "sqlite":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


# -- Telegram ---------------------------------------------------------------------------------


def short_timeouts(config: TelegramConfig, rate_limiter: Any) -> Application:  # type: ignore[type-arg]
    """The adapter's application with a short read timeout, so a hung call fails in seconds."""
    return (
        Application.builder()
        .token(config.token)
        .base_url(config.base_url)
        .base_file_url(config.base_file_url)
        .updater(None)
        .rate_limiter(rate_limiter)
        .connect_timeout(2)
        .read_timeout(READ_TIMEOUT_S)
        .write_timeout(5)
        .media_write_timeout(5)
        .get_updates_read_timeout(5)
        .build()
    )


@dataclass
class TelegramBot:
    settings: Settings
    stores: Stores
    adapter: TelegramAdapter
    worker: Worker
    stop: asyncio.Event
    working: asyncio.Task[None]

    async def close(self) -> None:
        self.stop.set()
        await self.adapter.stop()
        await self.working
        await self.adapter.close()
        await self.stores.close()


@pytest.fixture
async def telegram(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    monkeypatch.setattr(telegram_app, "build_application", short_timeouts)
    async with FakeTelegram() as fake:
        yield fake


async def start_telegram_bot(fake: FakeTelegram, data_dir: Path, redis_url: str | None) -> TelegramBot:
    """The bot as `photodetective run` builds it, with a quick FloodControl and delivery backoff."""
    settings = bot_settings(data_dir, fake.url, redis_url=redis_url, quota_charge_user_errors=False)
    recognizer = NullRecognizer()
    stores = build_stores(settings)
    service = build_service(settings, stores, recognizer.capabilities, backend=recognizer.name)
    config = dataclasses.replace(
        TelegramConfig.from_settings(settings, recognizer.capabilities, recognizer.name), poll_timeout_s=1
    )
    flood = FloodControl(outage_backoff_s=0.05, max_wait_s=1.5)
    adapter = TelegramAdapter(config, service, rate_limiter=flood)
    worker = adapter_worker(settings, stores, adapter, recognizer, worker_config(delivery=FAST))
    stop = asyncio.Event()
    working = asyncio.create_task(worker.run(stop))
    await adapter.start()
    return TelegramBot(settings, stores, adapter, worker, stop, working)


@dataclass(frozen=True)
class Row:
    """One cell of the table: a fault at a call, and what the user must end up with."""

    call: str
    fault: str
    expect: str  # "analysis", "notice" (one failure message), or "nothing" (refused for good)
    send: str = "photo"  # what the user sends: "photo", or "document" (not a photo: a notice)
    slow: bool = False
    dead_letter: bool = False  # the job ends as a dead letter (refused, or not fetched in time)


#: "5xx for a while": 500 (the API's JSON error) for a moment, then 502 and 503 (the front end's page).
TRANSIENT = ("429", "5xx for a while", "timeout", "dropped")


def telegram_rows() -> list[Any]:
    rows: list[Row] = []
    for call in ("sendPhoto", "sendChatAction", "getFile", "download"):
        rows += [Row(call, fault, "analysis", slow=fault == "timeout") for fault in TRANSIENT]
    rows += [Row("sendMessage", fault, "notice", "document", slow=fault == "timeout") for fault in TRANSIENT]
    rows += [
        Row("sendPhoto", "403", "nothing", dead_letter=True),
        Row("sendMessage", "403", "nothing", "document", dead_letter=True),
        Row("sendChatAction", "403", "analysis"),  # decoration: the answer still goes out
        Row("getFile", "403", "notice"),  # the file is gone for us: the user is told, not charged
        Row("download", "403", "notice", dead_letter=True),  # retried, then one apology, dead
        # A photo that cannot be fetched through all its attempts is not kept: one apology.
        Row("getFile", "502 for good", "notice", dead_letter=True),
        Row("download", "502 for good", "notice", dead_letter=True),
    ]
    return [
        pytest.param(row, id=f"{row.call}-{row.fault}", marks=[pytest.mark.slow] if row.slow else [])
        for row in rows
    ]


def inject(fake: FakeTelegram, row: Row) -> Fault:
    """Script the row's fault; transient ones pass after a few calls or a couple of seconds."""
    call = row.call
    # A download is tried once per job attempt (three), the rest a few times per attempt too.
    times = 2 if call == "download" else 4
    if row.fault == "429":
        return fake.too_many_requests(call, retry_after=1, times=times)
    if row.fault == "5xx for a while":
        return server_errors_for_a_while(fake, call, fetch=call == "download")
    if row.fault == "502 for good":
        return fake.server_error(call, 502, times=None)
    if row.fault == "timeout":
        return fake.timeout(call, times=1)
    if row.fault == "dropped":
        return fake.drop(call, times=2)
    assert row.fault == "403"
    return fake.forbidden(call)


def server_errors_for_a_while(fake: FakeTelegram | FakeSlack, call: str, *, fetch: bool) -> Fault:
    """500 for a moment, then 502, then 503 (faults apply in the order scripted), then normal.

    A photo fetch gets one of each of the first two only: it has three job attempts, and a
    platform down through all of them is a row of its own ("502 for good").
    """
    if fetch:
        first = fake.server_error(call, 500, times=1)
        fake.server_error(call, 502, times=1)
        return first
    first = fake.server_error(call, 500, for_s=1.5)
    fake.server_error(call, 502, times=2)
    fake.server_error(call, 503, times=2)
    return first


async def settled(stores: Stores, within_s: float = 60.0) -> None:
    """Wait until no job is waiting, running or holding an answer for later."""
    deadline = time.monotonic() + within_s
    while True:
        stats = await stores.queue.stats(time.time())
        if stats.done + stats.dead >= 1 and stats.queued == stats.in_flight == stats.delivering == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the job did not end: {stats}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("row", telegram_rows())
async def test_telegram_fault_table(
    row: Row, telegram: FakeTelegram, store: str | None, tmp_path: Path
) -> None:
    fault = inject(telegram, row)
    bot = await start_telegram_bot(telegram, tmp_path / "data", store)
    try:
        chat = telegram.private_chat(telegram.user(4242))
        if row.send == "photo":
            message = telegram.send_document(chat, jpeg(), file_name="photo.jpg", mime_type="image/jpeg")
        else:
            message = telegram.send_document(chat, b"%PDF-1.4 not a photo", file_name="a.pdf")
        await settled(bot.stores)
        await asyncio.sleep(0.5)  # room for a second answer, were one coming
        answers = [
            c
            for c in telegram.calls_to("sendPhoto", "sendDocument", "sendMessage", ok=True)
            if c.reply_to_message_id == message["message_id"]
        ]
        usage = await build_service(bot.settings, bot.stores, frozenset()).usage("telegram:4242")
        dead = await bot.stores.queue.dead_letters()
    finally:
        await bot.close()

    assert fault.hits >= 1, "the fault was never met"
    assert len(dead) == (1 if row.dead_letter else 0), dead
    kinds = [c.method for c in answers]
    if row.expect == "analysis":
        assert kinds in (["sendPhoto"], ["sendDocument"]), kinds
        assert (usage.used, usage.active_jobs) == (1, 0)
    elif row.expect == "notice":
        assert kinds == ["sendMessage"], kinds
        assert (usage.used, usage.active_jobs) == (0, 0)
    else:
        assert kinds == [], kinds
        assert (usage.used, usage.active_jobs) == (0, 0)
        [letter] = dead
        assert "refused the answer for good" in letter.error


async def test_telegram_answer_waits_out_a_bot_api_that_refuses_connections(
    telegram: FakeTelegram, store: str | None, tmp_path: Path
) -> None:
    """The Bot API host is down (connections refused) when the answer is ready; it comes back."""
    bot = await start_telegram_bot(telegram, tmp_path / "data", store)
    try:
        chat = telegram.private_chat(telegram.user(4243))
        gate = telegram.timeout("sendPhoto", times=1)  # hold the first send while the host goes down
        message = telegram.send_document(chat, jpeg(), file_name="photo.jpg", mime_type="image/jpeg")
        await telegram.wait_for(lambda: gate.hits == 1)
        port = telegram.port
        await asyncio.to_thread(telegram.stop)
        await asyncio.sleep(3 * READ_TIMEOUT_S)  # sends and retries meet a closed port
        stats = await bot.stores.queue.stats(time.time())
        assert stats.delivering == 1
        await asyncio.to_thread(telegram.start, port)
        await settled(bot.stores)
        answers = [
            c
            for c in telegram.calls_to("sendPhoto", ok=True)
            if c.reply_to_message_id == message["message_id"]
        ]
        usage = await build_service(bot.settings, bot.stores, frozenset()).usage("telegram:4243")
    finally:
        await bot.close()

    assert len(answers) == 1
    assert (usage.used, usage.active_jobs) == (1, 0)


# -- Slack ------------------------------------------------------------------------------------


@pytest.fixture
async def slack(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSlack]:
    monkeypatch.setattr(slack_client, "API_TIMEOUT_S", 3)  # a hung Web API call fails in seconds
    monkeypatch.setattr(slack_source, "DOWNLOAD_TIMEOUT_S", 3.0)
    async with FakeSlack() as fake:
        yield fake


SLACK_FETCH = ("files.info", "download")
SLACK_ANSWER = ("files.getUploadURLExternal", "upload", "files.completeUploadExternal")


def slack_rows() -> list[Any]:
    rows: list[Row] = []
    for call in SLACK_FETCH + SLACK_ANSWER:
        rows += [Row(call, fault, "analysis", slow=fault == "timeout") for fault in TRANSIENT]
    rows += [
        Row("chat.postMessage", fault, "notice", "document", slow=fault == "timeout") for fault in TRANSIENT
    ]
    rows += [
        # Slack refuses a conversation for good with HTTP 200 and an error code.
        Row("files.completeUploadExternal", "not_in_channel", "nothing", dead_letter=True),
        Row("chat.postMessage", "channel_not_found", "nothing", "document", dead_letter=True),
        Row("download", "403", "notice", dead_letter=True),  # retried, then one apology, dead
        Row("files.info", "502 for good", "notice", dead_letter=True),
    ]
    return [
        pytest.param(row, id=f"{row.call}-{row.fault}", marks=[pytest.mark.slow] if row.slow else [])
        for row in rows
    ]


def inject_slack(fake: FakeSlack, row: Row) -> Fault | None:
    """Script the row's fault on the fake Slack (None: a refusal scripted with `fail`)."""
    call = row.call
    # A fetch is tried a few times per job attempt (three), an answer past the client's own
    # retries (429: three, 500/503: one) so the answer goes back to the queue.
    times = 2 if call in SLACK_FETCH else 5
    if row.fault == "429":
        return fake.too_many_requests(call, retry_after=1, times=times)
    if row.fault == "5xx for a while":
        return server_errors_for_a_while(fake, call, fetch=call in SLACK_FETCH)
    if row.fault == "502 for good":
        return fake.server_error(call, 502, times=None)
    if row.fault == "timeout":
        return fake.timeout(call, times=1)
    if row.fault == "dropped":
        return fake.drop(call, times=2)
    if row.fault == "403":
        return fake.faults.add(Fault("status", call, 403, times=None))
    fake.fail(call, row.fault)
    return None


@pytest.mark.parametrize("row", slack_rows())
async def test_slack_fault_table(row: Row, slack: FakeSlack, store: str | None, tmp_path: Path) -> None:
    fault = inject_slack(slack, row)
    config = worker_config(delivery=FAST)
    async with running_slack(
        slack, tmp_path / "data", redis_url=store, job_max_attempts=3, worker=config
    ) as bot:
        if row.send == "photo":
            file = slack.add_file("F0FAULT", slack_jpeg())
        else:  # an "image" that is not one: a friendly notice
            file = slack.add_file("F0FAULT", b"<html>not a photo</html>", name="x.jpg")
        ts = slack.next_ts()
        assert (await bot.send_event(file_message(file, channel=DM, ts=ts))).status == 200
        await settled(bot.stores)
        await asyncio.sleep(0.5)  # room for a second answer, were one coming
        images = [f for f in slack.shared_files if f.thread_ts == ts]
        notices = [c for c in slack.ok_calls("chat.postMessage") if c.params.get("thread_ts") == ts]
        usage = await bot.service.usage(f"slack:{slack.team_id}:{ALICE}")
        dead = await bot.stores.queue.dead_letters()

    if fault is not None:
        assert fault.hits >= 1, "the fault was never met"
    assert len(dead) == (1 if row.dead_letter else 0), dead
    if row.expect == "analysis":
        assert (len(images), len(notices)) == (1, 0)
        assert (usage.used, usage.active_jobs) == (1, 0)
    elif row.expect == "notice":
        assert (len(images), len(notices)) == (0, 1)
        assert (usage.used, usage.active_jobs) == (0, 0)
    else:
        assert (len(images), len(notices)) == (0, 0)
        assert (usage.used, usage.active_jobs) == (0, 0)
        assert "refused the answer for good" in dead[0].error


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


# -- a long retry_after is the queue's wait, not a worker's -----------------------------------


async def claimable_at(stores: Stores, at: float) -> bool:
    """Whether the queue (SQLite: its clock is the caller's) would hand the job out at `at`."""
    lease = await stores.queue.claim("probe", at, 5)
    if lease is None:
        return False
    await stores.queue.release(lease)
    return True


async def test_telegram_long_retry_after_is_waited_in_the_queue(
    telegram: FakeTelegram, tmp_path: Path
) -> None:
    fault = telegram.too_many_requests("sendPhoto", retry_after=40, times=None)
    bot = await start_telegram_bot(telegram, tmp_path / "data", None)
    try:
        chat = telegram.private_chat(telegram.user(4244))
        telegram.send_document(chat, jpeg(), file_name="photo.jpg", mime_type="image/jpeg")
        await telegram.wait_for(lambda: fault.hits >= 1)
        deadline = time.monotonic() + 10
        while (await bot.stores.queue.stats(time.time())).delivering == 0:
            assert time.monotonic() < deadline, "the answer was not put back in the queue"
            await asyncio.sleep(0.1)
        now = time.time()
        early, late = await claimable_at(bot.stores, now + 35), await claimable_at(bot.stores, now + 42)
    finally:
        await bot.close()

    assert fault.hits == 1  # not slept through and tried again in the worker
    assert (early, late) == (False, True)  # Telegram's 40 s are honoured by the queue


async def test_slack_long_retry_after_is_waited_in_the_queue(slack: FakeSlack, tmp_path: Path) -> None:
    fault = slack.too_many_requests("files.completeUploadExternal", retry_after=30, times=None)
    config = worker_config(delivery=FAST)
    async with running_slack(slack, tmp_path / "data", job_max_attempts=3, worker=config) as bot:
        file = slack.add_file("F0LONG", slack_jpeg())
        await bot.send_event(file_message(file, channel=DM, ts=slack.next_ts()))
        deadline = time.monotonic() + 10
        while (await bot.stores.queue.stats(time.time())).delivering == 0:
            assert time.monotonic() < deadline, "the answer was not put back in the queue"
            await asyncio.sleep(0.1)
        now = time.time()
        early, late = await claimable_at(bot.stores, now + 25), await claimable_at(bot.stores, now + 32)

    assert fault.hits == 1
    assert (early, late) == (False, True)
