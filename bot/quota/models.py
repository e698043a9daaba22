"""Value types of the quota stores: the policy that comes in and the answers that go out.

Both stores (SQLite and Redis) take the same `QuotaPolicy` and return the same result types, so
the application can write its messages ("you have 3 photos left today, back at midnight") without
knowing which store is behind it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Refusal(enum.StrEnum):
    """Why a charge was refused, in the order the limits are checked."""

    BLOCKED = "BLOCKED"
    """The user is on the blocklist (checked first, even for admins)."""
    DAILY_LIMIT = "DAILY_LIMIT"
    """The user has used the whole daily quota (including extra granted for today)."""
    GLOBAL_CAP = "GLOBAL_CAP"
    """The installation's daily budget of billed recognizer calls would be exceeded."""
    CONCURRENCY = "CONCURRENCY"
    """The user already has `max_concurrent` jobs running."""
    RATE = "RATE"
    """The user sent more than `burst_limit` photos within the last `burst_window_s` seconds."""


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """The limits, passed in on every call so the stores never read settings themselves.

    `global_daily_calls=None` switches the cost guard off (for instance with an offline recognizer).
    `max_job_s` is the lease of a concurrency slot: a job that is never finished (its process died)
    stops counting against the user's concurrency after that many seconds.
    """

    daily_limit: int = 20
    max_concurrent: int = 2
    burst_limit: int = 5
    burst_window_s: float = 60.0
    global_daily_calls: int | None = 1000
    timezone: str = "UTC"
    max_job_s: float = 600.0

    def __post_init__(self) -> None:
        """Refuse nonsense early, at settings time, rather than inside a Lua script later."""
        for name in ("daily_limit", "max_concurrent", "burst_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"QuotaPolicy.{name} must be >= 0")
        if self.global_daily_calls is not None and self.global_daily_calls < 0:
            raise ValueError("QuotaPolicy.global_daily_calls must be >= 0 or None")
        if not self.burst_window_s > 0:
            raise ValueError("QuotaPolicy.burst_window_s must be > 0")
        if not self.max_job_s > 0:
            raise ValueError("QuotaPolicy.max_job_s must be > 0")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"QuotaPolicy.timezone {self.timezone!r} is not a known time zone") from error

    @property
    def zone(self) -> ZoneInfo:
        """The zone whose midnight ends the quota day (ZoneInfo caches instances itself)."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """The answer to `try_charge`, with what a clear message to the user needs.

    `remaining` and `limit` are the user's daily numbers (after this charge, when granted);
    `resets_at` is the next midnight in the policy's zone; `retry_after` (whole seconds, rounded
    up) is set for RATE and CONCURRENCY only — for CONCURRENCY it is the worst case, when the
    oldest running job's lease runs out; usually a slot frees much sooner.
    `duplicate` is true when this job id had already been granted and that grant was not
    refunded: nothing was charged again, and the fields repeat the standing grant. A refunded
    job id is charged afresh (`duplicate` false; see `QuotaStore`, Idempotency).
    """

    granted: bool
    reason: Refusal | None
    remaining: int
    limit: int
    resets_at: datetime
    retry_after: int | None = None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    """One user's day so far: what `/quota` shows."""

    user: str
    day: date
    used: int
    limit: int
    extra: int
    remaining: int
    resets_at: datetime
    blocked: bool
    active_jobs: int

    @classmethod
    def from_counts(
        cls,
        user: str,
        day: date,
        resets_at: datetime,
        policy: QuotaPolicy,
        *,
        used: int,
        extra: int,
        blocked: bool,
        active_jobs: int,
    ) -> Usage:
        """Derive the limit and what is left from the stored counts, so both stores report alike.

        The daily limit grows by today's granted extra, and `remaining` never goes below zero even
        when a policy change lowered the limit under what was already used.
        """
        limit = policy.daily_limit + extra
        return cls(
            user=user,
            day=day,
            used=used,
            limit=limit,
            extra=extra,
            remaining=max(0, limit - used),
            resets_at=resets_at,
            blocked=blocked,
            active_jobs=active_jobs,
        )


@dataclass(frozen=True, slots=True)
class UserCount:
    """One line of the top-users table: photos charged today, net of refunds."""

    user: str
    used: int


@dataclass(frozen=True, slots=True)
class Stats:
    """Today's totals for operators: what was charged, refunded and refused, and the cost counter.

    `charged` counts every grant (admins included, duplicates not); `refunded` counts the grants
    given back later; `global_calls` is net of refunds, the number the cost guard compares with
    `global_cap`; `top_users` is sorted by net photos, most first.
    """

    day: date
    charged: int
    refunded: int
    refusals: Mapping[Refusal, int]
    global_calls: int
    global_cap: int | None
    top_users: tuple[UserCount, ...] = field(default_factory=tuple)

    @property
    def totals_text(self) -> str:
        """ "12 photos charged, 1 refunded; recognizer calls 40 (cap 1000)": the first line of every view."""
        cap = "no cap" if self.global_cap is None else f"cap {self.global_cap}"
        return (
            f"{self.charged} photos charged, {self.refunded} refunded; "
            f"recognizer calls {self.global_calls} ({cap})"
        )

    @property
    def refusals_text(self) -> str:
        """ "daily_limit 3, rate 1", or "none": today's refusals by reason."""
        counts = [f"{reason.lower()} {count}" for reason, count in self.refusals.items() if count]
        return ", ".join(counts) or "none"
