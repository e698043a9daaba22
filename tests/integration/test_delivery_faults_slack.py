"""The fault table for Slack (see tests/integration/delivery_fault_helpers.py for the invariant).

Calls: files.info, the file download, the three steps of files_upload_v2 (getUploadURLExternal,
the upload, completeUploadExternal) and chat.postMessage; and a long Retry-After waited in the
queue rather than in a worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import adapters.slack.client as slack_client
import adapters.slack.source as slack_source
from tests.fakes.faults import Fault
from tests.fakes.slack_api import FakeSlack
from tests.integration.delivery_fault_helpers import (
    FAST,
    STORES,
    TRANSIENT,
    Row,
    claimable_at,
    redis_url_for,
    server_errors_for_a_while,
    settled,
    table,
)
from tests.integration.slack_harness import ALICE, DM, file_message, running_slack
from tests.integration.slack_harness import jpeg as slack_jpeg
from tests.integration.telegram_helpers import worker_config

pytestmark = pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning")


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str | None:
    """The stores' Redis URL, or None for SQLite files."""
    return redis_url_for(request)


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
    return table(rows)


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
