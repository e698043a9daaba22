"""One SQLite access helper and one Redis client policy for the queue, quota, preferences and rate stores.

The SQLite finding: switching a file to WAL answers "database is locked" at once while another
connection is writing to it (SQLite does not wait on its busy timeout for that pragma). Six
processes starting together on a new preferences or rate file hit it in about one start in ten;
only the quota store retried. Here another connection holds the new file for a moment,
deterministically, while each store opens it.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.preferences import PreferencesUnavailable, RedisPreferences, SQLitePreferences
from bot.queue import QueueUnavailable, RedisJobQueue, SqliteJobQueue
from bot.quota import QuotaPolicy, QuotaStoreUnavailable, RedisQuotaStore, SQLiteQuotaStore
from bot.rate_limit import RedisSlotSchedule, SqliteSlotSchedule
from bot.storage import RedisPolicy, SqliteFile, SqlitePolicy
from core.errors import RecognizerThrottled

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def hold_briefly(path: Path, seconds: float) -> threading.Timer:
    """Another process writing to the new file (still in rollback-journal mode), for `seconds`.

    Its reserved lock makes `PRAGMA journal_mode = WAL` answer "database is locked" at once,
    without waiting on the busy timeout: what two processes starting together run into.
    """
    holder = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE IF NOT EXISTS other (x)")

    def release() -> None:
        holder.execute("COMMIT")
        holder.close()

    timer = threading.Timer(seconds, release)
    timer.start()
    return timer


async def use_preferences(path: Path) -> None:
    store = SQLitePreferences(path)
    await store.set("chat:1", "mode", "mentions")
    assert await store.get("chat:1", "mode") == "mentions"


async def use_rate_schedule(path: Path) -> None:
    assert SqliteSlotSchedule(path).reserve("DetectLabels", 0.1, 5) == 0.0


async def use_quota(path: Path) -> None:
    store = SQLiteQuotaStore(path)
    try:
        assert (await store.usage("telegram:1", NOW, QuotaPolicy())).used == 0
    finally:
        await store.close()


async def use_queue(path: Path) -> None:
    queue = SqliteJobQueue(path)
    try:
        assert (await queue.enqueue("tg:1:1", "u", {}, time.time())).created
    finally:
        await queue.close()


STORES: dict[str, Callable[[Path], Awaitable[None]]] = {
    "preferences": use_preferences,
    "queue": use_queue,
    "rate": use_rate_schedule,
    "quota": use_quota,
}


@pytest.mark.parametrize("store", sorted(STORES))
async def test_a_store_opens_a_new_file_that_another_process_holds_for_a_moment(
    store: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{store}.sqlite3"
    release = hold_briefly(path, 0.3)
    try:
        await STORES[store](path)
    finally:
        release.join()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_writer_waits_for_another_writer_then_gives_up_at_the_busy_timeout(tmp_path: Path) -> None:
    file = SqliteFile(tmp_path / "f.sqlite3", SqlitePolicy(busy_timeout_s=0.2))
    with file.transaction(write=True) as first:
        first.execute("CREATE TABLE t (x)")
        with pytest.raises(sqlite3.OperationalError, match="locked"), file.transaction(write=True):
            pass
    with file.transaction(write=True) as later:
        later.execute("INSERT INTO t VALUES (1)")
    with file.transaction(write=False) as reader:
        assert reader.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_the_schema_is_created_once_in_a_folder_made_for_it(tmp_path: Path) -> None:
    calls: list[int] = []

    def schema(db: sqlite3.Connection) -> None:
        calls.append(1)
        db.execute("CREATE TABLE IF NOT EXISTS t (x)")

    file = SqliteFile(tmp_path / "new" / "f.sqlite3", schema=schema)
    for _ in range(3):
        with file.transaction(write=False) as db:
            assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    assert calls == [1]


async def test_queues_opening_a_new_file_together_all_open_it_in_wal_with_full_sync(tmp_path: Path) -> None:
    """Four queue objects (each its own thread and connection) open a new file another process holds."""
    path = tmp_path / "queue.sqlite3"
    queues = [SqliteJobQueue(path) for _ in range(4)]
    release = hold_briefly(path, 0.3)
    try:
        opened = await asyncio.gather(
            *(queue.enqueue(f"tg:1:{n}", "u", {}, time.time()) for n, queue in enumerate(queues))
        )
        assert all(result.created for result in opened)

        def pragmas(connection: sqlite3.Connection) -> tuple[str, int]:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            return mode, connection.execute("PRAGMA synchronous").fetchone()[0]

        for queue in queues:  # on the queue's own (persistent) connection: WAL, synchronous = FULL (2)
            assert await queue._run(pragmas) == ("wal", 2)
        assert (await queues[0].stats(time.time())).queued == 4
    finally:
        release.join()
        for queue in queues:
            await queue.close()


OPEN_AT = """
import asyncio, sys, time
from pathlib import Path
from bot.queue import SqliteJobQueue

async def main(folder: Path, start: float, rounds: int, name: str) -> None:
    for n in range(rounds):
        time.sleep(max(0.0, start + 0.25 * n - time.time()))
        queue = SqliteJobQueue(folder / f"queue{n}.sqlite3")
        try:
            await queue.enqueue(f"{name}:{n}", name, {}, time.time())
        finally:
            await queue.close()

asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
"""


def test_two_processes_opening_new_queue_files_at_the_same_moment_both_succeed(tmp_path: Path) -> None:
    rounds = 8
    start = time.time() + 2.0  # both processes are up by then; each round opens a new file together
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, str(tmp_path), repr(start), str(rounds), name],
            cwd=Path(__file__).resolve().parents[2],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for worker in workers:
        _, errors = worker.communicate(timeout=30)
        assert worker.returncode == 0, errors
    for n in range(rounds):
        with sqlite3.connect(tmp_path / f"queue{n}.sqlite3") as check:
            assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert check.execute("SELECT COUNT(*) FROM queue_jobs").fetchone() == (2,)


# --- Redis ------------------------------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers: Redis hung, or a black hole."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


POLICY = RedisPolicy(timeout_s=0.3, retries=1, max_connections=7)


def pool_settings(kwargs: dict[str, object], max_connections: int) -> tuple[object, ...]:
    return (kwargs["socket_timeout"], kwargs["socket_connect_timeout"], max_connections)


async def test_every_redis_store_takes_the_one_policy(silent_server: str) -> None:
    quota = RedisQuotaStore.from_url(silent_server, policy=POLICY)
    preferences = RedisPreferences(silent_server, policy=POLICY)
    schedule = RedisSlotSchedule(silent_server, policy=POLICY)
    try:
        for client in (quota.client, preferences.client):
            pool = client.connection_pool
            assert pool_settings(pool.connection_kwargs, pool.max_connections) == (0.3, 0.3, 7)
        sync_pool = schedule.client.connection_pool
        assert pool_settings(sync_pool.connection_kwargs, sync_pool.max_connections) == (0.3, 0.3, 7)

        # A server that never answers is each store's own "unavailable", not a hang.
        with pytest.raises(QuotaStoreUnavailable):
            await quota.usage("telegram:1", NOW, QuotaPolicy())
        with pytest.raises(PreferencesUnavailable):
            await preferences.get("chat:1", "mode")
        with pytest.raises(RecognizerThrottled):
            schedule.reserve("DetectLabels", 0.1, 5)
    finally:
        await quota.close()
        await preferences.close()
        schedule.close()


async def test_the_redis_queue_takes_the_policy_with_no_retries_and_at_least_two_seconds(
    silent_server: str,
) -> None:
    """Its scripts are not idempotent: a claim retried after a lost reply would lease a second job."""
    for policy, timeout in ((POLICY, 2.0), (RedisPolicy(timeout_s=3.0, retries=2, max_connections=7), 3.0)):
        queue = RedisJobQueue(silent_server, policy=policy)
        try:
            pool = queue.client.connection_pool
            assert pool_settings(pool.connection_kwargs, pool.max_connections) == (timeout, timeout, 7)
            assert pool.connection_kwargs["retry"].get_retries() == 0
        finally:
            await queue.close()
    queue = RedisJobQueue(silent_server, policy=POLICY)
    try:
        started = time.monotonic()
        with pytest.raises(QueueUnavailable):  # a server that never answers: unavailable, once, not a hang
            await queue.claim("w1", time.time(), 30)
        assert time.monotonic() - started < 2.0 * 2 + 1  # no retry (which would take twice as long)
    finally:
        await queue.close()
