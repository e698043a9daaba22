"""The cloud account's rate limit, shared by every worker: one schedule of call slots per API.

Rekognition counts its quota (calls per second) per API and per account, not per process, so N
replicas that each retry into ThrottlingException waste attempts and fail photos. Instead every
call first reserves the next free slot of its API in a schedule that all workers share, and sleeps
until that slot comes (GCRA: the stored value is the time the next call may start, pushed on by
1/TPS at each reservation). The reservation is one atomic step, so two workers never take the same
slot: a Lua script in Redis (the clock is Redis's own TIME, one clock for every host), or a
`BEGIN IMMEDIATE` transaction in a SQLite file for the workers of one host (its wall clock).

A caller never waits longer than `max_wait`: past that it gets `RecognizerThrottled` without
reserving anything, and the job goes back to the queue to be retried later instead of holding a
worker slot.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import redis

from bot.storage.redis import DEFAULT_REDIS, RedisPolicy, sync_redis
from bot.storage.sqlite import DEFAULT_SQLITE, SqliteFile, SqlitePolicy
from core.errors import RecognizerThrottled

DEFAULT_MAX_WAIT = 10.0


class SlotSchedule(Protocol):
    """Where the next free slot of each API is kept; `reserve` takes one slot atomically."""

    def reserve(self, operation: str, interval: float, max_wait: float) -> float | None:
        """Seconds to wait before the reserved slot, or None (nothing reserved) past `max_wait`."""
        ...


class RateGate:
    """`core.recognizers.base.CallGate` over a shared schedule: at most `tps` calls per second per API.

    `sleep` is injectable so unit tests can run the schedule without waiting for real time.
    """

    def __init__(
        self,
        schedule: SlotSchedule,
        tps: float,
        *,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if tps <= 0:
            raise ValueError("tps must be positive")
        if max_wait < 0:
            raise ValueError("max_wait must not be negative")
        self._schedule = schedule
        self._interval = 1.0 / tps
        self._max_wait = max_wait
        self._sleep = sleep

    def wait_turn(self, operation: str) -> None:
        """Take the API's next slot and sleep until it; refuse rather than wait past `max_wait`."""
        wait = self._schedule.reserve(operation, self._interval, self._max_wait)
        if wait is None:
            raise RecognizerThrottled(
                f"The recognizer's rate limit for {operation} is booked for more than "
                f"{self._max_wait:g} s ahead; the photo will be retried."
            )
        if wait > 0:
            self._sleep(wait)


# KEYS[1]: the API's key. ARGV: interval (s), max_wait (s).
# Returns the wait in seconds as a string ("-1" = refused): Lua numbers would become integers.
RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free < now then next_free = now end
local wait = next_free - now
if wait > max_wait then return '-1' end
local after = next_free + interval
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX', math.ceil((after - now) * 1000) + 1000)
return string.format('%.6f', wait)
"""


class RedisSlotSchedule:
    """The schedule for several hosts, in Redis; keys expire once their slots are in the past."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "photodetective:rate:",
        policy: RedisPolicy = DEFAULT_REDIS,
    ) -> None:
        self.client = sync_redis(url, policy)
        self._reserve = self.client.register_script(RESERVE_LUA)
        self._prefix = prefix

    def reserve(self, operation: str, interval: float, max_wait: float) -> float | None:
        """One script call: Redis runs it without interleaving, so the slot is this caller's alone.

        An unreachable Redis is a throttling answer too (the job is retried later), not a crash.
        """
        try:
            answer = self._reserve(keys=[self._prefix + operation], args=[repr(interval), repr(max_wait)])
        except redis.RedisError as error:
            raise RecognizerThrottled(
                f"The shared rate limit could not be reached ({type(error).__name__})."
            ) from error
        wait = float(answer.decode() if isinstance(answer, bytes) else answer)
        return None if wait < 0 else wait

    def close(self) -> None:
        """Drop the connection pool."""
        self.client.close()


class SqliteSlotSchedule:
    """The schedule for the workers of one host, in a SQLite file they all open.

    `BEGIN IMMEDIATE` takes the write lock before reading, so two processes cannot read the same
    next slot; the wall clock is shared by every process of the host. The file is opened like every
    store's (`bot.storage.sqlite.SqliteFile`), so workers starting together all get it.
    """

    def __init__(
        self,
        path: Path,
        *,
        policy: SqlitePolicy = DEFAULT_SQLITE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._file = SqliteFile(path, policy, schema=_create_slots)
        self._clock = clock

    def reserve(self, operation: str, interval: float, max_wait: float) -> float | None:
        """Read, decide and write the API's next slot inside one write transaction.

        A file locked past the busy timeout (or unreadable) is a throttling answer: the job is
        retried later rather than failed.
        """
        try:
            with self._file.transaction(write=True) as db:
                now = self._clock()
                row = db.execute("SELECT next_free FROM slots WHERE operation = ?", (operation,)).fetchone()
                next_free = max(float(row[0]) if row else 0.0, now)
                wait = next_free - now
                if wait > max_wait:
                    return None
                db.execute(
                    "INSERT INTO slots (operation, next_free) VALUES (?, ?) "
                    "ON CONFLICT(operation) DO UPDATE SET next_free = excluded.next_free",
                    (operation, next_free + interval),
                )
                return wait
        except sqlite3.Error as error:
            raise RecognizerThrottled(f"The shared rate limit is busy ({error}).") from error

    def close(self) -> None:
        """Nothing to release: each reservation opens and closes its own connection."""


def _create_slots(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS slots (operation TEXT PRIMARY KEY, next_free REAL)")
