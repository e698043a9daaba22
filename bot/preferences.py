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
    """Preferences in one SQLite file (WAL); each call opens its own short connection in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS preferences "
                "(scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (scope, key))"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=5.0)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _get(self, scope: str, key: str) -> str | None:
        db = self._connect()
        try:
            row = db.execute(
                "SELECT value FROM preferences WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
        finally:
            db.close()
        return None if row is None else str(row[0])

    def _set(self, scope: str, key: str, value: str | None) -> None:
        db = self._connect()
        try:
            with db:
                if value is None:
                    db.execute("DELETE FROM preferences WHERE scope = ? AND key = ?", (scope, key))
                else:
                    db.execute(
                        "INSERT INTO preferences (scope, key, value) VALUES (?, ?, ?) "
                        "ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value",
                        (scope, key, value),
                    )
        finally:
            db.close()

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
    """Preferences in Redis hashes, one per scope, so every replica sees the same choices."""

    def __init__(self, url: str, prefix: str = "photodetective:prefs:") -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(url, socket_timeout=2.0, decode_responses=True)
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
