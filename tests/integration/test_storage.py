"""One SQLite access helper and one Redis client policy for the quota, preferences and rate-limit stores.

The SQLite finding: switching a file to WAL answers "database is locked" at once while another
connection is writing to it (SQLite does not wait on its busy timeout for that pragma). Six
processes starting together on a new preferences or rate file hit it in about one start in ten;
only the quota store retried. Here another connection holds the new file for a moment,
deterministically, while each store opens it.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.preferences import PreferencesUnavailable, RedisPreferences, SQLitePreferences
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


STORES: dict[str, Callable[[Path], Awaitable[None]]] = {
    "preferences": use_preferences,
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
