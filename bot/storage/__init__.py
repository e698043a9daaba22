"""How the stores reach SQLite and Redis: one access helper and one client policy for each.

`bot.wiring` builds the policies once (`SQLITE_POLICY`, `REDIS_POLICY`) and hands them to every
store it makes, so the busy timeout, WAL mode, SQLITE_BUSY handling and Redis timeouts and retries
are the same everywhere instead of one variant per store. The quota, preferences and rate-limit
stores use them, and the web page's result store (`adapters/web/store_sqlite.py`,
`adapters/web/store_redis.py`, with binary replies for its images). One store still opens its own
and should move over the same way: the job queue (`bot/queue/sqlite.py` opens its connections
with its own WAL and busy-timeout pragmas; `bot/queue/redis.py` builds its client with
`Redis.from_url`). It should take a `SqliteFile` (its schema as the `schema` callback,
`transaction(write=True)` for claim and ack) and a client from `async_redis(url, policy)`, with
the policies passed in by `bot.wiring.build_stores`.
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
