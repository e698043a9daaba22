"""The charge rules as pure functions: what a store read goes in, what it must persist comes out.

Both stores (SQLite, Redis) read the same facts inside their atomic step (one `BEGIN IMMEDIATE`
transaction, one Lua script), hand them to `decide_charge`, and persist what it decided. So the
order of the limits, the admin bypass, duplicates and the refund semantics described on
`QuotaStore` are written once, here. Redis cannot call Python from inside its script, so its Lua
is a transcription of `decide_charge`; tests/contract/test_quota_contract.py runs this function and
both stores over the same scenarios and requires identical answers, which is what keeps the
transcription honest.

Nothing here does I/O or reads a clock: `now` and the stored state are arguments, so the rules are
testable by table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from bot.quota.base import ceil_seconds, quota_day
from bot.quota.models import ChargeResult, QuotaPolicy, Refusal


class JobState(enum.StrEnum):
    """The life of a charged job id: active until `finish`, then finished or refunded."""

    ACTIVE = "active"
    FINISHED = "finished"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class StoredJob:
    """A job id the store still remembers, with the grant it was given (repeated for duplicates)."""

    state: JobState
    remaining: int
    limit: int
    resets_at: datetime


@dataclass(frozen=True, slots=True)
class StoredCounts:
    """The user's and the day's counters as the store holds them at `now`.

    `active` counts the user's running jobs whose lease has not run out, `first_lease_end` is the
    earliest lease end among them (epoch seconds); `recent` counts the user's grants inside the
    burst window and `first_recent` is the oldest of them. `used` and `global_calls` are net of
    refunds; `extra` is what an admin granted for this day.
    """

    blocked: bool = False
    used: int = 0
    extra: int = 0
    global_calls: int = 0
    active: int = 0
    first_lease_end: float | None = None
    recent: int = 0
    first_recent: float | None = None


@dataclass(frozen=True, slots=True)
class ChargeDecision:
    """What `decide_charge` decided: the answer, and so what the store must write.

    `charge` (a new grant: count the photo and the calls, start a slot and a rate entry, remember
    the job as active with `result`'s numbers), `result.reason` set (count one refusal for it,
    nothing else), or a duplicate (write nothing).
    """

    result: ChargeResult

    @property
    def charge(self) -> bool:
        return self.result.granted and not self.result.duplicate

    @property
    def refusal(self) -> Refusal | None:
        return self.result.reason


def decide_charge(
    job: StoredJob | None,
    counts: StoredCounts,
    *,
    calls: int,
    now: datetime,
    policy: QuotaPolicy,
    admin: bool,
) -> ChargeDecision:
    """Decide one `try_charge` (the rules are described on `bot.quota.base.QuotaStore`).

    A job whose grant stands (active or finished) is a duplicate and answers with that grant; a
    refunded job is a fresh check (its refund no longer protects it). Then, the first that fails
    is the reason: BLOCKED (admins too), and, unless `admin`, DAILY_LIMIT, GLOBAL_CAP, CONCURRENCY
    (retry when the oldest lease ends), RATE (retry when the oldest grant leaves the window).
    """
    if job is not None and job.state is not JobState.REFUNDED:
        return ChargeDecision(
            ChargeResult(
                granted=True,
                reason=None,
                remaining=job.remaining,
                limit=job.limit,
                resets_at=job.resets_at,
                duplicate=True,
            )
        )
    _, resets_at = quota_day(now, policy)
    ts = now.timestamp()
    limit = policy.daily_limit + counts.extra
    reason: Refusal | None = None
    retry_after: int | None = None
    if counts.blocked:
        reason = Refusal.BLOCKED
    elif admin:
        pass  # admins skip every limit below; they are still charged and counted
    elif counts.used + 1 > limit:
        reason = Refusal.DAILY_LIMIT
    elif policy.global_daily_calls is not None and counts.global_calls + calls > policy.global_daily_calls:
        reason = Refusal.GLOBAL_CAP
    elif counts.active >= policy.max_concurrent:
        reason = Refusal.CONCURRENCY
        first = counts.first_lease_end
        retry_after = ceil_seconds(first - ts) if counts.active and first is not None else 1
    elif counts.recent >= policy.burst_limit:
        reason = Refusal.RATE
        first = counts.first_recent
        retry_after = (
            ceil_seconds(first + policy.burst_window_s - ts) if counts.recent and first is not None else 1
        )
    if reason is not None:
        return ChargeDecision(
            ChargeResult(
                granted=False,
                reason=reason,
                remaining=max(0, limit - counts.used),
                limit=limit,
                resets_at=resets_at,
                retry_after=retry_after,
            )
        )
    return ChargeDecision(
        ChargeResult(
            granted=True,
            reason=None,
            remaining=max(0, limit - counts.used - 1),
            limit=limit,
            resets_at=resets_at,
        )
    )


def counts_in_burst_window(state: JobState) -> bool:
    """Whether a grant still takes a place in its user's burst window (while it is inside it).

    A refund says the photo failed for a reason that is not held against the user (the
    recognizer was down, or a damaged file under the default policy), so it gives back its place
    in the window as well as its photo: otherwise a user whose photos failed would be told "too
    fast" when sending them again. A finished photo keeps its place until it leaves the window.
    The trade-off: under the default policy a stream of files that are not photos is held back
    only by the concurrency limit; `PHOTODETECTIVE_QUOTA_CHARGE_USER_ERRORS=true` keeps such
    charges, and with them their places in the window.
    Both stores read this: SQLite counts only such rows, Redis drops a refunded job from its
    window zset in the finish script.
    """
    return state is not JobState.REFUNDED


def settle(state: JobState | None, *, refund: bool) -> JobState | None:
    """The state `finish` moves a job to, or None when this `finish` must change nothing.

    Only an active charge is settled, once: a finished or refunded job (or a forgotten one) is left
    alone, so a second `finish` neither refunds twice nor turns a refund into a success.
    """
    if state is not JobState.ACTIVE:
        return None
    return JobState.REFUNDED if refund else JobState.FINISHED
