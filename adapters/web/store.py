"""Where the web page keeps its state: results and their images, accounts, sign-in links, limits.

A result must survive a restart and be visible to every replica (the upload may land on one, the
worker on another, the next page view on a third), so it lives next to the queue: SQLite files in
the data folder, or Redis when the deployment shares one. Images are stored as blobs beside the
result's row or key, so deleting a result (the button, or the retention sweep) removes everything
in one place.

Both backends implement `WebStore`; `tests/integration/test_web_store.py` runs one set of tests
against both.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import redis.asyncio as aioredis

T = TypeVar("T")

Status = Literal["queued", "analysing", "done", "failed"]
BlobKind = Literal["upload", "annotated", "prepared"]
BLOB_KINDS: tuple[BlobKind, ...] = ("upload", "annotated", "prepared")


@dataclass(frozen=True)
class WebResult:
    """One uploaded photo's page: who owns it, how far it got, and what the analysis said.

    `analysis` is the CLI's JSON document (`bot.analysis_json`), `view` what the page shows beyond
    it (the summary's faces, camera, location and recognizer notes), both JSON text; `error` is
    the friendly failure (code and message) when `status` is "failed".
    """

    id: str
    account: str
    created_at: float
    name: str
    status: Status = "queued"
    analysis: str | None = None
    view: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "created_at": self.created_at,
            "name": self.name,
            "status": self.status,
            "analysis": self.analysis,
            "view": self.view,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebResult:
        return cls(
            id=str(data["id"]),
            account=str(data["account"]),
            created_at=float(data["created_at"]),
            name=str(data.get("name") or "photo"),
            status=data.get("status") or "queued",
            analysis=data.get("analysis"),
            view=data.get("view"),
            error_code=data.get("error_code"),
            error_message=data.get("error_message"),
        )


def new_result_id() -> str:
    """An unguessable id (128 bits): knowing one result's address tells nothing about another's."""
    return secrets.token_urlsafe(16)


def token_digest(token: str) -> str:
    """Sign-in links are stored hashed, so a copy of the store does not hand out sessions."""
    return hashlib.sha256(token.encode()).hexdigest()


class WebStore(Protocol):
    async def add_result(self, result: WebResult) -> None: ...
    async def result(self, result_id: str) -> WebResult | None: ...
    async def results_of(self, account: str) -> list[WebResult]:
        """The account's results, newest first."""
        ...

    async def update(self, result: WebResult) -> None:
        """Store a result's new state; a result deleted meanwhile stays deleted."""
        ...

    async def delete_result(self, result_id: str) -> None: ...
    async def put_blob(self, result_id: str, kind: BlobKind, data: bytes) -> None: ...
    async def blob(self, result_id: str, kind: BlobKind) -> bytes | None: ...
    async def delete_blob(self, result_id: str, kind: BlobKind) -> None: ...
    async def sweep(self, older_than: float) -> int:
        """Delete every result created before `older_than` (epoch seconds); returns how many."""
        ...

    async def add_account(self, name: str, now: float) -> bool: ...
    async def remove_account(self, name: str) -> bool:
        """Forget the account, its sign-in links and its results."""
        ...

    async def accounts(self) -> list[str]: ...
    async def has_account(self, name: str) -> bool: ...
    async def add_signin(self, token: str, account: str, expires_at: float) -> None: ...
    async def take_signin(self, token: str, now: float) -> str | None:
        """The account a one-time link signs in, consuming it; None when unknown, used or expired."""
        ...

    async def count(self, key: str, day: str) -> int: ...
    async def add_count(self, key: str, day: str, amount: int) -> int: ...
    async def acquire_slot(self, key: str, token: str, limit: int, now: float, lease_s: float) -> bool:
        """Take one of `limit` slots for `key` (slots expire after `lease_s`, so a crash frees them)."""
        ...

    async def release_slot(self, key: str, token: str) -> None: ...
    async def session_secret(self) -> bytes:
        """The key signing session cookies, made once and shared by every replica."""
        ...

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY, account TEXT NOT NULL, created_at REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS results_account ON results (account, created_at);
CREATE INDEX IF NOT EXISTS results_created ON results (created_at);
CREATE TABLE IF NOT EXISTS blobs (
    result_id TEXT NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (result_id, kind));
CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS signins (digest TEXT PRIMARY KEY, account TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT NOT NULL, day TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (key, day));
CREATE TABLE IF NOT EXISTS slots (
    key TEXT NOT NULL, token TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (key, token));
"""

SECRET_FILE = "web-session-secret"  # noqa: S105 (a file name, not a secret)


class SQLiteWebStore:
    """The web state in one SQLite file (WAL) in the data folder; short connections in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "web.sqlite3"
        self._lock = asyncio.Lock()
        db = self._connect()
        try:
            db.executescript(_SCHEMA)
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=5.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA secure_delete=ON")
        return db

    async def _run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            db = self._connect()
            try:
                with db:
                    return function(db)
            finally:
                db.close()

        async with self._lock:
            return await asyncio.to_thread(work)

    async def add_result(self, result: WebResult) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO results (id, account, created_at, data) VALUES (?, ?, ?, ?)",
                (result.id, result.account, result.created_at, json.dumps(result.to_json())),
            )
        )

    async def result(self, result_id: str) -> WebResult | None:
        row = await self._run(
            lambda db: db.execute("SELECT data FROM results WHERE id = ?", (result_id,)).fetchone()
        )
        return None if row is None else WebResult.from_json(json.loads(row[0]))

    async def results_of(self, account: str) -> list[WebResult]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT data FROM results WHERE account = ? ORDER BY created_at DESC", (account,)
            ).fetchall()
        )
        return [WebResult.from_json(json.loads(row[0])) for row in rows]

    async def update(self, result: WebResult) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE results SET data = ? WHERE id = ?", (json.dumps(result.to_json()), result.id)
            )
        )

    @staticmethod
    def _delete(db: sqlite3.Connection, ids: list[str]) -> None:
        for result_id in ids:
            db.execute("DELETE FROM blobs WHERE result_id = ?", (result_id,))
            db.execute("DELETE FROM results WHERE id = ?", (result_id,))

    async def delete_result(self, result_id: str) -> None:
        await self._run(lambda db: self._delete(db, [result_id]))

    async def put_blob(self, result_id: str, kind: BlobKind, data: bytes) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO blobs (result_id, kind, data) VALUES (?, ?, ?)",
                (result_id, kind, data),
            )
        )

    async def blob(self, result_id: str, kind: BlobKind) -> bytes | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT data FROM blobs WHERE result_id = ? AND kind = ?", (result_id, kind)
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    async def delete_blob(self, result_id: str, kind: BlobKind) -> None:
        await self._run(
            lambda db: db.execute("DELETE FROM blobs WHERE result_id = ? AND kind = ?", (result_id, kind))
        )

    async def sweep(self, older_than: float) -> int:
        def work(db: sqlite3.Connection) -> int:
            ids = [
                str(row[0])
                for row in db.execute("SELECT id FROM results WHERE created_at < ?", (older_than,))
            ]
            self._delete(db, ids)
            db.execute("DELETE FROM signins WHERE expires_at < ?", (older_than,))
            db.execute("DELETE FROM slots WHERE expires_at < ?", (older_than,))
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
            return db.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount > 0

        return await self._run(work)

    async def accounts(self) -> list[str]:
        rows = await self._run(lambda db: db.execute("SELECT name FROM accounts ORDER BY name").fetchall())
        return [str(row[0]) for row in rows]

    async def has_account(self, name: str) -> bool:
        row = await self._run(
            lambda db: db.execute("SELECT 1 FROM accounts WHERE name = ?", (name,)).fetchone()
        )
        return row is not None

    async def add_signin(self, token: str, account: str, expires_at: float) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO signins (digest, account, expires_at) VALUES (?, ?, ?)",
                (token_digest(token), account, expires_at),
            )
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

    async def count(self, key: str, day: str) -> int:
        row = await self._run(
            lambda db: db.execute(
                "SELECT count FROM counters WHERE key = ? AND day = ?", (key, day)
            ).fetchone()
        )
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
        await self._run(lambda db: db.execute("DELETE FROM slots WHERE key = ? AND token = ?", (key, token)))

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


_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisWebStore:
    """The web state in Redis, shared by every replica; blobs are plain keys next to the result."""

    def __init__(self, url: str, prefix: str = "photodetective:web:") -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(url, socket_timeout=5.0)
        self.prefix = prefix

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def add_result(self, result: WebResult) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self._k("result", result.id), json.dumps(result.to_json()))
            pipe.zadd(self._k("results"), {result.id: result.created_at})
            pipe.zadd(self._k("account-results", result.account), {result.id: result.created_at})
            await pipe.execute()

    async def result(self, result_id: str) -> WebResult | None:
        raw = await self.client.get(self._k("result", result_id))
        return None if raw is None else WebResult.from_json(json.loads(raw))

    async def results_of(self, account: str) -> list[WebResult]:
        ids = await self.client.zrevrange(self._k("account-results", account), 0, -1)
        if not ids:
            return []
        raws = await self.client.mget([self._k("result", i.decode()) for i in ids])
        return [WebResult.from_json(json.loads(raw)) for raw in raws if raw is not None]

    async def update(self, result: WebResult) -> None:
        await self.client.set(self._k("result", result.id), json.dumps(result.to_json()), xx=True)

    async def delete_result(self, result_id: str) -> None:
        found = await self.result(result_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._k("result", result_id), *(self._k("blob", result_id, k) for k in BLOB_KINDS))
            pipe.zrem(self._k("results"), result_id)
            if found is not None:
                pipe.zrem(self._k("account-results", found.account), result_id)
            await pipe.execute()

    async def put_blob(self, result_id: str, kind: BlobKind, data: bytes) -> None:
        await self.client.set(self._k("blob", result_id, kind), data)

    async def blob(self, result_id: str, kind: BlobKind) -> bytes | None:
        raw = await self.client.get(self._k("blob", result_id, kind))
        return None if raw is None else bytes(raw)

    async def delete_blob(self, result_id: str, kind: BlobKind) -> None:
        await self.client.delete(self._k("blob", result_id, kind))

    async def sweep(self, older_than: float) -> int:
        ids = await self.client.zrangebyscore(self._k("results"), "-inf", f"({older_than}")
        for raw in ids:
            await self.delete_result(raw.decode())
        return len(ids)

    async def add_account(self, name: str, now: float) -> bool:
        return bool(await self.client.hsetnx(self._k("accounts"), name, str(now)))

    async def remove_account(self, name: str) -> bool:
        for result in await self.results_of(name):
            await self.delete_result(result.id)
        await self.client.delete(self._k("account-results", name))
        return bool(await self.client.hdel(self._k("accounts"), name))

    async def accounts(self) -> list[str]:
        names = await self.client.hkeys(self._k("accounts"))
        return sorted(n.decode() for n in names)

    async def has_account(self, name: str) -> bool:
        return bool(await self.client.hexists(self._k("accounts"), name))

    async def add_signin(self, token: str, account: str, expires_at: float) -> None:
        ttl = max(int(expires_at - time.time()) + 1, 1)
        value = json.dumps({"account": account, "expires_at": expires_at})
        await self.client.set(self._k("signin", token_digest(token)), value, ex=ttl)

    async def take_signin(self, token: str, now: float) -> str | None:
        raw = await self.client.getdel(self._k("signin", token_digest(token)))
        if raw is None:
            return None
        data = json.loads(raw)
        account = str(data["account"])
        if float(data["expires_at"]) < now or not await self.has_account(account):
            return None
        return account

    async def count(self, key: str, day: str) -> int:
        raw = await self.client.get(self._k("count", key, day))
        return 0 if raw is None else int(raw)

    async def add_count(self, key: str, day: str, amount: int) -> int:
        name = self._k("count", key, day)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.expire(name, 2 * 86_400)
            total, _ = await pipe.execute()
        return int(total)

    async def acquire_slot(self, key: str, token: str, limit: int, now: float, lease_s: float) -> bool:
        taken = await self.client.eval(  # type: ignore[misc]
            _TAKE_SLOT, 1, self._k("slots", key), now, now + lease_s, limit, token, int(lease_s) + 1
        )
        return bool(taken)

    async def release_slot(self, key: str, token: str) -> None:
        await self.client.zrem(self._k("slots", key), token)

    async def session_secret(self) -> bytes:
        name = self._k("session-secret")
        await self.client.set(name, secrets.token_bytes(32), nx=True)
        raw = await self.client.get(name)
        assert raw is not None
        return bytes(raw)

    async def close(self) -> None:
        await self.client.aclose()


def build_store(redis_url: str | None, data_dir: Path) -> WebStore:
    """Redis when the deployment shares one (every replica sees every result), else SQLite in data_dir."""
    if redis_url:
        return RedisWebStore(redis_url)
    return SQLiteWebStore(data_dir)
