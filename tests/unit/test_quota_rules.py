"""The charge rules as a table: `decide_charge` and `settle` over stored state, no store involved.

The contract tests check both stores against these same functions; here each rule is pinned by
itself, including its order (the first limit that fails is the reason).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.quota.models import QuotaPolicy, Refusal
from bot.quota.rules import JobState, StoredCounts, StoredJob, decide_charge, settle

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
TS = NOW.timestamp()
MIDNIGHT = datetime(2025, 6, 11, tzinfo=UTC)
POLICY = QuotaPolicy(daily_limit=3, max_concurrent=2, burst_limit=2, burst_window_s=60, global_daily_calls=10)
STANDING = StoredJob(JobState.FINISHED, remaining=1, limit=3, resets_at=MIDNIGHT)

# (what is stored, admin, calls) -> (reason or None for a grant, retry_after)
TABLE = [
    ("fresh user", StoredCounts(), False, 1, None, None),
    ("last photo of the day", StoredCounts(used=2), False, 1, None, None),
    ("daily limit", StoredCounts(used=3), False, 1, Refusal.DAILY_LIMIT, None),
    ("extra granted lifts it", StoredCounts(used=3, extra=1), False, 1, None, None),
    ("global cap", StoredCounts(global_calls=9), False, 2, Refusal.GLOBAL_CAP, None),
    ("free photo past the cap", StoredCounts(global_calls=10), False, 0, None, None),
    ("concurrency", StoredCounts(active=2, first_lease_end=TS + 30.2), False, 1, Refusal.CONCURRENCY, 31),
    ("rate", StoredCounts(recent=2, first_recent=TS - 50), False, 1, Refusal.RATE, 10),
    ("blocked first", StoredCounts(blocked=True, used=3, active=2), False, 1, Refusal.BLOCKED, None),
    ("blocked admin", StoredCounts(blocked=True), True, 1, Refusal.BLOCKED, None),
    (
        "admin past every limit",
        StoredCounts(used=9, global_calls=99, active=5, recent=5),
        True,
        1,
        None,
        None,
    ),
    ("daily before global", StoredCounts(used=3, global_calls=10), False, 1, Refusal.DAILY_LIMIT, None),
    (
        "global before concurrency",
        StoredCounts(global_calls=10, active=2),
        False,
        1,
        Refusal.GLOBAL_CAP,
        None,
    ),
    ("concurrency before rate", StoredCounts(active=2, recent=2), False, 1, Refusal.CONCURRENCY, 1),
]


@pytest.mark.parametrize(
    ("case", "counts", "admin", "calls", "reason", "retry"), TABLE, ids=[t[0] for t in TABLE]
)
def test_each_rule(
    case: str, counts: StoredCounts, admin: bool, calls: int, reason: Refusal | None, retry: int | None
) -> None:
    decision = decide_charge(None, counts, calls=calls, now=NOW, policy=POLICY, admin=admin)
    result = decision.result
    assert (result.reason, result.retry_after) == (reason, retry)
    assert result.granted is (reason is None)
    assert decision.charge is (reason is None)
    assert decision.refusal is reason
    assert result.resets_at == MIDNIGHT
    limit = POLICY.daily_limit + counts.extra
    assert result.limit == limit
    assert result.remaining == max(0, limit - counts.used - (1 if reason is None else 0))


def test_a_standing_grant_is_a_duplicate_whatever_the_counters_say() -> None:
    for state in (JobState.ACTIVE, JobState.FINISHED):
        job = StoredJob(state, remaining=1, limit=3, resets_at=MIDNIGHT)
        full = StoredCounts(blocked=True, used=99, active=99)
        decision = decide_charge(job, full, calls=1, now=NOW, policy=POLICY, admin=False)
        assert decision.result.duplicate
        assert decision.result.granted
        assert (decision.result.remaining, decision.result.limit) == (1, 3)
        assert not decision.charge  # nothing to persist
        assert decision.refusal is None


def test_a_refunded_job_is_checked_afresh() -> None:
    refunded = StoredJob(JobState.REFUNDED, remaining=2, limit=3, resets_at=MIDNIGHT)
    over = decide_charge(refunded, StoredCounts(used=3), calls=1, now=NOW, policy=POLICY, admin=False)
    assert over.result.reason is Refusal.DAILY_LIMIT
    again = decide_charge(refunded, StoredCounts(used=1), calls=1, now=NOW, policy=POLICY, admin=False)
    assert again.charge
    assert not again.result.duplicate
    assert again.result.remaining == 1


def test_settle_acts_once_on_an_active_charge_only() -> None:
    assert settle(JobState.ACTIVE, refund=True) is JobState.REFUNDED
    assert settle(JobState.ACTIVE, refund=False) is JobState.FINISHED
    for state in (JobState.FINISHED, JobState.REFUNDED, None):
        assert settle(state, refund=True) is None
        assert settle(state, refund=False) is None
