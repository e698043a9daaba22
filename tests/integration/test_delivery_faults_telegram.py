"""The fault table for Telegram (see tests/integration/delivery_fault_helpers.py for the invariant).

Calls: getFile, the file download, sendChatAction, sendPhoto, sendMessage (the bot does not call
setMessageReaction). Also: a Bot API host refusing connections for a while, and a long
retry_after waited in the queue rather than in a worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import Application

import adapters.telegram.app as telegram_app
from adapters.telegram import TelegramAdapter, TelegramConfig
from adapters.telegram.limits import FloodControl
from bot.settings import Settings
from bot.wiring import Stores, build_service, build_stores
from bot.worker import Worker
from core.recognizers.base import NullRecognizer
from tests.fakes.faults import Fault
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.delivery_fault_helpers import (
    FAST,
    READ_TIMEOUT_S,
    STORES,
    TRANSIENT,
    Row,
    claimable_at,
    redis_url_for,
    server_errors_for_a_while,
    settled,
    table,
)
from tests.integration.telegram_helpers import bot_settings, jpeg, worker_config
from tests.integration.worker_helpers import adapter_worker

pytestmark = pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning")


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str | None:
    """The stores' Redis URL, or None for SQLite files."""
    return redis_url_for(request)


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
    return table(rows)


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
