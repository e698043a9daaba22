"""The default quota store: one SQLite file in the data directory, safe across threads and processes.

Every check-and-charge is one `BEGIN IMMEDIATE` transaction, which takes SQLite's single write lock
before reading anything, so two processes (or two threads) can never both see "19 of 20 used" and
both charge. WAL mode lets readers (`usage`, `stats`) run while a writer holds the lock, and the busy
timeout makes writers queue instead of failing (both from `bot.storage.sqlite.SqliteFile`). The
stdlib `sqlite3` is blocking, so each call runs in a worker thread on a connection of its own,
opened and closed within that call: connections are never shared between threads.
The store has its own small thread pool rather than asyncio's default one, so quota checks do not
queue behind slow recognizer calls that other code runs with `asyncio.to_thread`.

If the awaiting task is cancelled, the thread still finishes its transaction: a charge may have
happened that the caller never saw. Charging the same job id again is safe (idempotent).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from bot.quota.base import (
    QuotaStore,
    QuotaStoreUnavailable,
    check_charge_args,
    quota_day,
    require_aware,
)
from bot.quota.models import ChargeResult, QuotaPolicy, Refusal, Stats, Usage, UserCount
from bot.quota.rules import JobState, StoredCounts, StoredJob, decide_charge, settle
from bot.storage.sqlite import DEFAULT_SQLITE, SqliteFile, SqlitePolicy

T = TypeVar("T")

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    day         TEXT NOT NULL,
    calls       INTEGER NOT NULL,
    charged_at  REAL NOT NULL,
    lease_until REAL NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'finished', 'refunded')),
    remaining   INTEGER NOT NULL,
    day_limit   INTEGER NOT NULL,
    resets_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_user_time ON jobs (user_id, charged_at);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (charged_at);
CREATE TABLE IF NOT EXISTS daily (
    user_id TEXT NOT NULL,
    day     TEXT NOT NULL,
    used    INTEGER NOT NULL DEFAULT 0,
    extra   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS daily_by_day ON daily (day, used);
CREATE TABLE IF NOT EXISTS totals (
    day      TEXT PRIMARY KEY,
    calls    INTEGER NOT NULL DEFAULT 0,
    charged  INTEGER NOT NULL DEFAULT 0,
    refunded INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refusals (
    day    TEXT NOT NULL,
    reason TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (day, reason)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocked (
    user_id TEXT PRIMARY KEY
) WITHOUT ROWID;
"""


class SQLiteQuotaStore(QuotaStore):
    """Quotas in one SQLite file (for instance `data_dir / "quota.sqlite3"`).

    `policy.busy_timeout_s` is how long a writer waits for another writer before the store gives up
    with `QuotaStoreUnavailable` (`bot.storage.sqlite`: WAL, busy timeout and SQLITE_BUSY handling
    are shared with the other stores); `keep_days` is how long job records (idempotency, refunds) and
    daily counters (stats) are kept before being pruned. `threads` sizes the store's own pool:
    writes are serialised by SQLite anyway, so a few threads are plenty.
    """

    def __init__(
        self,
        path: Path,
        *,
        policy: SqlitePolicy = DEFAULT_SQLITE,
        keep_days: int = 7,
        threads: int = 4,
    ) -> None:
        if keep_days < 1:
            raise ValueError("keep_days must be >= 1")
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="quota-sqlite")
        self._file = SqliteFile(path, policy, schema=self._create_schema)
        self._keep_days = keep_days

    @property
    def path(self) -> Path:
        return self._file.path

    async def _run(self, call: Callable[[], T]) -> T:
        """Run blocking SQLite work on the store's own threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    # -- connections ---------------------------------------------------------------------------

    def _create_schema(self, connection: sqlite3.Connection) -> None:
        """Create the tables (inside `SqliteFile`'s first write transaction, after the switch to WAL).

        Newer schemas written by newer code are refused rather than misread.
        """
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self._file.path} has quota schema {version}, newer than this code")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction (`SqliteFile.transaction`); SQLite trouble becomes `QuotaStoreUnavailable`.

        Writers use BEGIN IMMEDIATE: the write lock is taken before the first read, which is
        what makes check-then-charge atomic.
        """
        try:
            with self._file.transaction(write=write) as connection:
                yield connection
        except sqlite3.OperationalError as error:  # locked past the busy timeout, disk full, unreadable
            raise QuotaStoreUnavailable(f"sqlite: {error}") from error

    # -- the interface -------------------------------------------------------------------------

    async def try_charge(
        self, user: str, job_id: str, calls: int, now: datetime, policy: QuotaPolicy, admin: bool = False
    ) -> ChargeResult:
        check_charge_args(user, job_id, calls)
        day, _ = quota_day(now, policy)
        return await self._run(
            functools.partial(self._try_charge, user, job_id, calls, now, policy, admin, day)
        )

    def _try_charge(
        self,
        user: str,
        job_id: str,
        calls: int,
        now: datetime,
        policy: QuotaPolicy,
        admin: bool,
        day: date,
    ) -> ChargeResult:
        """Read the facts, let `decide_charge` decide, persist its decision: one write transaction."""
        ts = now.timestamp()
        day_key = day.isoformat()
        with self._transaction(write=True) as db:
            job = self._stored_job(db, job_id, policy)
            if job is None or job.state is JobState.REFUNDED:
                self._prune(db, ts, day)  # a standing grant needs no counters, and keeps its row
            decision = decide_charge(
                job,
                self._stored_counts(db, user, day_key, ts, policy),
                calls=calls,
                now=now,
                policy=policy,
                admin=admin,
            )
            result = decision.result
            if decision.refusal is not None:
                db.execute(
                    "INSERT INTO refusals (day, reason, n) VALUES (?, ?, 1)"
                    " ON CONFLICT (day, reason) DO UPDATE SET n = n + 1",
                    (day_key, decision.refusal.value),
                )
            elif decision.charge:
                self._persist_charge(db, user, job_id, calls, ts, policy, day_key, result)
            return result

    @staticmethod
    def _stored_job(db: sqlite3.Connection, job_id: str, policy: QuotaPolicy) -> StoredJob | None:
        row = db.execute(
            "SELECT remaining, day_limit, resets_at, state FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
        if row is None:
            return None
        return StoredJob(
            state=JobState(row[3]),
            remaining=row[0],
            limit=row[1],
            resets_at=datetime.fromtimestamp(row[2], policy.zone),
        )

    @staticmethod
    def _stored_counts(
        db: sqlite3.Connection, user: str, day_key: str, ts: float, policy: QuotaPolicy
    ) -> StoredCounts:
        blocked = db.execute("SELECT 1 FROM blocked WHERE user_id = ?", (user,)).fetchone() is not None
        row = db.execute(
            "SELECT used, extra FROM daily WHERE user_id = ? AND day = ?", (user, day_key)
        ).fetchone()
        used, extra = (row[0], row[1]) if row is not None else (0, 0)
        row = db.execute("SELECT calls FROM totals WHERE day = ?", (day_key,)).fetchone()
        global_calls = row[0] if row is not None else 0
        active, first_lease_end = db.execute(
            "SELECT COUNT(*), MIN(lease_until) FROM jobs"
            " WHERE user_id = ? AND state = 'active' AND lease_until > ?",
            (user, ts),
        ).fetchone()
        # The window holds grants that `counts_in_burst_window`: every state but refunded.
        recent, first_recent = db.execute(
            "SELECT COUNT(*), MIN(charged_at) FROM jobs"
            " WHERE user_id = ? AND charged_at > ? AND state != 'refunded'",
            (user, ts - policy.burst_window_s),
        ).fetchone()
        return StoredCounts(
            blocked=blocked,
            used=used,
            extra=extra,
            global_calls=global_calls,
            active=active,
            first_lease_end=first_lease_end,
            recent=recent,
            first_recent=first_recent,
        )

    @staticmethod
    def _persist_charge(
        db: sqlite3.Connection,
        user: str,
        job_id: str,
        calls: int,
        ts: float,
        policy: QuotaPolicy,
        day_key: str,
        result: ChargeResult,
    ) -> None:
        """Write a new grant: the job (replacing a refunded row), the user's day and the day's totals."""
        db.execute(
            "INSERT OR REPLACE INTO jobs (job_id, user_id, day, calls, charged_at, lease_until, state,"
            " remaining, day_limit, resets_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                user,
                day_key,
                calls,
                ts,
                ts + policy.max_job_s,
                JobState.ACTIVE.value,
                result.remaining,
                result.limit,
                result.resets_at.timestamp(),
            ),
        )
        db.execute(
            "INSERT INTO daily (user_id, day, used) VALUES (?, ?, 1)"
            " ON CONFLICT (user_id, day) DO UPDATE SET used = used + 1",
            (user, day_key),
        )
        db.execute(
            "INSERT INTO totals (day, calls, charged) VALUES (?, ?, 1)"
            " ON CONFLICT (day) DO UPDATE SET calls = calls + excluded.calls, charged = charged + 1",
            (day_key, calls),
        )

    def _prune(self, db: sqlite3.Connection, ts: float, day: date) -> None:
        """Forget jobs and counters older than `keep_days`, so the file does not grow forever."""
        db.execute("DELETE FROM jobs WHERE charged_at < ?", (ts - self._keep_days * 86400,))
        cutoff = (day - timedelta(days=self._keep_days)).isoformat()
        for table in ("daily", "totals", "refusals"):
            db.execute(f"DELETE FROM {table} WHERE day < ?", (cutoff,))  # noqa: S608 (fixed names)

    async def finish(self, job_id: str, refund: bool) -> bool:
        return await self._run(functools.partial(self._finish, job_id, refund))

    def _finish(self, job_id: str, refund: bool) -> bool:
        with self._transaction(write=True) as db:
            row = db.execute(
                "SELECT user_id, day, calls, state FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            new_state = settle(JobState(row[3]) if row is not None else None, refund=refund)
            if row is None or new_state is None:
                return False
            user, day_key, calls, _ = row
            db.execute("UPDATE jobs SET state = ? WHERE job_id = ?", (new_state.value, job_id))
            if new_state is JobState.REFUNDED:
                db.execute(
                    "UPDATE daily SET used = MAX(0, used - 1) WHERE user_id = ? AND day = ?", (user, day_key)
                )
                db.execute(
                    "UPDATE totals SET calls = MAX(0, calls - ?), refunded = refunded + 1 WHERE day = ?",
                    (calls, day_key),
                )
            return True

    async def usage(self, user: str, now: datetime, policy: QuotaPolicy) -> Usage:
        day, resets_at = quota_day(now, policy)
        return await self._run(functools.partial(self._usage, user, now.timestamp(), policy, day, resets_at))

    def _usage(self, user: str, ts: float, policy: QuotaPolicy, day: date, resets_at: datetime) -> Usage:
        with self._transaction(write=False) as db:
            return self._usage_in(db, user, ts, policy, day, resets_at)

    @staticmethod
    def _usage_in(
        db: sqlite3.Connection, user: str, ts: float, policy: QuotaPolicy, day: date, resets_at: datetime
    ) -> Usage:
        row = db.execute(
            "SELECT used, extra FROM daily WHERE user_id = ? AND day = ?", (user, day.isoformat())
        ).fetchone()
        used, extra = (row[0], row[1]) if row is not None else (0, 0)
        blocked = db.execute("SELECT 1 FROM blocked WHERE user_id = ?", (user,)).fetchone() is not None
        active = db.execute(
            "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state = 'active' AND lease_until > ?", (user, ts)
        ).fetchone()[0]
        return Usage.from_counts(
            user, day, resets_at, policy, used=used, extra=extra, blocked=blocked, active_jobs=active
        )

    async def grant(self, user: str, extra: int, now: datetime, policy: QuotaPolicy) -> Usage:
        if extra <= 0:
            raise ValueError("extra must be > 0")
        if not user:
            raise ValueError("user must not be empty")
        day, resets_at = quota_day(now, policy)
        return await self._run(
            functools.partial(self._grant, user, extra, now.timestamp(), policy, day, resets_at)
        )

    def _grant(
        self, user: str, extra: int, ts: float, policy: QuotaPolicy, day: date, resets_at: datetime
    ) -> Usage:
        with self._transaction(write=True) as db:
            db.execute(
                "INSERT INTO daily (user_id, day, extra) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, day) DO UPDATE SET extra = extra + excluded.extra",
                (user, day.isoformat(), extra),
            )
            return self._usage_in(db, user, ts, policy, day, resets_at)

    async def block(self, user: str) -> bool:
        if not user:
            raise ValueError("user must not be empty")
        return await self._run(functools.partial(self._set_blocked, user, True))

    async def unblock(self, user: str) -> bool:
        return await self._run(functools.partial(self._set_blocked, user, False))

    def _set_blocked(self, user: str, blocked: bool) -> bool:
        with self._transaction(write=True) as db:
            if blocked:
                cursor = db.execute("INSERT OR IGNORE INTO blocked (user_id) VALUES (?)", (user,))
            else:
                cursor = db.execute("DELETE FROM blocked WHERE user_id = ?", (user,))
            return cursor.rowcount > 0

    async def stats(self, now: datetime, policy: QuotaPolicy, top: int = 10) -> Stats:
        require_aware(now)
        day, _ = quota_day(now, policy)
        return await self._run(functools.partial(self._stats, day, policy, top))

    def _stats(self, day: date, policy: QuotaPolicy, top: int) -> Stats:
        day_key = day.isoformat()
        with self._transaction(write=False) as db:
            row = db.execute(
                "SELECT calls, charged, refunded FROM totals WHERE day = ?", (day_key,)
            ).fetchone()
            calls, charged, refunded = row if row is not None else (0, 0, 0)
            refusals = dict.fromkeys(Refusal, 0)
            for reason, n in db.execute("SELECT reason, n FROM refusals WHERE day = ?", (day_key,)):
                refusals[Refusal(reason)] = n
            top_users = tuple(
                UserCount(user, used)
                for user, used in db.execute(
                    "SELECT user_id, used FROM daily WHERE day = ? AND used > 0"
                    " ORDER BY used DESC, user_id LIMIT ?",
                    (day_key, max(0, top)),
                )
            )
        return Stats(
            day=day,
            charged=charged,
            refunded=refunded,
            refusals=refusals,
            global_calls=calls,
            global_cap=policy.global_daily_calls,
            top_users=top_users,
        )

    async def close(self) -> None:
        """Stop the store's threads (connections live only as long as one call, nothing else to close)."""
        await asyncio.to_thread(self._executor.shutdown, True)
