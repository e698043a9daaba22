"""How the stores reach SQLite and Redis: one access helper and one client policy for each.

`bot.wiring` builds the policies once (`SQLITE_POLICY`, `REDIS_POLICY`) and hands them to every
store it makes, so the busy timeout, WAL mode, SQLITE_BUSY handling and Redis timeouts and retries
are the same everywhere instead of one variant per store. All five stores use them: the job queue,
the quota, preferences and rate-limit stores, and the web page's result store
(`adapters/web/store_sqlite.py`, `adapters/web/store_redis.py`); none opens SQLite or builds a Redis
client its own way. A store that needs more derives it from the policy it is given rather than
beside it: the queue keeps one connection from `SqliteFile.connect()` on its own thread (its
transactions through `begin()`) with `synchronous = FULL`, and runs its Redis scripts with no
retries; the web results' Redis client keeps binary replies and a longer timeout for images.
"""

from bot.storage.redis import DEFAULT_REDIS, RedisPolicy, async_redis, sync_redis
from bot.storage.sqlite import DEFAULT_SQLITE, SqliteFile, SqlitePolicy

__all__ = [
    "DEFAULT_REDIS",
    "DEFAULT_SQLITE",
    "RedisPolicy",
    "SqliteFile",
    "SqlitePolicy",
    "async_redis",
    "sync_redis",
]
