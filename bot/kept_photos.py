"""Prepared photos kept for questions about them, for the retention period, then deleted.

A question about a photo ("what is on the wall?") goes to the describer with the same prepared
JPEG the caption was written from (no EXIF, no GPS), so that JPEG is kept under the answer's key
for `PHOTODETECTIVE_DESCRIBE_RETENTION_H` hours. Past that it is gone: a read never returns an
expired photo, and `purge` deletes the expired rows (the SQLite store runs it on every write, so
the file does not grow; Redis expires its keys by itself).

Two stores, one interface, like the quota and preference stores: a SQLite file in the data
folder for one host, Redis when replicas share work (the worker that keeps the photo and the
ingress that gets the question may be different hosts).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Protocol

from bot.storage.redis import DEFAULT_REDIS, RedisPolicy, async_redis
from bot.storage.sqlite import DEFAULT_SQLITE, SqliteFile, SqlitePolicy


class KeptPhotos(Protocol):
    """Photos by key, each until its own expiry; `now` is a Unix time from the caller's clock."""

    async def keep(self, key: str, jpeg: bytes, now: float, retention_s: float) -> None:
        """Keep `jpeg` under `key` until `now + retention_s` (replacing what the key held)."""
        ...

    async def get(self, key: str, now: float) -> bytes | None:
        """The photo kept under `key`, or None when there is none or it has expired."""
        ...

    async def purge(self, now: float) -> int:
        """Delete every expired photo; how many were deleted."""
        ...

    async def close(self) -> None: ...


def _create_table(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS kept_photos "
        "(key TEXT PRIMARY KEY, jpeg BLOB NOT NULL, expires REAL NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS kept_photos_expires ON kept_photos (expires)")


class SQLiteKeptPhotos:
    """Kept photos in one SQLite file; expired rows are deleted on every keep and by `purge`."""

    def __init__(self, path: Path, policy: SqlitePolicy = DEFAULT_SQLITE) -> None:
        self._file = SqliteFile(path, policy, schema=_create_table)

    async def keep(self, key: str, jpeg: bytes, now: float, retention_s: float) -> None:
        await asyncio.to_thread(self._keep, key, jpeg, now, retention_s)

    async def get(self, key: str, now: float) -> bytes | None:
        return await asyncio.to_thread(self._get, key, now)

    async def purge(self, now: float) -> int:
        return await asyncio.to_thread(self._purge, now)

    async def close(self) -> None:
        """Nothing to close: every call opens and closes its own connection."""

    def _keep(self, key: str, jpeg: bytes, now: float, retention_s: float) -> None:
        with self._file.transaction(write=True) as db:
            db.execute("DELETE FROM kept_photos WHERE expires <= ?", (now,))
            db.execute(
                "INSERT INTO kept_photos (key, jpeg, expires) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET jpeg = excluded.jpeg, expires = excluded.expires",
                (key, jpeg, now + retention_s),
            )

    def _get(self, key: str, now: float) -> bytes | None:
        with self._file.transaction(write=False) as db:
            row = db.execute(
                "SELECT jpeg FROM kept_photos WHERE key = ? AND expires > ?", (key, now)
            ).fetchone()
        return bytes(row[0]) if row else None

    def _purge(self, now: float) -> int:
        with self._file.transaction(write=True) as db:
            return db.execute("DELETE FROM kept_photos WHERE expires <= ?", (now,)).rowcount


class RedisKeptPhotos:
    """Kept photos in Redis, each key with its own expiry (Redis deletes it; reads check it too)."""

    def __init__(
        self, url: str, policy: RedisPolicy = DEFAULT_REDIS, *, prefix: str = "photodetective:kept:"
    ) -> None:
        self._redis = async_redis(url, policy, binary=True)
        self._prefix = prefix

    async def keep(self, key: str, jpeg: bytes, now: float, retention_s: float) -> None:
        expires = now + retention_s
        await self._redis.set(
            self._prefix + key, f"{expires:.3f}".encode() + b"\n" + jpeg, px=max(1, round(retention_s * 1000))
        )

    async def get(self, key: str, now: float) -> bytes | None:
        value = await self._redis.get(self._prefix + key)
        if not isinstance(value, bytes) or not value:
            return None
        expires, _, jpeg = value.partition(b"\n")
        return jpeg if float(expires) > now else None

    async def purge(self, now: float) -> int:
        """Redis expires keys itself; nothing is left to delete."""
        return 0

    async def close(self) -> None:
        await self._redis.aclose()
