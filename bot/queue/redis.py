"""The job queue on Redis Streams, for several processes or containers sharing the work.

Layout (all keys under `prefix`, default ``photodetective:queue``):

- ``:stream``: one entry per job (``job_id``), read through the consumer group ``workers``. An
  entry is in the group's pending list (PEL) from its first delivery until it is done or dead.
- ``:job:<id>``: a hash with the job (key, user, payload, created_at, seq, state, attempts, lease
  token and worker, error, reply marker, ``exhausted`` once its attempts ran out by expiry).
  ``:idem:<key>``: idempotency key -> job id.
- ``:queued``: a sorted set (score = enqueue sequence) of the jobs waiting to be claimed, for
  "n ahead of you" and the oldest queued age; ``:leased``: the set of leased jobs; ``:seq`` and
  ``:done`` and ``:apologised``: counters; ``:dead``: a stream of dead letters (trimmed to
  `retention_s`); ``:delivering``: the ids of jobs that were deferred with a stored answer (the
  hash's ``answer`` field), pruned of finished ones when stats are read.

Every operation is one Lua script, so a check and its effects are atomic (idempotency check +
XADD; token check + XACK). A claim first takes over a pending entry whose time has come with
XAUTOCLAIM, oldest first (expired leases of dead consumers, released jobs, retries past their
backoff), and only then reads a new entry with XREADGROUP. PEL entries are always older than
undelivered ones, so this is FIFO by enqueue order.

Deadlines are idle times. XAUTOCLAIM takes entries idle for at least one fixed `min-idle`, the
horizon (7 days), while each lease has its own timeout and retries their own backoff. So whenever
an entry's deadline is set (claim, extend, release, retry), the script re-stamps its delivery time
with ``XCLAIM ... IDLE (horizon - timeout) JUSTID``: it then reaches the horizon exactly when its
own timeout runs out. A released entry gets IDLE = horizon, claimable at once. This uses the server's
clock only, so workers on hosts with skewed clocks still agree; the caller's `now` is recorded
(created_at, deadlines shown in leases, finish times) but never decides expiry.

Redis must be standalone (or Sentinel): the scripts touch keys they compute, which Redis Cluster
does not allow. Durability is Redis's: use ``appendonly yes`` so acknowledged jobs survive a
restart. The client is the one every store gets (`bot.storage.async_redis` with the deployment's
policy, `bot.wiring.REDIS_POLICY`), except that commands are never retried (a replayed claim would
strand a lease) and wait at least `MIN_COMMAND_TIMEOUT_S`; a connection that Redis closed is
replaced before use, so after an outage the next call just works.
Consumers (one per worker id) are created on demand and not deleted; they cost a few bytes each.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from typing import Any

import redis.exceptions
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from bot.queue.base import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETENTION_S,
    DEFAULT_RETRY_BACKOFF_S,
    EXPIRED_ERROR,
    MAX_DEFER_DELAY_S,
    MAX_RETRY_DELAY_S,
    MAX_VISIBILITY_TIMEOUT_S,
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
from bot.storage.redis import DEFAULT_REDIS, RedisPolicy, async_redis

HORIZON_MS = 7 * 24 * 3600 * 1000
assert 1000 * max(MAX_VISIBILITY_TIMEOUT_S, MAX_RETRY_DELAY_S, MAX_DEFER_DELAY_S) < HORIZON_MS

#: Seconds a queue command may take (the policy's own timeout if longer). A script that times out
#: may still have run, leaving its outcome unknown (a claim's lease then waits out its visibility
#: timeout), so the queue waits longer than the stores whose calls are plain reads and writes.
MIN_COMMAND_TIMEOUT_S = 2.0

# Error replies meaning "Redis cannot take writes right now" rather than "the script is wrong".
_UNAVAILABLE_PREFIXES = ("OOM", "MISCONF", "MASTERDOWN", "READONLY", "LOADING", "NOREPLICAS", "BUSY")

# ARGV[1] is always the key prefix.
_PRELUDE = """
local P = ARGV[1]
local STREAM = P .. ':stream'
local DEAD = P .. ':dead'
local QUEUED = P .. ':queued'
local LEASED = P .. ':leased'
local GROUP = 'workers'
local function job_key(id) return P .. ':job:' .. id end
local function idem_key(key) return P .. ':idem:' .. key end

local function ensure_group()
  local r = redis.pcall('XGROUP', 'CREATE', STREAM, GROUP, '0', 'MKSTREAM')
  if type(r) == 'table' and r.err and not string.find(r.err, 'BUSYGROUP', 1, true) then
    error(r)
  end
end

local function retain(id, key, retention_ms)
  redis.call('PEXPIRE', job_key(id), retention_ms)
  redis.call('PEXPIRE', idem_key(key), retention_ms)
end

local function bury(id, sid, err, now, retention_ms)
  local jk = job_key(id)
  local f = redis.call('HMGET', jk, 'key', 'user', 'payload', 'created_at', 'attempts', 'reply_sent')
  redis.call('XACK', STREAM, GROUP, sid)
  redis.call('XDEL', STREAM, sid)
  redis.call('HSET', jk, 'state', 'dead', 'error', err, 'finished_at', now)
  redis.call('HDEL', jk, 'token', 'answer')
  if f[6] then redis.call('INCR', P .. ':apologised') end
  redis.call('ZREM', QUEUED, id)
  redis.call('SREM', LEASED, id)
  local t = redis.call('TIME')
  local min_id = string.format('%.0f', math.max(0, tonumber(t[1]) * 1000 - retention_ms))
  redis.call('XADD', DEAD, 'MINID', '~', min_id, '*',
    'job_id', id, 'key', f[1], 'user', f[2], 'error', err, 'attempts', f[5],
    'payload', f[3], 'created_at', f[4], 'died_at', now)
  retain(id, f[1], retention_ms)
end
"""

# ARGV: prefix, key, job_id, user, payload, now
_ENQUEUE = """
local key = ARGV[2]
local existing = redis.call('GET', idem_key(key))
if existing then
  local seq = redis.call('ZSCORE', QUEUED, existing)
  local ahead = 0
  if seq then ahead = redis.call('ZCOUNT', QUEUED, '-inf', '(' .. seq) end
  return {existing, 0, ahead}
end
ensure_group()
local id = ARGV[3]
local seq = redis.call('INCR', P .. ':seq')
local sid = redis.call('XADD', STREAM, '*', 'job_id', id)
redis.call('HSET', job_key(id), 'key', key, 'user', ARGV[4], 'payload', ARGV[5],
  'created_at', ARGV[6], 'seq', seq, 'sid', sid, 'state', 'queued', 'attempts', 0)
redis.call('SET', idem_key(key), id)
redis.call('ZADD', QUEUED, seq, id)
return {id, 1, redis.call('ZCOUNT', QUEUED, '-inf', '(' .. seq)}
"""

# ARGV: prefix, consumer, horizon_ms, lease_idle_ms, token, max_attempts, now, deadline,
#       expired_error_format, retention_ms
_CLAIM = """
local consumer, horizon, lease_idle, token = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_attempts = tonumber(ARGV[6])
local now, deadline, expired_format = ARGV[7], ARGV[8], ARGV[9]
local retention = tonumber(ARGV[10])

local function take(id, sid)
  local jk = job_key(id)
  local f = redis.call('HMGET', jk, 'state', 'attempts', 'reply_sent',
    'key', 'user', 'payload', 'created_at', 'exhausted', 'answer', 'answer_since', 'delivery_tries')
  local state = f[1]
  if state ~= 'queued' and state ~= 'leased' then
    -- an entry without a live job (its hash was deleted by hand): drop it
    redis.call('XACK', STREAM, GROUP, sid)
    redis.call('XDEL', STREAM, sid)
    return nil
  end
  local attempts = tonumber(f[2])
  local exhausted = f[8] == '1'
  -- an expired lease (one whose answer went out only needs completing, one holding its answer
  -- only delivering: neither is exhausted by expiry)
  if state == 'leased' and not f[3] and not f[9] then
    if exhausted then  -- its final hand-out died too: give up without another
      bury(id, sid, string.format(expired_format, attempts), now, retention)
      return nil
    end
    exhausted = attempts >= max_attempts
  end
  attempts = attempts + 1
  redis.call('HSET', jk, 'state', 'leased', 'attempts', attempts, 'token', token,
    'worker', consumer, 'deadline', deadline, 'exhausted', exhausted and '1' or '0')
  redis.call('ZREM', QUEUED, id)
  redis.call('SADD', LEASED, id)
  redis.call('XCLAIM', STREAM, GROUP, consumer, 0, sid, 'IDLE', lease_idle, 'JUSTID')
  if f[9] then exhausted = false end
  return {id, f[4], f[5], f[6], f[7], attempts, exhausted and 1 or 0,
    f[9] or '', f[10] or '', f[11] or '0'}
end

ensure_group()
-- Pending entries whose time has come, oldest first. COUNT 1 matters: XAUTOCLAIM resets the idle
-- time of every entry it returns, so it must never return one this claim does not take.
local cursor = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', STREAM, GROUP, consumer, horizon, cursor, 'COUNT', 1)
  cursor = r[1]
  for _, entry in ipairs(r[2]) do
    local fields = entry[2]
    if fields and fields[2] then
      local got = take(fields[2], entry[1])
      if got then return got end
    else
      redis.call('XACK', STREAM, GROUP, entry[1])
    end
  end
until cursor == '0-0'
-- Then the next never-delivered entry.
while true do
  local r = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', 1, 'STREAMS', STREAM, '>')
  if not r then return false end
  local entry = r[1][2][1]
  local got = take(entry[2][2], entry[1])
  if got then return got end
end
"""

# ARGV: prefix, job_id, token, lease_idle_ms, deadline
_EXTEND = """
local jk = job_key(ARGV[2])
local f = redis.call('HMGET', jk, 'state', 'token', 'sid', 'worker')
if f[1] ~= 'leased' or f[2] ~= ARGV[3] then return 0 end
redis.call('HSET', jk, 'deadline', ARGV[5])
redis.call('XCLAIM', STREAM, GROUP, f[4], 0, f[3], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""

# ARGV: prefix, job_id, token, now, retention_ms
_COMPLETE = """
local id = ARGV[2]
local jk = job_key(id)
local f = redis.call('HMGET', jk, 'state', 'token', 'sid', 'key')
if f[2] ~= ARGV[3] then return 0 end
if f[1] == 'done' then return 1 end
if f[1] ~= 'leased' then return 0 end
redis.call('XACK', STREAM, GROUP, f[3])
redis.call('XDEL', STREAM, f[3])
redis.call('HSET', jk, 'state', 'done', 'finished_at', ARGV[4])
redis.call('HDEL', jk, 'answer')
redis.call('SREM', LEASED, id)
redis.call('INCR', P .. ':done')
retain(id, f[4], tonumber(ARGV[5]))
return 1
"""

# ARGV: prefix, job_id, token, error, retryable (1/0), max_attempts, retry_idle_ms, now, retention_ms
_FAIL = """
local id = ARGV[2]
local jk = job_key(id)
local f = redis.call('HMGET', jk, 'state', 'token', 'sid', 'attempts', 'seq', 'worker')
if f[1] ~= 'leased' or f[2] ~= ARGV[3] then return 'lease_lost' end
if ARGV[5] == '1' and tonumber(f[4]) < tonumber(ARGV[6]) then
  redis.call('HSET', jk, 'state', 'queued', 'error', ARGV[4])
  redis.call('HDEL', jk, 'token')
  redis.call('SREM', LEASED, id)
  redis.call('ZADD', QUEUED, f[5], id)
  redis.call('XCLAIM', STREAM, GROUP, f[6], 0, f[3], 'IDLE', ARGV[7], 'JUSTID')
  return 'retry'
end
bury(id, f[3], ARGV[4], ARGV[8], tonumber(ARGV[9]))
return 'dead'
"""

# ARGV: prefix, job_id, token, answer ('' keeps the stored one), error, now, retry_idle_ms
_DEFER = """
local id = ARGV[2]
local jk = job_key(id)
local f = redis.call('HMGET', jk, 'state', 'token', 'sid', 'seq', 'worker', 'answer_since')
if f[1] ~= 'leased' or f[2] ~= ARGV[3] then return 'lease_lost' end
redis.call('HSET', jk, 'state', 'queued', 'error', ARGV[5])
if ARGV[4] ~= '' then redis.call('HSET', jk, 'answer', ARGV[4]) end
if not f[6] then redis.call('HSET', jk, 'answer_since', ARGV[6]) end
redis.call('HINCRBY', jk, 'attempts', -1)
redis.call('HINCRBY', jk, 'delivery_tries', 1)
redis.call('HDEL', jk, 'token', 'reply_started', 'reply_started_at')
redis.call('SREM', LEASED, id)
redis.call('ZADD', QUEUED, f[4], id)
redis.call('SADD', P .. ':delivering', id)
redis.call('XCLAIM', STREAM, GROUP, f[5], 0, f[3], 'IDLE', ARGV[7], 'JUSTID')
return 'retry'
"""

# ARGV: prefix, job_id, token, horizon_ms
_RELEASE = """
local id = ARGV[2]
local jk = job_key(id)
local f = redis.call('HMGET', jk, 'state', 'token', 'sid', 'seq', 'worker')
if f[1] ~= 'leased' or f[2] ~= ARGV[3] then return 0 end
redis.call('HSET', jk, 'state', 'queued')
redis.call('HDEL', jk, 'token')
redis.call('HINCRBY', jk, 'attempts', -1)
redis.call('SREM', LEASED, id)
redis.call('ZADD', QUEUED, f[4], id)
redis.call('XCLAIM', STREAM, GROUP, f[5], 0, f[3], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""

# ARGV: prefix, job_id, attempt, now, takeover_after_s. `reply_started` holds the attempt that
# began the reply, `reply_started_at` when.
_MARK_REPLY = """
local jk = job_key(ARGV[2])
if redis.call('EXISTS', jk) == 0 then return -1 end
local f = redis.call('HMGET', jk, 'reply_started', 'reply_sent', 'reply_started_at')
if f[2] then return 0 end
local now = tonumber(ARGV[4])
if f[1] then
  if tonumber(f[1]) >= tonumber(ARGV[3]) then return 0 end
  if now - tonumber(f[3] or '0') < tonumber(ARGV[5]) then return 0 end
end
redis.call('HSET', jk, 'reply_started', ARGV[3], 'reply_started_at', ARGV[4])
return 1
"""

# ARGV: prefix, job_id
_MARK_SENT = """
local jk = job_key(ARGV[2])
if redis.call('EXISTS', jk) == 0 then return -1 end
local f = redis.call('HMGET', jk, 'state', 'reply_sent')
if f[2] then return 1 end
redis.call('HSET', jk, 'reply_sent', '1')
if f[1] == 'dead' then redis.call('INCR', P .. ':apologised') end
return 1
"""

# ARGV: prefix, job_id
_POSITION = """
local seq = redis.call('ZSCORE', QUEUED, ARGV[2])
if not seq then return -1 end
return redis.call('ZCOUNT', QUEUED, '-inf', '(' .. seq)
"""

# ARGV: prefix
_STATS = """
local oldest = false
local first = redis.call('ZRANGE', QUEUED, 0, 0)
if first[1] then oldest = redis.call('HGET', job_key(first[1]), 'created_at') end
local done = redis.call('GET', P .. ':done') or '0'
local apologised = redis.call('GET', P .. ':apologised') or '0'
-- jobs holding an answer: the set is pruned here of those that finished since
local delivering = 0
for _, id in ipairs(redis.call('SMEMBERS', P .. ':delivering')) do
  local state = redis.call('HGET', job_key(id), 'state')
  if state == 'queued' or state == 'leased' then
    delivering = delivering + 1
  else
    redis.call('SREM', P .. ':delivering', id)
  end
end
return {redis.call('ZCARD', QUEUED), redis.call('SCARD', LEASED), redis.call('XLEN', DEAD), done, oldest,
  delivering, apologised}
"""


class RedisJobQueue:
    """`JobQueue` on Redis Streams (see the module docstring for the design).

    `url` is any redis-py URL (``redis://host:6379/0``, ``unix:///run/redis.sock``). `policy` is
    the deployment's client policy (`bot.wiring` passes `REDIS_POLICY`): its timeout, at least
    `MIN_COMMAND_TIMEOUT_S`, bounds connecting, waiting for a pooled connection and each command, so
    an unreachable Redis raises `QueueUnavailable` within about that long. `retention_s` is how long
    finished jobs (and their idempotency keys and reply markers) and dead letters are kept.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "photodetective:queue",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_backoff_s: float = DEFAULT_RETRY_BACKOFF_S,
        retention_s: float = DEFAULT_RETENTION_S,
        policy: RedisPolicy = DEFAULT_REDIS,
    ) -> None:
        check_settings(max_attempts, retry_backoff_s, retention_s)
        if not prefix:
            raise ValueError("prefix must not be empty")
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self.retention_s = retention_s
        self._retention_ms = max(1, math.ceil(retention_s * 1000))
        # The one client policy, with no retries: every operation is a Lua script that is not
        # idempotent. When a reply is lost (the script ran, then the connection dropped), a retried
        # claim would lease a second job and strand the first until its visibility timeout; a retried
        # complete or fail would find its own lease gone and report it lost. `QueueUnavailable`
        # instead, and the caller decides (leases expire, enqueue is idempotent by key).
        queue_policy = replace(policy, retries=0, timeout_s=max(policy.timeout_s, MIN_COMMAND_TIMEOUT_S))
        self._redis: Redis = async_redis(url, queue_policy)
        self._closed = False
        register = self._redis.register_script
        self._enqueue = register(_PRELUDE + _ENQUEUE)
        self._claim = register(_PRELUDE + _CLAIM)
        self._extend = register(_PRELUDE + _EXTEND)
        self._complete = register(_PRELUDE + _COMPLETE)
        self._fail = register(_PRELUDE + _FAIL)
        self._release = register(_PRELUDE + _RELEASE)
        self._defer = register(_PRELUDE + _DEFER)
        self._mark_reply = register(_PRELUDE + _MARK_REPLY)
        self._mark_sent = register(_PRELUDE + _MARK_SENT)
        self._position = register(_PRELUDE + _POSITION)
        self._stats = register(_PRELUDE + _STATS)

    # -- plumbing ---------------------------------------------------------------------------

    async def _eval(self, script: AsyncScript, *args: str | int | float) -> Any:
        """Run a script, turning "Redis is not there / cannot write" into `QueueUnavailable`."""
        if self._closed:
            raise QueueClosed("the job queue is closed")
        try:
            return await script(args=[self.prefix, *args])
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise QueueUnavailable(f"redis: {error}") from error
        except redis.exceptions.ResponseError as error:
            if str(error).startswith(_UNAVAILABLE_PREFIXES):
                raise QueueUnavailable(f"redis: {error}") from error
            raise

    @property
    def client(self) -> Redis:
        """The queue's Redis client (for tests and diagnostics)."""
        return self._redis

    def _key(self, suffix: str) -> str:
        return f"{self.prefix}:{suffix}"

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._redis.aclose()

    # -- producing --------------------------------------------------------------------------

    async def enqueue(
        self, idempotency_key: str, user: str, payload: dict[str, Any], now: float
    ) -> EnqueueResult:
        check_enqueue_args(idempotency_key, user, now)
        encoded = json.dumps(payload, ensure_ascii=False, allow_nan=False)
        reply = await self._eval(self._enqueue, idempotency_key, new_job_id(), user, encoded, repr(now))
        job_id, created, ahead = _as_list(reply, 3)
        return EnqueueResult(str(job_id), created=int(created) == 1, ahead=int(ahead))

    # -- consuming --------------------------------------------------------------------------

    async def claim(self, worker_id: str, now: float, visibility_timeout_s: float) -> Lease | None:
        check_worker_id(worker_id)
        check_now(now)
        check_visibility_timeout(visibility_timeout_s)
        token = new_token()
        deadline = now + visibility_timeout_s
        reply = await self._eval(
            self._claim,
            worker_id,
            HORIZON_MS,
            _idle_for(visibility_timeout_s),
            token,
            self.max_attempts,
            repr(now),
            repr(deadline),
            EXPIRED_ERROR,
            self._retention_ms,
        )
        if reply is None:
            return None
        job_id, key, user, payload, created_at, attempt, exhausted, answer, since, tries = _as_list(reply, 10)
        return Lease(
            job_id=str(job_id),
            idempotency_key=str(key),
            user=str(user),
            payload=_decode_payload(payload),
            created_at=float(created_at),
            attempt=int(attempt),
            token=token,
            worker_id=worker_id,
            deadline=deadline,
            exhausted=int(exhausted) == 1,
            final=int(attempt) >= self.max_attempts,
            answer=str(answer) if answer else None,
            answer_since=float(since) if since else None,
            delivery_tries=int(tries),
        )

    async def extend(self, lease: Lease, now: float, visibility_timeout_s: float) -> Lease | None:
        check_now(now)
        check_visibility_timeout(visibility_timeout_s)
        deadline = now + visibility_timeout_s
        reply = await self._eval(
            self._extend, lease.job_id, lease.token, _idle_for(visibility_timeout_s), repr(deadline)
        )
        if int(reply) != 1:
            return None
        return replace(lease, deadline=deadline)

    async def complete(self, lease: Lease, now: float | None = None) -> bool:
        finished_at = time.time() if now is None else now
        check_now(finished_at)
        reply = await self._eval(
            self._complete, lease.job_id, lease.token, repr(finished_at), self._retention_ms
        )
        return int(reply) == 1

    async def fail(self, lease: Lease, error: str, now: float, retryable: bool) -> FailOutcome:
        check_now(now)
        delay_s = retry_delay_s(lease.attempt, self.retry_backoff_s)
        reply = await self._eval(
            self._fail,
            lease.job_id,
            lease.token,
            clip_error(error),
            1 if retryable else 0,
            self.max_attempts,
            HORIZON_MS - math.ceil(delay_s * 1000),
            repr(now),
            self._retention_ms,
        )
        return FailOutcome(str(reply))

    async def defer(
        self, lease: Lease, answer: str | None, error: str, now: float, delay_s: float
    ) -> FailOutcome:
        check_now(now)
        reply = await self._eval(
            self._defer,
            lease.job_id,
            lease.token,
            answer or "",
            clip_error(error),
            repr(now),
            HORIZON_MS - max(1, math.ceil(clip_delay(delay_s) * 1000)),
        )
        return FailOutcome(str(reply))

    async def release(self, lease: Lease) -> bool:
        reply = await self._eval(self._release, lease.job_id, lease.token, HORIZON_MS)
        return int(reply) == 1

    # -- reply bookkeeping ------------------------------------------------------------------

    async def mark_reply_started(
        self, job_id: str, attempt: int, now: float | None = None, takeover_after_s: float = 0.0
    ) -> bool:
        at = time.time() if now is None else now
        reply = int(await self._eval(self._mark_reply, job_id, attempt, repr(at), repr(takeover_after_s)))
        if reply < 0:
            raise JobNotFound(job_id)
        return reply == 1

    async def mark_reply_sent(self, job_id: str) -> None:
        if int(await self._eval(self._mark_sent, job_id)) < 0:
            raise JobNotFound(job_id)

    async def reply_started(self, job_id: str) -> bool:
        return await self._has_field(job_id, "reply_started")

    async def reply_sent(self, job_id: str) -> bool:
        return await self._has_field(job_id, "reply_sent")

    async def _has_field(self, job_id: str, field: str) -> bool:
        if self._closed:
            raise QueueClosed("the job queue is closed")
        try:
            found = await self._redis.hexists(self._key(f"job:{job_id}"), field)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise QueueUnavailable(f"redis: {error}") from error
        return bool(found)

    # -- observing --------------------------------------------------------------------------

    async def position(self, job_id: str) -> int | None:
        reply = int(await self._eval(self._position, job_id))
        return None if reply < 0 else reply

    async def stats(self, now: float) -> QueueStats:
        check_now(now)
        queued, in_flight, dead, done, oldest, delivering, apologised = _as_list(
            await self._eval(self._stats), 7
        )
        return QueueStats(
            queued=int(queued),
            in_flight=int(in_flight),
            dead=int(dead),
            done=int(done),
            oldest_queued_age_s=None if oldest is None else max(0.0, now - float(oldest)),
            delivering=int(delivering),
            apologised=int(apologised),
        )

    async def dead_letters(self, limit: int = 20) -> list[DeadLetter]:
        check_limit(limit)
        if limit == 0:
            return []
        if self._closed:
            raise QueueClosed("the job queue is closed")
        try:
            entries: Any = await self._redis.xrevrange(self._key("dead"), "+", "-", count=limit)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise QueueUnavailable(f"redis: {error}") from error
        return [_dead_letter(fields) for _entry_id, fields in entries]


def _idle_for(timeout_s: float) -> int:
    """The IDLE to stamp on an entry so it reaches `HORIZON_MS` idle after `timeout_s`."""
    return HORIZON_MS - max(1, math.ceil(timeout_s * 1000))


def _as_list(reply: Any, length: int) -> list[Any]:
    if not isinstance(reply, list) or len(reply) != length:
        raise QueueUnavailable(f"unexpected reply from redis: {reply!r:.200}")
    return reply


def _dead_letter(fields: dict[str, str]) -> DeadLetter:
    return DeadLetter(
        job_id=fields["job_id"],
        idempotency_key=fields["key"],
        user=fields["user"],
        error=fields["error"],
        attempts=int(fields["attempts"]),
        payload=_decode_payload(fields["payload"]),
        created_at=float(fields["created_at"]),
        died_at=float(fields["died_at"]),
    )


def _decode_payload(text: Any) -> dict[str, Any]:
    payload = json.loads(str(text))
    if not isinstance(payload, dict):
        raise QueueUnavailable(f"corrupt payload in the queue: {str(text)[:80]!r}")
    return payload
