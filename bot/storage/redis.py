"""Redis clients built one way for every store: short timeouts, one retry, a blocking pool.

A store that cannot reach Redis must say so quickly ("try again shortly", a throttled recognizer
call, default preferences) rather than hold a user's photo for a long socket timeout; one retry
with a tiny backoff covers a pooled connection that died while idle, and more would only delay the
answer. The pool blocks (for up to the timeout) when every connection is busy, instead of failing a
burst outright. Replies are decoded to `str`.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


@dataclass(frozen=True)
class RedisPolicy:
    """Timeout of each connect and command, retries after a connection error, and pool size."""

    timeout_s: float = 1.0
    retries: int = 1
    max_connections: int = 50

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.retries < 0 or self.max_connections < 1:
            raise ValueError("timeout_s must be > 0, retries >= 0 and max_connections >= 1")


#: What every store uses unless `bot.wiring` (or a test) hands it another policy.
DEFAULT_REDIS = RedisPolicy()


def _pool_limits(policy: RedisPolicy) -> dict[str, float]:
    """The pool size and the waits both clients take from the policy (for a free connection, a
    connect, a command), written once so the asyncio and blocking clients cannot drift apart."""
    return {
        "max_connections": policy.max_connections,
        "timeout": policy.timeout_s,
        "socket_timeout": policy.timeout_s,
        "socket_connect_timeout": policy.timeout_s,
    }


def _backoff() -> ExponentialBackoff:
    """A tiny backoff: the one retry is for a pooled connection that died while idle."""
    return ExponentialBackoff(cap=0.1, base=0.01)


def async_redis(url: str, policy: RedisPolicy = DEFAULT_REDIS, *, binary: bool = False) -> aioredis.Redis:
    """An asyncio client for the stores used from the event loop (quota, preferences, web results).

    `binary`: replies stay `bytes`, for a store that keeps images (the web results' blobs).
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        retry=AsyncRetry(_backoff(), retries=policy.retries),
        decode_responses=not binary,
        **_pool_limits(policy),
    )
    return aioredis.Redis.from_pool(pool)


def sync_redis(url: str, policy: RedisPolicy = DEFAULT_REDIS) -> redis.Redis:
    """A blocking client for code that runs in threads (the rate limit, in the recognizer's calls)."""
    pool = redis.BlockingConnectionPool.from_url(
        url, retry=Retry(_backoff(), retries=policy.retries), decode_responses=True, **_pool_limits(policy)
    )
    return redis.Redis.from_pool(pool)
