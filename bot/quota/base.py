"""The interface both quota stores implement, their typed errors, and the calendar arithmetic they share.

The semantics live here in prose, and as code in `bot.quota.rules` (the pure charge decision both
stores persist), so the two implementations (SQLite and Redis) are checked against one
description and one contract test module (tests/contract/test_quota_contract.py).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from datetime import date, datetime, time, timedelta
from types import TracebackType
from typing import Self

from bot.quota.models import ChargeResult, QuotaPolicy, Stats, Usage


class QuotaStoreError(Exception):
    """Base class of the errors a quota store raises on purpose."""


class QuotaStoreUnavailable(QuotaStoreError):
    """The store cannot be reached (Redis down, SQLite locked for too long).

    The application must refuse new work with "try again shortly" rather than let it through
    uncounted; the store recovers by itself once the backend answers again.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("Photo quotas cannot be checked right now; please try again shortly.")
        self.detail = detail


def require_aware(now: datetime) -> None:
    """Naive datetimes would silently be read as local time; the day boundary must not depend on the host."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be an aware datetime")


def quota_day(now: datetime, policy: QuotaPolicy) -> tuple[date, datetime]:
    """The quota day `now` falls in, and the aware instant it ends (the next midnight in the zone).

    Midnight is built with `datetime.combine` in the zone: when a DST change skips local midnight,
    zoneinfo maps it to the instant of the change, which is when the new day really starts.
    """
    require_aware(now)
    zone = policy.zone
    day = now.astimezone(zone).date()
    resets_at = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return day, resets_at


def ceil_seconds(seconds: float) -> int:
    """Round a wait up to whole seconds, at least 1, so "retry in 0 s" is never said."""
    return max(1, math.ceil(seconds - 1e-9))


def check_charge_args(user: str, job_id: str, calls: int) -> None:
    """Reject arguments that would corrupt counters (negative calls) or collide in keys (empty ids)."""
    if not user:
        raise ValueError("user must not be empty")
    if not job_id:
        raise ValueError("job_id must not be empty")
    if calls < 0:
        raise ValueError("calls must be >= 0")


class QuotaStore(ABC):
    """Per-user quotas and abuse control, checked and charged atomically.

    Limits, checked in this order for `try_charge` (the first that fails is the reason):

    1. BLOCKED: the user is on the blocklist. Applies to admins too (blocking is deliberate).
    2. DAILY_LIMIT: photos charged today (net of refunds) + 1 > `daily_limit` + extra granted
       for today. The day ends at midnight in `policy.timezone`.
    3. GLOBAL_CAP: billed recognizer calls charged today (all users, net of refunds) + `calls`
       > `global_daily_calls`. A charge with `calls=0` (offline recognizer) never hits it.
    4. CONCURRENCY: the user's running jobs >= `max_concurrent`. A running job holds a slot
       from its grant until `finish`, or until its lease of `max_job_s` seconds runs out, so a
       job whose process died stops counting after that (its charge is kept, not refunded).
    5. RATE: sliding window — grants to the user in the last `burst_window_s` seconds
       >= `burst_limit`. Only standing grants count (not refusals, not duplicates): a refund
       takes the photo out of the window too (`rules.counts_in_burst_window`), so failures
       that were given back never make the user wait. `retry_after` is when the oldest one
       leaves it. A job id holds one place in the window, at its latest grant: a re-charge after
       a refund (see Idempotency) puts it back there.

    Admins (`admin=True`) skip 2-5 but are still charged and counted (daily usage, global
    calls, stats, a concurrency slot).
    Refusals change nothing but the refusal counters in `stats`.

    Idempotency: a `job_id` whose grant still stands (active or finished without refund, and
    still remembered, `keep_days`) is answered with that grant and `duplicate=True`, without
    charging again. A refused job_id is not remembered: asking again is a fresh check.

    A refunded job_id is not remembered as granted either: charging it again is a fresh
    check-and-charge on the day `now` falls in (every limit applies; on refusal the usual
    refusal, and the job stays refunded). Otherwise a platform redelivering a message whose
    charge was given back (the queue failed right after charging, or the job failed on our side)
    would be "granted" for free, past the daily limit and the cost cap. On grant the job is
    charged anew (`duplicate=False`), counts as a new charge in `stats` (the earlier refund stays
    counted) and is active again, so the next `finish` settles this new charge once.

    Every method takes `now` (aware) from the caller so tests can drive the clock; `finish` needs
    none because a job remembers its day.
    """

    @abstractmethod
    async def try_charge(
        self, user: str, job_id: str, calls: int, now: datetime, policy: QuotaPolicy, admin: bool = False
    ) -> ChargeResult:
        """Check every limit and, if all pass, charge one photo and `calls` billed calls, atomically."""

    @abstractmethod
    async def finish(self, job_id: str, refund: bool) -> bool:
        """Release the job's concurrency slot; with `refund`, give back its photo and its calls.

        Refund when the job failed for a reason that is not the user's (recognizer down).
        Idempotent: only the first `finish` of a charge does anything; returns whether this one did.
        An unknown (or forgotten) job id returns False. A refunded job that `try_charge` charged
        again is a new charge: its first `finish` settles it (refunding that day's photo and
        calls), later ones return False again.
        """

    @abstractmethod
    async def usage(self, user: str, now: datetime, policy: QuotaPolicy) -> Usage:
        """The user's quota day so far, for `/quota` and for refusal messages."""

    @abstractmethod
    async def grant(self, user: str, extra: int, now: datetime, policy: QuotaPolicy) -> Usage:
        """Add `extra` (> 0) photos to the user's limit for the quota day `now` falls in only."""

    @abstractmethod
    async def block(self, user: str) -> bool:
        """Put the user on the blocklist (until `unblock`); returns False if already there."""

    @abstractmethod
    async def unblock(self, user: str) -> bool:
        """Take the user off the blocklist; returns False if they were not on it."""

    @abstractmethod
    async def stats(self, now: datetime, policy: QuotaPolicy, top: int = 10) -> Stats:
        """Today's totals for operators (`top` users by net photos)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the store must not be used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
