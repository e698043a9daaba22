"""The default job queue: one SQLite file in the data directory, shared safely by threads and processes.

Every state change is one `BEGIN IMMEDIATE` transaction, which takes SQLite's single write lock
before reading anything: two processes claiming at once are serialised, so a job is never leased
twice, and "is this key known? then insert" cannot race. WAL mode lets readers (`stats`,
`position`) run beside a writer; the busy timeout makes writers wait for each other instead of
failing; `synchronous=FULL` makes each commit durable before the call returns, so a job that
`enqueue` acknowledged survives kill -9 and power loss. The connection is opened the way every
store's is (`bot.storage.sqlite.SqliteFile`: the WAL switch retried on SQLITE_BUSY, the busy timeout
of the deployment's policy, the schema and its migration run once), with FULL instead of the
policy's NORMAL.

The stdlib `sqlite3` module blocks, so all calls run on one dedicated thread per queue object that
owns the only connection, kept open for the queue's life rather than opened per call (a claim or an
ack is one short transaction; opening a connection would cost more than it): the connection is
never touched by two threads, and calls from one process are applied in the order they were made.
A call whose awaiting task is cancelled still runs to completion on that thread (a thread cannot be
interrupted); a lease claimed that way is simply never used and expires after its visibility timeout.

Time is the caller's `now` (UNIX seconds) for everything, so processes sharing the file must share
a clock, which they do on one host.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from bot.queue.base import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETENTION_S,
    DEFAULT_RETRY_BACKOFF_S,
    EXPIRED_ERROR,
    JobNotFound,
    QueueClosed,
    QueueUnavailable,
    check_enqueue_args,
    check_limit,
    check_now,
    check_settings,
    check_visibility_timeout,
    check_worker_id,
    clip_delay,
    clip_error,
    new_job_id,
    new_token,
    retry_delay_s,
)
from bot.queue.models import DeadLetter, EnqueueResult, FailOutcome, Lease, QueueStats
from bot.storage.sqlite import DEFAULT_SQLITE, SqliteFile, SqlitePolicy, begin

T = TypeVar("T")

SCHEMA_VERSION = 4

# Table names carry a `queue_` prefix so the queue may share a database file with other stores.
SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS queue_jobs (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id          TEXT NOT NULL UNIQUE,
        idempotency_key TEXT NOT NULL UNIQUE,
        user_id         TEXT NOT NULL,
        payload         TEXT NOT NULL,
        created_at      REAL NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('queued', 'leased', 'done', 'dead')),
        available_at    REAL NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        lease_token     TEXT,
        lease_worker    TEXT,
        lease_deadline  REAL,
        reply_started   INTEGER NOT NULL DEFAULT 0,
        reply_sent      INTEGER NOT NULL DEFAULT 0,
        reply_started_at REAL,
        last_error      TEXT,
        finished_at     REAL,
        exhausted       INTEGER NOT NULL DEFAULT 0,
        answer          TEXT,
        answer_since    REAL,
        delivery_tries  INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX IF NOT EXISTS queue_jobs_by_state ON queue_jobs (state, seq)",
    """
    CREATE INDEX IF NOT EXISTS queue_jobs_finished ON queue_jobs (finished_at)
        WHERE state IN ('done', 'dead')
    """,
    """
    CREATE TABLE IF NOT EXISTS queue_counters (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
)

# Columns added after version 1, with their definitions, for files created by an older version.
# The statement after each fills it in for the rows already there.
_ADDED_COLUMNS: dict[str, tuple[str, str | None]] = {
    "exhausted": ("INTEGER NOT NULL DEFAULT 0", None),
    # Before version 3 a started reply counted as sent (at most once); keep that for old rows.
    "reply_sent": (
        "INTEGER NOT NULL DEFAULT 0",
        "UPDATE queue_jobs SET reply_sent = 1 WHERE reply_started > 0",
    ),
    "reply_started_at": ("REAL", None),
    "answer": ("TEXT", None),
    "answer_since": ("REAL", None),
    "delivery_tries": ("INTEGER NOT NULL DEFAULT 0", None),
}

# The oldest claimable rows of each kind; `claim` takes the older of the two.
_CLAIMABLE = (
    "SELECT seq, job_id, idempotency_key, user_id, payload, created_at, state, attempts,"
    " reply_sent, exhausted, answer, answer_since, delivery_tries FROM queue_jobs"
)
_NEXT_QUEUED = _CLAIMABLE + " WHERE state = 'queued' AND available_at <= ? ORDER BY seq LIMIT 1"
_NEXT_EXPIRED = _CLAIMABLE + " WHERE state = 'leased' AND lease_deadline <= ? ORDER BY seq LIMIT 1"
_DEAD_LETTERS = """
    SELECT job_id, idempotency_key, user_id, payload, created_at, attempts, last_error, finished_at
    FROM queue_jobs WHERE state = 'dead' ORDER BY finished_at DESC, seq DESC LIMIT ?
"""


class SqliteJobQueue:
    """`JobQueue` on a SQLite file (see the module docstring for the concurrency design).

    `path` is the database file, created with its directory if missing (the application passes
    `<data_dir>/queue.sqlite3`). `policy` is the deployment's SQLite policy (`bot.wiring`
    passes `SQLITE_POLICY`): `busy_timeout_s` is how long a call waits for another process's
    lock before `QueueUnavailable`. `retention_s` is how long finished (done or dead) jobs are
    kept, which is how long their idempotency keys and reply markers keep working.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        policy: SqlitePolicy = DEFAULT_SQLITE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_backoff_s: float = DEFAULT_RETRY_BACKOFF_S,
        retention_s: float = DEFAULT_RETENTION_S,
    ) -> None:
        check_settings(max_attempts, retry_backoff_s, retention_s)
        # An accepted job must survive power loss, not only a crash: every commit synced (FULL).
        self._file = SqliteFile(
            Path(path), replace(policy, synchronous="FULL"), schema=_create_schema, row_factory=sqlite3.Row
        )
        self.path = self._file.path
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self.retention_s = retention_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue-sqlite")
        self._conn: sqlite3.Connection | None = None  # touched only on the executor's thread
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------------

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run `operation` with the connection on the queue's own thread."""
        if self._closed:
            raise QueueClosed("the job queue is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, operation)

    def _call(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._conn is None:  # the one connection, kept until close()
                self._conn = self._file.connect()
            return operation(self._conn)
        except sqlite3.OperationalError as error:  # locked past the busy timeout, disk full, unreadable
            raise QueueUnavailable(f"sqlite queue {self.path}: {error}") from error

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=True)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- producing --------------------------------------------------------------------------

    async def enqueue(
        self, idempotency_key: str, user: str, payload: dict[str, Any], now: float
    ) -> EnqueueResult:
        check_enqueue_args(idempotency_key, user, now)
        encoded = json.dumps(payload, ensure_ascii=False, allow_nan=False)
        job_id = new_job_id()

        def operation(conn: sqlite3.Connection) -> EnqueueResult:
            with begin(conn, write=True):
                row = conn.execute(
                    "SELECT job_id, seq, state FROM queue_jobs WHERE idempotency_key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row is not None:
                    ahead = _ahead(conn, row[1]) if row[2] == "queued" else 0
                    return EnqueueResult(row[0], created=False, ahead=ahead)
                conn.execute(
                    "DELETE FROM queue_jobs WHERE state IN ('done', 'dead') AND finished_at < ?",
                    (now - self.retention_s,),
                )
                cursor = conn.execute(
                    "INSERT INTO queue_jobs (job_id, idempotency_key, user_id, payload, created_at,"
                    " state, available_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                    (job_id, idempotency_key, user, encoded, now, now),
                )
                seq = cursor.lastrowid
                assert seq is not None
                return EnqueueResult(job_id, created=True, ahead=_ahead(conn, seq))

        return await self._run(operation)

    # -- consuming --------------------------------------------------------------------------

    async def claim(self, worker_id: str, now: float, visibility_timeout_s: float) -> Lease | None:
        check_worker_id(worker_id)
        check_now(now)
        check_visibility_timeout(visibility_timeout_s)

        def operation(conn: sqlite3.Connection) -> Lease | None:
            with begin(conn, write=True):
                while True:
                    candidates = [
                        conn.execute(_NEXT_QUEUED, (now,)).fetchone(),
                        conn.execute(_NEXT_EXPIRED, (now,)).fetchone(),
                    ]
                    found = [row for row in candidates if row is not None]
                    if not found:
                        return None
                    row = min(found, key=lambda r: int(r["seq"]))
                    exhausted = bool(row["exhausted"])
                    answer = row["answer"]
                    # An expired lease; one whose answer went out only needs completing, one
                    # holding its answer only delivering: neither is exhausted by expiry.
                    if row["state"] == "leased" and not row["reply_sent"] and answer is None:
                        if exhausted:  # its final hand-out died too: give up without another
                            self._bury(conn, row["seq"], EXPIRED_ERROR % row["attempts"], now)
                            continue
                        exhausted = row["attempts"] >= self.max_attempts
                    token = new_token()
                    attempt = int(row["attempts"]) + 1
                    deadline = now + visibility_timeout_s
                    conn.execute(
                        "UPDATE queue_jobs SET state = 'leased', attempts = ?, lease_token = ?,"
                        " lease_worker = ?, lease_deadline = ?, exhausted = ? WHERE seq = ?",
                        (attempt, token, worker_id, deadline, int(exhausted), row["seq"]),
                    )
                    return Lease(
                        job_id=row["job_id"],
                        idempotency_key=row["idempotency_key"],
                        user=row["user_id"],
                        payload=_decode_payload(row["payload"]),
                        created_at=float(row["created_at"]),
                        attempt=attempt,
                        token=token,
                        worker_id=worker_id,
                        deadline=deadline,
                        exhausted=exhausted and answer is None,
                        final=attempt >= self.max_attempts,
                        answer=answer,
                        answer_since=None if row["answer_since"] is None else float(row["answer_since"]),
                        delivery_tries=int(row["delivery_tries"]),
                    )

        return await self._run(operation)

    async def extend(self, lease: Lease, now: float, visibility_timeout_s: float) -> Lease | None:
        check_now(now)
        check_visibility_timeout(visibility_timeout_s)
        deadline = now + visibility_timeout_s

        def operation(conn: sqlite3.Connection) -> bool:
            with begin(conn, write=True):
                cursor = conn.execute(
                    "UPDATE queue_jobs SET lease_deadline = ?"
                    " WHERE job_id = ? AND state = 'leased' AND lease_token = ?",
                    (deadline, lease.job_id, lease.token),
                )
                return cursor.rowcount == 1

        return replace(lease, deadline=deadline) if await self._run(operation) else None

    async def complete(self, lease: Lease, now: float | None = None) -> bool:
        finished_at = time.time() if now is None else now
        check_now(finished_at)

        def operation(conn: sqlite3.Connection) -> bool:
            with begin(conn, write=True):
                row = conn.execute(
                    "SELECT state, lease_token FROM queue_jobs WHERE job_id = ?", (lease.job_id,)
                ).fetchone()
                if row is None or row["lease_token"] != lease.token:
                    return False
                if row["state"] == "done":  # the same lease completing again: already done
                    return True
                if row["state"] != "leased":
                    return False
                conn.execute(
                    "UPDATE queue_jobs SET state = 'done', finished_at = ?, lease_deadline = NULL,"
                    " answer = NULL WHERE job_id = ?",
                    (finished_at, lease.job_id),
                )
                _count(conn, "done")
                return True

        return await self._run(operation)

    async def fail(self, lease: Lease, error: str, now: float, retryable: bool) -> FailOutcome:
        check_now(now)
        error = clip_error(error)

        def operation(conn: sqlite3.Connection) -> FailOutcome:
            with begin(conn, write=True):
                row = conn.execute(
                    "SELECT seq, attempts FROM queue_jobs"
                    " WHERE job_id = ? AND state = 'leased' AND lease_token = ?",
                    (lease.job_id, lease.token),
                ).fetchone()
                if row is None:
                    return FailOutcome.LEASE_LOST
                attempts = int(row["attempts"])
                if retryable and attempts < self.max_attempts:
                    conn.execute(
                        "UPDATE queue_jobs SET state = 'queued', available_at = ?, last_error = ?,"
                        " lease_token = NULL, lease_worker = NULL, lease_deadline = NULL WHERE seq = ?",
                        (now + retry_delay_s(attempts, self.retry_backoff_s), error, row["seq"]),
                    )
                    return FailOutcome.RETRY
                self._bury(conn, row["seq"], error, now)
                return FailOutcome.DEAD

        return await self._run(operation)

    async def defer(
        self, lease: Lease, answer: str | None, error: str, now: float, delay_s: float
    ) -> FailOutcome:
        check_now(now)
        error = clip_error(error)
        available_at = now + clip_delay(delay_s)

        def operation(conn: sqlite3.Connection) -> FailOutcome:
            with begin(conn, write=True):
                cursor = conn.execute(
                    "UPDATE queue_jobs SET state = 'queued', available_at = ?, last_error = ?,"
                    " attempts = attempts - 1, answer = COALESCE(?, answer),"
                    " answer_since = COALESCE(answer_since, ?), delivery_tries = delivery_tries + 1,"
                    " reply_started = 0, reply_started_at = NULL,"
                    " lease_token = NULL, lease_worker = NULL, lease_deadline = NULL"
                    " WHERE job_id = ? AND state = 'leased' AND lease_token = ?",
                    (available_at, error, answer, now, lease.job_id, lease.token),
                )
                return FailOutcome.RETRY if cursor.rowcount == 1 else FailOutcome.LEASE_LOST

        return await self._run(operation)

    async def release(self, lease: Lease) -> bool:
        def operation(conn: sqlite3.Connection) -> bool:
            with begin(conn, write=True):
                cursor = conn.execute(
                    "UPDATE queue_jobs SET state = 'queued', attempts = attempts - 1,"
                    " lease_token = NULL, lease_worker = NULL, lease_deadline = NULL"
                    " WHERE job_id = ? AND state = 'leased' AND lease_token = ?",
                    (lease.job_id, lease.token),
                )
                return cursor.rowcount == 1

        return await self._run(operation)

    @staticmethod
    def _bury(conn: sqlite3.Connection, seq: int, error: str, now: float) -> None:
        """Turn a job into a dead letter (inside the caller's transaction).

        One whose user was already told counts as apologised (see `QueueStats`).
        """
        conn.execute(
            "UPDATE queue_jobs SET state = 'dead', last_error = ?, finished_at = ?, answer = NULL,"
            " lease_token = NULL, lease_worker = NULL, lease_deadline = NULL WHERE seq = ?",
            (error, now, seq),
        )
        told = conn.execute("SELECT reply_sent FROM queue_jobs WHERE seq = ?", (seq,)).fetchone()
        if told is not None and told[0]:
            _count(conn, "apologised")

    # -- reply bookkeeping ------------------------------------------------------------------

    async def mark_reply_started(
        self, job_id: str, attempt: int, now: float | None = None, takeover_after_s: float = 0.0
    ) -> bool:
        at = time.time() if now is None else now

        def operation(conn: sqlite3.Connection) -> bool:
            with begin(conn, write=True):
                cursor = conn.execute(
                    "UPDATE queue_jobs SET reply_started = ?, reply_started_at = ?"
                    " WHERE job_id = ? AND reply_sent = 0 AND (reply_started = 0"
                    " OR (reply_started < ? AND COALESCE(reply_started_at, 0) <= ?))",
                    (attempt, at, job_id, attempt, at - takeover_after_s),
                )
                if cursor.rowcount == 1:
                    return True
                if conn.execute("SELECT 1 FROM queue_jobs WHERE job_id = ?", (job_id,)).fetchone() is None:
                    raise JobNotFound(job_id)
                return False

        return await self._run(operation)

    async def mark_reply_sent(self, job_id: str) -> None:
        def operation(conn: sqlite3.Connection) -> None:
            with begin(conn, write=True):
                row = conn.execute(
                    "SELECT state, reply_sent FROM queue_jobs WHERE job_id = ?", (job_id,)
                ).fetchone()
                if row is None:
                    raise JobNotFound(job_id)
                if row["reply_sent"]:
                    return
                conn.execute("UPDATE queue_jobs SET reply_sent = 1 WHERE job_id = ?", (job_id,))
                if row["state"] == "dead":  # the failure notice of a dead letter went out
                    _count(conn, "apologised")

        await self._run(operation)

    async def reply_started(self, job_id: str) -> bool:
        return await self._flag("SELECT reply_started FROM queue_jobs WHERE job_id = ?", job_id)

    async def reply_sent(self, job_id: str) -> bool:
        return await self._flag("SELECT reply_sent FROM queue_jobs WHERE job_id = ?", job_id)

    async def _flag(self, query: str, job_id: str) -> bool:
        def operation(conn: sqlite3.Connection) -> bool:
            row = conn.execute(query, (job_id,)).fetchone()
            return row is not None and bool(row[0])

        return await self._run(operation)

    # -- observing --------------------------------------------------------------------------

    async def position(self, job_id: str) -> int | None:
        def operation(conn: sqlite3.Connection) -> int | None:
            row = conn.execute("SELECT seq, state FROM queue_jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None or row[1] != "queued":
                return None
            return _ahead(conn, row[0])

        return await self._run(operation)

    async def stats(self, now: float) -> QueueStats:
        check_now(now)

        def operation(conn: sqlite3.Connection) -> QueueStats:
            # One read transaction, so the counts come from one snapshot of the WAL.
            with begin(conn, write=False):
                counts = {
                    str(row[0]): int(row[1])
                    for row in conn.execute("SELECT state, COUNT(*) FROM queue_jobs GROUP BY state")
                }
                oldest = conn.execute(
                    "SELECT MIN(created_at) FROM queue_jobs WHERE state = 'queued'"
                ).fetchone()[0]
                counters = {
                    str(row[0]): int(row[1]) for row in conn.execute("SELECT name, value FROM queue_counters")
                }
                delivering = conn.execute(
                    "SELECT COUNT(*) FROM queue_jobs"
                    " WHERE state IN ('queued', 'leased') AND answer IS NOT NULL"
                ).fetchone()[0]
            return QueueStats(
                queued=int(counts.get("queued", 0)),
                in_flight=int(counts.get("leased", 0)),
                dead=int(counts.get("dead", 0)),
                done=counters.get("done", 0),
                oldest_queued_age_s=None if oldest is None else max(0.0, now - float(oldest)),
                delivering=int(delivering),
                apologised=counters.get("apologised", 0),
            )

        return await self._run(operation)

    async def dead_letters(self, limit: int = 20) -> list[DeadLetter]:
        check_limit(limit)

        def operation(conn: sqlite3.Connection) -> list[DeadLetter]:
            rows = conn.execute(_DEAD_LETTERS, (limit,)).fetchall()
            return [
                DeadLetter(
                    job_id=row["job_id"],
                    idempotency_key=row["idempotency_key"],
                    user=row["user_id"],
                    error=row["last_error"] or "",
                    attempts=int(row["attempts"]),
                    payload=_decode_payload(row["payload"]),
                    created_at=float(row["created_at"]),
                    died_at=float(row["finished_at"]),
                )
                for row in rows
            ]

        return await self._run(operation)


def _create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables, or bring an older file up to date (`SqliteFile`'s schema callback).

    It runs once per queue object, inside the first write transaction after the switch to WAL,
    so processes opening a new file together create the tables one after the other.
    """
    for statement in SCHEMA:
        conn.execute(statement)
    _add_missing_columns(conn)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _count(conn: sqlite3.Connection, name: str) -> None:
    """Add one to a total-ever counter (inside the caller's transaction)."""
    conn.execute(
        "INSERT INTO queue_counters (name, value) VALUES (?, 1)"
        " ON CONFLICT (name) DO UPDATE SET value = value + 1",
        (name,),
    )


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a file made by an older version up to date (inside the caller's transaction).

    Added columns have defaults, so an older process still writing to the file keeps working.
    """
    present = {str(row[1]) for row in conn.execute("PRAGMA table_info(queue_jobs)")}
    for name, (definition, fill) in _ADDED_COLUMNS.items():
        if name not in present:
            conn.execute(f"ALTER TABLE queue_jobs ADD COLUMN {name} {definition}")
            if fill is not None:
                conn.execute(fill)


def _ahead(conn: sqlite3.Connection, seq: int) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM queue_jobs WHERE state = 'queued' AND seq < ?", (seq,)
    ).fetchone()
    return int(row[0])


def _decode_payload(text: str) -> dict[str, Any]:
    payload = json.loads(text)
    if not isinstance(payload, dict):  # only possible if someone edited the file by hand
        raise QueueUnavailable(f"corrupt payload in the queue: {text[:80]!r}")
    return payload
