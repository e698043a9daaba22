"""The web state in one SQLite file (WAL) in the data folder, for a single-host deployment.

The file is reached through `bot.storage.SqliteFile`, like every other store's: WAL switched on
even while another process holds the file, a busy timeout (`bot.wiring.SQLITE_POLICY`), and
`BEGIN IMMEDIATE` for writes, so a read-decide-write (an upload slot, a counter) never acts on a
stale read. Each call runs in a worker thread on a connection of its own, one at a time per
process (`_lock`); other processes on the host (a second replica, `photodetective web user ...`)
queue behind SQLite's lock.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from adapters.web.store import BlobKind, SessionRecord, WebResult, token_digest
from bot.storage import DEFAULT_SQLITE, SqliteFile, SqlitePolicy

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY, account TEXT NOT NULL, created_at REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS results_account ON results (account, created_at);
CREATE INDEX IF NOT EXISTS results_created ON results (created_at);
CREATE TABLE IF NOT EXISTS blobs (
    result_id TEXT NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (result_id, kind));
CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS signins (digest TEXT PRIMARY KEY, account TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY, account TEXT NOT NULL, account_since REAL NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account);
CREATE TABLE IF NOT EXISTS waiting (result_id TEXT PRIMARY KEY, request TEXT NOT NULL, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT NOT NULL, day TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (key, day));
CREATE TABLE IF NOT EXISTS slots (
    key TEXT NOT NULL, token TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (key, token));
"""


def _create_tables(db: sqlite3.Connection) -> None:
    """The schema, statement by statement (`executescript` would commit the caller's transaction)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


SECRET_FILE = "web-session-secret"  # noqa: S105 (a file name, not a secret)


class SQLiteWebStore:
    """The web state in one SQLite file (WAL) in the data folder; short connections in a thread."""

    def __init__(self, data_dir: Path, policy: SqlitePolicy = DEFAULT_SQLITE) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "web.sqlite3"
        self.file = SqliteFile(self.path, policy, schema=_create_tables)
        self._lock = asyncio.Lock()

    async def _run(self, function: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        def work() -> T:
            with self.file.transaction(write=write) as db:
                db.execute("PRAGMA secure_delete = ON")  # a deleted photo's bytes are overwritten
                return function(db)

        async with self._lock:
            return await asyncio.to_thread(work)

    async def _execute(self, sql: str, *params: object) -> int:
        """One statement in its own transaction; how many rows it changed."""
        return await self._run(lambda db: db.execute(sql, params).rowcount)

    async def _row(self, sql: str, *params: object) -> Any:
        return await self._run(lambda db: db.execute(sql, params).fetchone(), write=False)

    async def _rows(self, sql: str, *params: object) -> list[Any]:
        return await self._run(lambda db: db.execute(sql, params).fetchall(), write=False)

    async def add_result(self, result: WebResult) -> None:
        await self._execute(
            "INSERT INTO results (id, account, created_at, data) VALUES (?, ?, ?, ?)",
            *(result.id, result.account, result.created_at, json.dumps(result.to_json())),
        )

    async def result(self, result_id: str) -> WebResult | None:
        row = await self._row("SELECT data FROM results WHERE id = ?", result_id)
        return None if row is None else WebResult.from_json(json.loads(row[0]))

    async def results_of(self, account: str) -> list[WebResult]:
        rows = await self._rows(
            "SELECT data FROM results WHERE account = ? ORDER BY created_at DESC", account
        )
        return [WebResult.from_json(json.loads(row[0])) for row in rows]

    async def update(self, result: WebResult) -> None:
        await self._execute(
            "UPDATE results SET data = ? WHERE id = ?", json.dumps(result.to_json()), result.id
        )

    @staticmethod
    def _delete(db: sqlite3.Connection, ids: list[str]) -> None:
        for result_id in ids:
            db.execute("DELETE FROM blobs WHERE result_id = ?", (result_id,))
            db.execute("DELETE FROM waiting WHERE result_id = ?", (result_id,))
            db.execute("DELETE FROM results WHERE id = ?", (result_id,))

    async def delete_result(self, result_id: str) -> None:
        await self._run(lambda db: self._delete(db, [result_id]))

    async def put_blob(self, result_id: str, kind: BlobKind, data: bytes) -> None:
        await self._execute(
            "INSERT OR REPLACE INTO blobs (result_id, kind, data) VALUES (?, ?, ?)", result_id, kind, data
        )

    async def blob(self, result_id: str, kind: BlobKind) -> bytes | None:
        row = await self._row("SELECT data FROM blobs WHERE result_id = ? AND kind = ?", result_id, kind)
        return None if row is None else bytes(row[0])

    async def delete_blob(self, result_id: str, kind: BlobKind) -> None:
        await self._execute("DELETE FROM blobs WHERE result_id = ? AND kind = ?", result_id, kind)

    async def sweep(self, older_than: float) -> int:
        def work(db: sqlite3.Connection) -> int:
            ids = [
                str(row[0])
                for row in db.execute("SELECT id FROM results WHERE created_at < ?", (older_than,))
            ]
            self._delete(db, ids)
            db.execute("DELETE FROM signins WHERE expires_at < ?", (older_than,))
            db.execute("DELETE FROM slots WHERE expires_at < ?", (older_than,))
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (older_than,))
            return len(ids)

        return await self._run(work)

    async def add_account(self, name: str, now: float) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT OR IGNORE INTO accounts (name, created_at) VALUES (?, ?)", (name, now)
            )
            return cursor.rowcount > 0

        return await self._run(work)

    async def remove_account(self, name: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            ids = [str(r[0]) for r in db.execute("SELECT id FROM results WHERE account = ?", (name,))]
            self._delete(db, ids)
            db.execute("DELETE FROM signins WHERE account = ?", (name,))
            db.execute("DELETE FROM sessions WHERE account = ?", (name,))
            return db.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount > 0

        return await self._run(work)

    async def accounts(self) -> list[str]:
        rows = await self._rows("SELECT name FROM accounts ORDER BY name")
        return [str(row[0]) for row in rows]

    async def has_account(self, name: str) -> bool:
        row = await self._row("SELECT 1 FROM accounts WHERE name = ?", name)
        return row is not None

    async def account_created(self, name: str) -> float | None:
        row = await self._row("SELECT created_at FROM accounts WHERE name = ?", name)
        return None if row is None else float(row[0])

    async def add_signin(self, token: str, account: str, expires_at: float) -> None:
        await self._execute(
            "INSERT INTO signins (digest, account, expires_at) VALUES (?, ?, ?)",
            *(token_digest(token), account, expires_at),
        )

    async def take_signin(self, token: str, now: float) -> str | None:
        def work(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "DELETE FROM signins WHERE digest = ? RETURNING account, expires_at", (token_digest(token),)
            ).fetchone()
            if row is None or float(row[1]) < now:
                return None
            return str(row[0])

        return await self._run(work)

    async def add_session(self, sid: str, record: SessionRecord) -> None:
        await self._execute(
            "INSERT INTO sessions (digest, account, account_since, expires_at) VALUES (?, ?, ?, ?)",
            *(token_digest(sid), record.account, record.account_since, record.expires_at),
        )

    async def session(self, sid: str, now: float) -> SessionRecord | None:
        row = await self._row(
            "SELECT account, account_since, expires_at FROM sessions WHERE digest = ? AND expires_at >= ?",
            *(token_digest(sid), now),
        )
        return None if row is None else SessionRecord(str(row[0]), float(row[1]), float(row[2]))

    async def end_session(self, sid: str) -> None:
        await self._execute("DELETE FROM sessions WHERE digest = ?", token_digest(sid))

    async def end_sessions(self, account: str, keep: str | None = None) -> int:
        kept = token_digest(keep) if keep is not None else ""
        return await self._execute("DELETE FROM sessions WHERE account = ? AND digest <> ?", account, kept)

    async def add_waiting(self, result_id: str, request: str, since: float) -> None:
        await self._execute(
            "INSERT OR REPLACE INTO waiting (result_id, request, since) VALUES (?, ?, ?)",
            result_id,
            request,
            since,
        )

    async def waiting(self, limit: int) -> list[tuple[str, str]]:
        rows = await self._rows(
            "SELECT result_id, request FROM waiting ORDER BY since, result_id LIMIT ?", limit
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    async def end_waiting(self, result_id: str) -> None:
        await self._execute("DELETE FROM waiting WHERE result_id = ?", result_id)

    async def count(self, key: str, day: str) -> int:
        row = await self._row("SELECT count FROM counters WHERE key = ? AND day = ?", key, day)
        return 0 if row is None else int(row[0])

    async def add_count(self, key: str, day: str, amount: int) -> int:
        def work(db: sqlite3.Connection) -> int:
            db.execute("DELETE FROM counters WHERE key = ? AND day <> ?", (key, day))
            row = db.execute(
                "INSERT INTO counters (key, day, count) VALUES (?, ?, ?) "
                "ON CONFLICT (key, day) DO UPDATE SET count = count + excluded.count RETURNING count",
                (key, day, amount),
            ).fetchone()
            return int(row[0])

        return await self._run(work)

    async def acquire_slot(self, key: str, token: str, limit: int, now: float, lease_s: float) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM slots WHERE key = ? AND expires_at < ?", (key, now))
            (taken,) = db.execute("SELECT COUNT(*) FROM slots WHERE key = ?", (key,)).fetchone()
            if int(taken) >= limit:
                return False
            db.execute(
                "INSERT INTO slots (key, token, expires_at) VALUES (?, ?, ?)", (key, token, now + lease_s)
            )
            return True

        return await self._run(work)

    async def release_slot(self, key: str, token: str) -> None:
        await self._execute("DELETE FROM slots WHERE key = ? AND token = ?", key, token)

    async def session_secret(self) -> bytes:
        """Kept in a file of its own (mode 0600), made with O_EXCL so two processes agree on one."""
        path = self.data_dir / SECRET_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):
                data = path.read_bytes()
                if data:
                    return data
                await asyncio.sleep(0.01)  # another process is writing it this instant
            raise RuntimeError(f"{path} is empty; delete it to make a new session secret") from None
        with os.fdopen(fd, "wb") as out:
            secret = secrets.token_bytes(32)
            out.write(secret)
        return secret

    async def close(self) -> None:
        return None
