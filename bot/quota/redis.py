"""The quota store for several hosts: Redis, with each check-and-charge done by one Lua script.

Redis runs a script without interleaving any other command, so reading the counters, checking every
limit and charging happen as one step even with many bot processes. The clock is the caller's `now`
(passed as an argument, never Redis TIME), so tests can drive it. Keys carry TTLs so old days,
forgotten jobs and idle users' windows expire by themselves.

The charge decision itself is `bot.quota.rules.decide_charge`; `CHARGE_LUA` is its transcription
into Lua (a script cannot call Python), read its counters the way `StoredCounts` describes them.
The contract tests run both over the same scenarios and require identical answers.

Keys (all under `prefix`, which by default contains a `{hash tag}` so they share one cluster slot):
  job:<job_id>      hash  user, day, calls, state (active|finished|refunded), the standing grant
                          (rewritten when a refunded job is charged again)
  used:<day>        zset  user -> photos charged that day, net of refunds (also the top-users table)
  extra:<day>       hash  user -> extra photos granted for that day
  day:<day>         hash  calls (net billed calls), charged, refunded, refused:<REASON>
  slots:<user>      zset  job_id -> lease end (epoch s); members past their lease no longer count
  rate:<user>       zset  job_id -> latest grant time (epoch s); the sliding window
  blocked           set   blocked users (no TTL)

When Redis cannot be reached every method raises `QuotaStoreUnavailable` within about
`socket_timeout` seconds; redis-py reconnects on the next call once Redis is back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Self

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.quota.base import (
    QuotaStore,
    QuotaStoreUnavailable,
    ceil_seconds,
    check_charge_args,
    quota_day,
    require_aware,
)
from bot.quota.models import ChargeResult, QuotaPolicy, Refusal, Stats, Usage, UserCount
from bot.storage.redis import DEFAULT_REDIS, RedisPolicy, async_redis

DEFAULT_PREFIX = "photodetective:{quota}:"
_FINISH_TRIES = 5

# KEYS: job, used, extra, day, slots, rate, blocked
# ARGV: user, job_id, calls, now, daily_limit, max_concurrent, burst_limit, burst_window,
#       global_cap (-1 = none), lease_s, admin (1/0), day, resets_at (epoch), day_ttl, job_ttl
# Returns {status, reason, remaining, limit, resets_at, retry_after} as strings;
# status is "ok", "no" or "dup". Numbers go out as strings because Lua numbers become integers.
CHARGE_LUA = """
local job_key, used_key, extra_key, day_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local slots_key, rate_key, blocked_key = KEYS[5], KEYS[6], KEYS[7]
local user, job_id = ARGV[1], ARGV[2]
local calls = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local daily_limit = tonumber(ARGV[5])
local max_concurrent = tonumber(ARGV[6])
local burst_limit = tonumber(ARGV[7])
local window = tonumber(ARGV[8])
local cap = tonumber(ARGV[9])
local lease = tonumber(ARGV[10])
local admin = ARGV[11] == '1'
local day, resets_at = ARGV[12], ARGV[13]
local day_ttl, job_ttl = tonumber(ARGV[14]), tonumber(ARGV[15])

-- A standing grant is answered as a duplicate; a refunded job is checked and charged afresh
-- (on grant its hash is overwritten below, on refusal it stays refunded).
if redis.call('EXISTS', job_key) == 1 and redis.call('HGET', job_key, 'state') ~= 'refunded' then
  local job = redis.call('HMGET', job_key, 'remaining', 'limit', 'resets_at')
  return {'dup', '', job[1], job[2], job[3], ''}
end

local used = tonumber(redis.call('ZSCORE', used_key, user) or '0')
local extra = tonumber(redis.call('HGET', extra_key, user) or '0')
local limit = daily_limit + extra
local global_calls = tonumber(redis.call('HGET', day_key, 'calls') or '0')
redis.call('ZREMRANGEBYSCORE', slots_key, '-inf', now)
redis.call('ZREMRANGEBYSCORE', rate_key, '-inf', now - window)

local reason, retry = '', ''
if redis.call('SISMEMBER', blocked_key, user) == 1 then
  reason = 'BLOCKED'
elseif not admin then
  if used + 1 > limit then
    reason = 'DAILY_LIMIT'
  elseif cap >= 0 and global_calls + calls > cap then
    reason = 'GLOBAL_CAP'
  else
    local active = redis.call('ZCARD', slots_key)
    if active >= max_concurrent then
      reason = 'CONCURRENCY'
      local first = redis.call('ZRANGE', slots_key, 0, 0, 'WITHSCORES')
      retry = first[2] and tostring(tonumber(first[2]) - now) or '1'
    else
      local recent = redis.call('ZCARD', rate_key)
      if recent >= burst_limit then
        reason = 'RATE'
        local first = redis.call('ZRANGE', rate_key, 0, 0, 'WITHSCORES')
        retry = first[2] and tostring(tonumber(first[2]) + window - now) or '1'
      end
    end
  end
end

if reason ~= '' then
  redis.call('HINCRBY', day_key, 'refused:' .. reason, 1)
  redis.call('EXPIRE', day_key, day_ttl)
  local remaining = limit - used
  if remaining < 0 then remaining = 0 end
  return {'no', reason, tostring(remaining), tostring(limit), resets_at, retry}
end

local remaining = limit - used - 1
if remaining < 0 then remaining = 0 end
redis.call('ZINCRBY', used_key, 1, user)
redis.call('EXPIRE', used_key, day_ttl)
redis.call('HINCRBY', day_key, 'calls', calls)
redis.call('HINCRBY', day_key, 'charged', 1)
redis.call('EXPIRE', day_key, day_ttl)
redis.call('ZADD', slots_key, now + lease, job_id)
redis.call('EXPIRE', slots_key, math.ceil(lease))
redis.call('ZADD', rate_key, now, job_id)
redis.call('EXPIRE', rate_key, math.ceil(window))
redis.call('HSET', job_key, 'user', user, 'day', day, 'calls', calls, 'state', 'active',
           'remaining', remaining, 'limit', limit, 'resets_at', resets_at)
redis.call('EXPIRE', job_key, job_ttl)
return {'ok', '', tostring(remaining), tostring(limit), resets_at, ''}
"""

# KEYS: job, used, day, slots, rate.  ARGV: job_id, refund (1/0), user, day.
# A refund also takes the job out of the user's burst window (rules.counts_in_burst_window).
# The day's counters are only touched if they still exist, so a late refund for a day that has
# already expired cannot recreate its keys without a TTL. The keys were built from the job's user
# and day read just before; if a refunded job was charged again in between (on another day), they
# may be the wrong ones: -1 tells the caller to read the job again and retry.
FINISH_LUA = """
local job = redis.call('HMGET', KEYS[1], 'state', 'user', 'day')
if job[1] ~= 'active' then
  return 0
end
if job[2] ~= ARGV[3] or job[3] ~= ARGV[4] then
  return -1
end
redis.call('ZREM', KEYS[4], ARGV[1])
if ARGV[2] == '1' then
  local calls = tonumber(redis.call('HGET', KEYS[1], 'calls'))
  if redis.call('EXISTS', KEYS[2]) == 1 then
    local left = redis.call('ZINCRBY', KEYS[2], -1, ARGV[3])
    if tonumber(left) < 0 then redis.call('ZADD', KEYS[2], 0, ARGV[3]) end
  end
  if redis.call('EXISTS', KEYS[3]) == 1 then
    -- 0 - calls, not -calls: Lua's -0 reaches Redis as "-0", which HINCRBY refuses (a free job).
    local left = redis.call('HINCRBY', KEYS[3], 'calls', 0 - calls)
    if left < 0 then redis.call('HSET', KEYS[3], 'calls', 0) end
    redis.call('HINCRBY', KEYS[3], 'refunded', 1)
  end
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'refunded')
else
  redis.call('HSET', KEYS[1], 'state', 'finished')
end
return 1
"""


def _text(value: Any) -> str:
    """Replies are bytes or str depending on the client's decode_responses; accept both."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


class RedisQuotaStore(QuotaStore):
    """Quotas in Redis, for deployments with more than one host or many processes.

    Build it with `RedisQuotaStore.from_url(url, policy)` (the stores' one client policy) or hand it
    a client you configured yourself; `keep_days` is how long job records and daily counters live.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        keep_days: int = 7,
        owns_client: bool = False,
    ) -> None:
        if keep_days < 1:
            raise ValueError("keep_days must be >= 1")
        self._client = client
        self._prefix = prefix
        self._keep_s = keep_days * 86400
        self._owns_client = owns_client
        self._charge = client.register_script(CHARGE_LUA)
        self._finish = client.register_script(FINISH_LUA)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        keep_days: int = 7,
        policy: RedisPolicy = DEFAULT_REDIS,
    ) -> Self:
        """A store with its own client, built by `bot.storage.redis` like every store's.

        The policy's short timeouts report an outage in about a second (one retry covers a pooled
        connection that died while idle), and its pool blocks rather than failing a burst.
        """
        return cls(async_redis(url, policy), prefix=prefix, keep_days=keep_days, owns_client=True)

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def _call(self, operation: str, awaitable: Any) -> Any:
        """Await a Redis operation, turning "cannot reach Redis" into the store's typed error."""
        try:
            return await awaitable
        except (RedisConnectionError, RedisTimeoutError, ReadOnlyError, InvalidResponse, OSError) as error:
            # ReadOnlyError: a replica during a failover; InvalidResponse: something that is not
            # Redis answered. Either way quotas cannot be checked, exactly as with a dead server.
            raise QuotaStoreUnavailable(f"redis {operation}: {error}") from error

    def _day_ttl(self, now: datetime, resets_at: datetime) -> int:
        """Day counters outlive their day by `keep_days`, for stats about recent days."""
        return math.ceil((resets_at - now).total_seconds()) + self._keep_s

    async def try_charge(
        self, user: str, job_id: str, calls: int, now: datetime, policy: QuotaPolicy, admin: bool = False
    ) -> ChargeResult:
        check_charge_args(user, job_id, calls)
        day, resets_at = quota_day(now, policy)
        day_key = day.isoformat()
        keys = [
            self._key("job", job_id),
            self._key("used", day_key),
            self._key("extra", day_key),
            self._key("day", day_key),
            self._key("slots", user),
            self._key("rate", user),
            self._key("blocked"),
        ]
        args: Sequence[str | int | float] = [
            user,
            job_id,
            calls,
            repr(now.timestamp()),
            policy.daily_limit,
            policy.max_concurrent,
            policy.burst_limit,
            repr(float(policy.burst_window_s)),
            -1 if policy.global_daily_calls is None else policy.global_daily_calls,
            repr(float(policy.max_job_s)),
            1 if admin else 0,
            day_key,
            repr(resets_at.timestamp()),
            self._day_ttl(now, resets_at),
            self._keep_s,
        ]
        reply = await self._call("try_charge", self._charge(keys=keys, args=args))
        status, reason, remaining, limit, resets_ts, retry = (_text(part) for part in reply)
        if status == "dup":
            return ChargeResult(
                granted=True,
                reason=None,
                remaining=int(remaining),
                limit=int(limit),
                resets_at=datetime.fromtimestamp(float(resets_ts), policy.zone),
                duplicate=True,
            )
        if status == "no":
            return ChargeResult(
                granted=False,
                reason=Refusal(reason),
                remaining=int(remaining),
                limit=int(limit),
                resets_at=resets_at,
                retry_after=ceil_seconds(float(retry)) if retry else None,
            )
        return ChargeResult(
            granted=True, reason=None, remaining=int(remaining), limit=int(limit), resets_at=resets_at
        )

    async def finish(self, job_id: str, refund: bool) -> bool:
        """See `QuotaStore.finish`; the job's user and day name the keys, so they are read first.

        The script refuses (-1) when the job was charged again (after a refund) between that read
        and the script, since its day may have changed; each retry needs another refund and
        re-charge to race it, so a few suffice.
        """
        job_key = self._key("job", job_id)
        for _ in range(_FINISH_TRIES):
            user, day = await self._call("finish", self._client.hmget(job_key, ["user", "day"]))
            if user is None or day is None:
                return False
            user, day = _text(user), _text(day)
            keys = [
                job_key,
                self._key("used", day),
                self._key("day", day),
                self._key("slots", user),
                self._key("rate", user),
            ]
            args = [job_id, 1 if refund else 0, user, day]
            done = int(await self._call("finish", self._finish(keys=keys, args=args)))
            if done >= 0:
                return done == 1
        raise QuotaStoreUnavailable(f"redis finish: job {job_id!r} kept changing under us")

    async def usage(self, user: str, now: datetime, policy: QuotaPolicy) -> Usage:
        day, resets_at = quota_day(now, policy)
        day_key = day.isoformat()
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zscore(self._key("used", day_key), user)
            pipe.hget(self._key("extra", day_key), user)
            pipe.sismember(self._key("blocked"), user)
            pipe.zcount(self._key("slots", user), f"({now.timestamp()!r}", "+inf")
            used_raw, extra_raw, blocked, active = await self._call("usage", pipe.execute())
        used = int(float(used_raw)) if used_raw is not None else 0
        extra = int(_text(extra_raw)) if extra_raw is not None else 0
        return Usage.from_counts(
            user,
            day,
            resets_at,
            policy,
            used=used,
            extra=extra,
            blocked=bool(blocked),
            active_jobs=int(active),
        )

    async def grant(self, user: str, extra: int, now: datetime, policy: QuotaPolicy) -> Usage:
        if extra <= 0:
            raise ValueError("extra must be > 0")
        if not user:
            raise ValueError("user must not be empty")
        day, resets_at = quota_day(now, policy)
        key = self._key("extra", day.isoformat())
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, user, extra)
            pipe.expire(key, self._day_ttl(now, resets_at))
            await self._call("grant", pipe.execute())
        return await self.usage(user, now, policy)

    async def block(self, user: str) -> bool:
        if not user:
            raise ValueError("user must not be empty")
        added = await self._call("block", self._client.sadd(self._key("blocked"), user))
        return int(added) == 1

    async def unblock(self, user: str) -> bool:
        removed = await self._call("unblock", self._client.srem(self._key("blocked"), user))
        return int(removed) == 1

    async def stats(self, now: datetime, policy: QuotaPolicy, top: int = 10) -> Stats:
        require_aware(now)
        day, _ = quota_day(now, policy)
        day_key = day.isoformat()
        used_key = self._key("used", day_key)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._key("day", day_key))
            pipe.zrevrangebyscore(used_key, "+inf", "(0", start=0, num=max(1, top), withscores=True)
            totals_raw, top_raw = await self._call("stats", pipe.execute())
        if top > 0 and len(top_raw) == top:
            # Fetch everyone tied with the last place too, so ties are broken by name as in SQLite.
            top_raw = await self._call(
                "stats", self._client.zrevrangebyscore(used_key, "+inf", top_raw[-1][1], withscores=True)
            )
        totals = {_text(name): int(_text(value)) for name, value in totals_raw.items()}
        refusals = {reason: totals.get(f"refused:{reason.value}", 0) for reason in Refusal}
        ranked = sorted(
            ((_text(member), int(score)) for member, score in top_raw), key=lambda item: (-item[1], item[0])
        )
        return Stats(
            day=day,
            charged=totals.get("charged", 0),
            refunded=totals.get("refunded", 0),
            refusals=refusals,
            global_calls=totals.get("calls", 0),
            global_cap=policy.global_daily_calls,
            top_users=tuple(UserCount(user, used) for user, used in ranked[: max(0, top)]),
        )

    async def close(self) -> None:
        """Close the client if this store created it; a shared client is its owner's to close."""
        if self._owns_client:
            await self._client.aclose()
