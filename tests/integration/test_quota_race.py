"""The quota stores under load and trouble: a cross-process race on the daily limit, a Redis outage
or hang, a SQLite file locked for longer than the busy timeout, and storage hygiene (expiry, pruning).

The races run 2 real processes (spawned, so nothing is shared but the store), each firing 25
concurrent `try_charge` calls for the same user with distinct job ids. Concurrency and burst limits
are set high so only the daily limit of 20 binds: exactly 20 must be granted, in total. Two more races do
the same for a user's parallel jobs (3) and for the global cap on billed calls (30, 2 per photo).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.quota import (
    QuotaPolicy,
    QuotaStore,
    QuotaStoreUnavailable,
    RedisQuotaStore,
    Refusal,
    SQLiteQuotaStore,
)
from bot.quota.redis import DEFAULT_PREFIX
from bot.storage import RedisPolicy, SqlitePolicy
from tests.conftest import RedisServer

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
RACE_POLICY = QuotaPolicy(daily_limit=20, max_concurrent=1000, burst_limit=1000, global_daily_calls=None)
PROCESSES = 2
PER_PROCESS = 25


def open_store(backend: str, target: str) -> QuotaStore:
    if backend == "sqlite":
        return SQLiteQuotaStore(Path(target))
    return RedisQuotaStore.from_url(target)


# The other two limits that must hold across processes: a user's parallel jobs, and the cost cap on
# billed calls for everyone together (each charge is a different user asking for 2 calls).
SCENARIOS: dict[str, tuple[QuotaPolicy, int]] = {
    "daily": (RACE_POLICY, 1),
    "concurrency": (
        QuotaPolicy(daily_limit=1000, max_concurrent=3, burst_limit=1000, global_daily_calls=None),
        1,
    ),
    "global": (
        QuotaPolicy(daily_limit=1000, max_concurrent=1000, burst_limit=1000, global_daily_calls=30),
        2,
    ),
}


async def fire(backend: str, target: str, worker: int, scenario: str = "daily") -> list[str]:
    """`PER_PROCESS` concurrent charges; the outcome of each, as a reason name or "granted"."""
    policy, calls = SCENARIOS[scenario]
    store = open_store(backend, target)
    try:
        results = await asyncio.gather(
            *(
                store.try_charge(
                    f"user-{worker}-{index}" if scenario == "global" else "alice",
                    f"w{worker}-job{index}",
                    calls,
                    NOW,
                    policy,
                )
                for index in range(PER_PROCESS)
            )
        )
    finally:
        await store.close()
    return ["granted" if r.granted else str(r.reason) for r in results]


def race_worker(
    backend: str, target: str, worker: int, barrier: Any, results: Any, scenario: str = "daily"
) -> None:
    """Process entry point: wait until every process is ready, then fire at once."""
    try:
        barrier.wait(timeout=60)
        results.put((worker, asyncio.run(fire(backend, target, worker, scenario))))
    except BaseException as error:
        results.put((worker, [f"error: {error!r}"]))
        raise


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "data" / "quota.sqlite3")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        yield "redis", server.url


async def race(name: str, target: str, scenario: str) -> list[str]:
    """Every process's outcomes, after they all fired at once."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=race_worker, args=(name, target, worker, barrier, results, scenario))
        for worker in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = await asyncio.to_thread(lambda: [results.get(timeout=90) for _ in processes])
    finally:
        for process in processes:
            await asyncio.to_thread(process.join, 30)
    assert all(process.exitcode == 0 for process in processes), outcomes
    return [outcome for _, worker_outcomes in outcomes for outcome in worker_outcomes]


async def test_fifty_concurrent_charges_from_two_processes_grant_exactly_the_limit(
    backend: tuple[str, str],
) -> None:
    name, target = backend
    everything = await race(name, target, "daily")
    assert len(everything) == PROCESSES * PER_PROCESS
    assert everything.count("granted") == RACE_POLICY.daily_limit
    assert everything.count(str(Refusal.DAILY_LIMIT)) == PROCESSES * PER_PROCESS - RACE_POLICY.daily_limit

    store = open_store(name, target)
    try:
        usage = await store.usage("alice", NOW, RACE_POLICY)
        stats = await store.stats(NOW, RACE_POLICY)
    finally:
        await store.close()
    assert (usage.used, usage.remaining, usage.active_jobs) == (20, 0, 20)
    assert stats.charged == 20
    assert stats.refusals[Refusal.DAILY_LIMIT] == 30


async def test_a_users_parallel_jobs_are_limited_across_processes(backend: tuple[str, str]) -> None:
    everything = await race(*backend, "concurrency")
    assert everything.count("granted") == 3
    assert everything.count(str(Refusal.CONCURRENCY)) == PROCESSES * PER_PROCESS - 3


async def test_the_global_cost_cap_holds_across_processes(backend: tuple[str, str]) -> None:
    everything = await race(*backend, "global")
    assert everything.count("granted") == 15  # 30 billed calls, 2 per photo
    assert everything.count(str(Refusal.GLOBAL_CAP)) == PROCESSES * PER_PROCESS - 15


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisQuotaStore]:
    store = RedisQuotaStore.from_url(redis_server.url, policy=RedisPolicy(timeout_s=0.5))
    yield store
    await store.close()


@pytest.mark.redis
async def test_redis_outage_refuses_with_a_typed_error_and_recovers_without_restart(
    redis_server: RedisServer, redis_store: RedisQuotaStore
) -> None:
    policy = QuotaPolicy(daily_limit=5, max_concurrent=10, burst_limit=10)
    assert (await redis_store.try_charge("alice", "before", 1, NOW, policy)).granted

    redis_server.stop()
    # Every operation fails fast with the typed error: nobody gets through uncounted.
    # (The bound only guards against a hang; the outage is reported well within it.)
    async with asyncio.timeout(10):
        with pytest.raises(QuotaStoreUnavailable) as caught:
            await redis_store.try_charge("alice", "during", 1, NOW, policy)
        assert "try again shortly" in str(caught.value)
        for operation in (
            redis_store.finish("before", refund=True),
            redis_store.usage("alice", NOW, policy),
            redis_store.grant("alice", 1, NOW, policy),
            redis_store.block("mallory"),
            redis_store.unblock("mallory"),
            redis_store.stats(NOW, policy),
        ):
            with pytest.raises(QuotaStoreUnavailable):
                await operation

    # The same store object works again once Redis is back (a fresh, empty server: the Lua
    # scripts are gone too and get loaded again on the NOSCRIPT fallback).
    redis_server.start()
    async with asyncio.timeout(10):
        result = await redis_store.try_charge("alice", "after", 1, NOW, policy)
    assert result.granted
    assert result.remaining == 4
    assert await redis_store.finish("after", refund=True)
    assert (await redis_store.usage("alice", NOW, policy)).used == 0


async def test_a_redis_that_accepts_but_never_answers_is_reported_within_the_socket_timeout() -> None:
    """A hung server (or a black-holed network) must not hang the bot: the socket timeout bounds it."""
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # keep the connection open and say nothing

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisQuotaStore.from_url(f"redis://127.0.0.1:{port}", policy=RedisPolicy(timeout_s=0.3))
    try:
        async with asyncio.timeout(10):  # guards against a hang only
            with pytest.raises(QuotaStoreUnavailable) as caught:
                await store.try_charge("alice", "j", 1, NOW, QuotaPolicy())
        assert "Timeout" in caught.value.detail or "timeout" in caught.value.detail
        assert accepted  # it really got as far as a connection that stayed silent
    finally:
        await store.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_sqlite_locked_longer_than_the_busy_timeout_raises_the_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "quota.sqlite3"
    store = SQLiteQuotaStore(path, policy=SqlitePolicy(busy_timeout_s=0.2))
    policy = QuotaPolicy()
    assert (await store.try_charge("alice", "j1", 1, NOW, policy)).granted

    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        with pytest.raises(QuotaStoreUnavailable):
            await store.try_charge("alice", "j2", 1, NOW, policy)
        # Readers are not blocked by a writer in WAL mode.
        assert (await store.usage("alice", NOW, policy)).used == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (await store.try_charge("alice", "j2", 1, NOW, policy)).granted


def as_text(key: str | bytes) -> str:
    """redis-py's types do not follow decode_responses; the runtime value is what counts."""
    return key.decode() if isinstance(key, bytes) else key


@pytest.mark.redis
async def test_redis_keys_expire_so_old_days_and_jobs_do_not_pile_up(redis_server: RedisServer) -> None:
    """Everything but the blocklist carries a TTL; day counters outlive their day by `keep_days`."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    store = RedisQuotaStore(client, keep_days=2)
    policy = QuotaPolicy(max_job_s=300, burst_window_s=60, timezone="Europe/Berlin")
    now = datetime(2025, 6, 10, 20, 0, tzinfo=UTC)  # 22:00 in Berlin: 2 h to midnight
    try:
        assert (await store.try_charge("alice", "j1", 1, now, policy)).granted
        await store.grant("alice", 1, now, policy)
        await store.block("mallory")
        await store.try_charge("mallory", "m1", 1, now, policy)
        await store.finish("j1", refund=True)

        keys = sorted(await client.keys("*"))
        ttls = {as_text(key).removeprefix(DEFAULT_PREFIX): await client.ttl(key) for key in keys}
        assert ttls.pop("blocked") == -1
        day_ttl = 2 * 3600 + 2 * 86400
        assert ttls == {
            "day:2025-06-10": pytest.approx(day_ttl, abs=5),
            "extra:2025-06-10": pytest.approx(day_ttl, abs=5),
            "used:2025-06-10": pytest.approx(day_ttl, abs=5),
            "job:j1": pytest.approx(2 * 86400, abs=5),
        }  # j1's slot was released and its refund took it out of the burst window: both keys are gone
    finally:
        await store.close()
        await client.aclose()


@pytest.mark.redis
async def test_redis_store_works_on_a_shared_client_that_returns_bytes(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)  # decode_responses=False, as another part may use
    store = RedisQuotaStore(client, prefix="other:")
    policy = QuotaPolicy(daily_limit=2)
    try:
        assert (await store.try_charge("alice", "j1", 1, NOW, policy)).granted
        assert (await store.try_charge("alice", "j1", 1, NOW, policy)).duplicate
        assert (await store.grant("alice", 1, NOW, policy)).remaining == 2
        assert await store.finish("j1", refund=True)
        stats = await store.stats(NOW, policy)
        assert (stats.charged, stats.refunded) == (1, 1)
        keys = await client.keys("*")
        assert keys
        assert all(isinstance(key, bytes) and key.startswith(b"other:") for key in keys)
    finally:
        await store.close()  # does not close a client it did not create
    assert await client.ping()
    await client.aclose()


async def test_sqlite_forgets_jobs_and_days_older_than_keep_days(tmp_path: Path) -> None:
    store = SQLiteQuotaStore(tmp_path / "quota.sqlite3", keep_days=2)
    policy = QuotaPolicy()
    try:
        assert (await store.try_charge("alice", "old", 1, NOW, policy)).granted
        assert (await store.try_charge("alice", "old", 1, NOW + timedelta(days=1), policy)).duplicate
        # The next charge after keep_days prunes: the old day's counters and the job are gone.
        later = NOW + timedelta(days=3)
        assert (await store.try_charge("bob", "new", 1, later, policy)).granted
        assert (await store.usage("alice", NOW, policy)).used == 0
        assert (await store.stats(NOW, policy)).charged == 0
        again = await store.try_charge("alice", "old", 1, later, policy)
        assert again.granted
        assert not again.duplicate
    finally:
        await store.close()
