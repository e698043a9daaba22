"""Small per-user and per-chat choices that must survive restarts and be shared by replicas.

Users pick which analyses run (`/features`); group admins choose whether every photo in their
chat is analysed or only the ones the bot is asked about. These are a handful of short values,
so one key/value table (SQLite) or one hash per scope (Redis) is all they need.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.storage.redis import DEFAULT_REDIS, RedisPolicy, async_redis
from bot.storage.sqlite import DEFAULT_SQLITE, SqliteFile, SqlitePolicy


def _create_table(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS preferences "
        "(scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (scope, key))"
    )


class PreferencesUnavailable(Exception):
    """The store cannot be reached; callers fall back to defaults."""


class PreferencesStore(Protocol):
    async def get(self, scope: str, key: str) -> str | None:
        """The stored value, or None when nothing was chosen."""
        ...

    async def set(self, scope: str, key: str, value: str | None) -> None:
        """Store a value; None forgets it (back to the default)."""
        ...

    async def close(self) -> None: ...


class SQLitePreferences:
    """Preferences in one SQLite file, opened like every store's (`bot.storage.sqlite.SqliteFile`:
    WAL, busy timeout, SQLITE_BUSY waited out); each call runs in a thread on its own connection."""

    def __init__(self, path: Path, policy: SqlitePolicy = DEFAULT_SQLITE) -> None:
        self._file = SqliteFile(path, policy, schema=_create_table)

    @property
    def path(self) -> Path:
        return self._file.path

    def _get(self, scope: str, key: str) -> str | None:
        with self._file.transaction(write=False) as db:
            row = db.execute(
                "SELECT value FROM preferences WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def _set(self, scope: str, key: str, value: str | None) -> None:
        with self._file.transaction(write=True) as db:
            if value is None:
                db.execute("DELETE FROM preferences WHERE scope = ? AND key = ?", (scope, key))
            else:
                db.execute(
                    "INSERT INTO preferences (scope, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value",
                    (scope, key, value),
                )

    async def get(self, scope: str, key: str) -> str | None:
        try:
            return await asyncio.to_thread(self._get, scope, key)
        except sqlite3.Error as exc:
            raise PreferencesUnavailable(str(exc)) from exc

    async def set(self, scope: str, key: str, value: str | None) -> None:
        try:
            await asyncio.to_thread(self._set, scope, key, value)
        except sqlite3.Error as exc:
            raise PreferencesUnavailable(str(exc)) from exc

    async def close(self) -> None:
        return None


class RedisPreferences:
    """Preferences in Redis hashes, one per scope, so every replica sees the same choices; the
    client is built by `bot.storage.redis` with the stores' one policy."""

    def __init__(
        self,
        url: str,
        prefix: str = "photodetective:prefs:",
        policy: RedisPolicy = DEFAULT_REDIS,
    ) -> None:
        self.client: aioredis.Redis = async_redis(url, policy)
        self.prefix = prefix

    async def get(self, scope: str, key: str) -> str | None:
        try:
            value = await self.client.hget(self.prefix + scope, key)
        except (RedisError, OSError) as exc:
            raise PreferencesUnavailable(str(exc)) from exc
        return None if value is None else str(value)

    async def set(self, scope: str, key: str, value: str | None) -> None:
        try:
            if value is None:
                await self.client.hdel(self.prefix + scope, key)
            else:
                await self.client.hset(self.prefix + scope, key, value)
        except (RedisError, OSError) as exc:
            raise PreferencesUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self.client.aclose()
