"""What the outside-in fault table's modules share (issue 21; test_delivery_faults_*.py).

Each row of the table injects one fault at one platform call the bot makes for a photo, through
the fakes' fault tables (`tests.fakes.faults`: the platforms' documented error shapes, a hung
request, a dropped connection), and runs the whole bot (adapter, service, worker, SQLite or Redis
stores) until the job has ended. The invariant, whatever the fault: the photo ends with exactly
one answer (the analysis, or one failure notice when its job was dead-lettered or the file was
gone), or, when the platform refuses the answer itself for good, with none and a dead letter; and
the user is charged at most once, and only for an analysis they received. The few rows that wait
out a real client timeout are marked `slow`; the rest take a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest

from bot.delivery import DeliveryPolicy
from bot.wiring import Stores
from tests.conftest import RedisServer
from tests.fakes.faults import Fault
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram

FAST = DeliveryPolicy(backoff_s=0.2, backoff_max_s=1.0, horizon_s=3600)
READ_TIMEOUT_S = 2.0  # the platform clients', so a hung request ends in seconds
STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


def redis_url_for(request: pytest.FixtureRequest) -> str | None:
    """For a `store` fixture parametrized with `STORES`: a fresh Redis's URL, or None for SQLite."""
    if request.param == "sqlite":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


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


def table(rows: list[Row]) -> list[Any]:
    """The rows as pytest parameters, named call-fault, the slow ones marked."""
    return [
        pytest.param(row, id=f"{row.call}-{row.fault}", marks=[pytest.mark.slow] if row.slow else [])
        for row in rows
    ]


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


async def claimable_at(stores: Stores, at: float) -> bool:
    """Whether the queue (SQLite: its clock is the caller's) would hand the job out at `at`."""
    lease = await stores.queue.claim("probe", at, 5)
    if lease is None:
        return False
    await stores.queue.release(lease)
    return True
