"""One contract for both quota stores: every test runs against SQLite (in tmp_path) and a real Redis.

The clock is fake (`now` is passed in), so windows, leases and midnights are crossed by arithmetic,
not by sleeping.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.quota import (
    ChargeResult,
    QuotaPolicy,
    QuotaStore,
    RedisQuotaStore,
    Refusal,
    SQLiteQuotaStore,
    Usage,
    UserCount,
    quota_day,
)
from bot.quota.rules import (
    JobState,
    StoredCounts,
    StoredJob,
    counts_in_burst_window,
    decide_charge,
    settle,
)

T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")

# Only the daily limit binds unless a test says otherwise.
LOOSE = QuotaPolicy(daily_limit=20, max_concurrent=100, burst_limit=100, global_daily_calls=None)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QuotaStore]:
    quota_store: QuotaStore
    if request.param == "sqlite":
        quota_store = SQLiteQuotaStore(tmp_path / "data" / "quota.sqlite3")
    else:
        server = request.getfixturevalue("redis_server")
        quota_store = RedisQuotaStore.from_url(server.url)
    yield quota_store
    await quota_store.close()


async def charge_many(
    store: QuotaStore, user: str, count: int, now: datetime, policy: QuotaPolicy, prefix: str = "job"
) -> list[ChargeResult]:
    """Charge and finish `count` jobs one after another (so concurrency never binds)."""
    results = []
    for index in range(count):
        job_id = f"{user}:{prefix}:{index}"
        result = await store.try_charge(user, job_id, 1, now, policy)
        results.append(result)
        if result.granted:
            await store.finish(job_id, refund=False)
    return results


async def test_grants_up_to_the_daily_limit_then_refuses_until_midnight(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=3, max_concurrent=100, burst_limit=100)
    results = await charge_many(store, "alice", 4, T0, policy)

    assert [r.granted for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    refused = results[-1]
    assert refused.reason is Refusal.DAILY_LIMIT
    assert refused.limit == 3
    assert refused.retry_after is None
    assert refused.resets_at == datetime(2025, 6, 11, tzinfo=UTC)
    assert refused.resets_at.tzinfo is not None

    usage = await store.usage("alice", T0, policy)
    assert (usage.used, usage.limit, usage.remaining, usage.extra) == (3, 3, 0, 0)
    assert usage.day == date(2025, 6, 10)
    # Another user is not affected.
    assert (await store.try_charge("bob", "bob:1", 1, T0, policy)).granted


async def test_day_rolls_over_at_midnight_in_the_configured_zone(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=1, max_concurrent=100, burst_limit=100, timezone="Europe/Berlin")
    before = datetime(2025, 6, 10, 21, 59, 59, tzinfo=UTC)  # 23:59:59 in Berlin (CEST)
    after = datetime(2025, 6, 10, 22, 0, 0, tzinfo=UTC)  # 00:00:00 in Berlin

    first = await store.try_charge("alice", "a1", 1, before, policy)
    assert first.granted
    assert first.resets_at == datetime(2025, 6, 11, tzinfo=BERLIN) == after
    await store.finish("a1", refund=False)

    late = await store.try_charge("alice", "a2", 1, before + timedelta(milliseconds=500), policy)
    assert late.reason is Refusal.DAILY_LIMIT
    assert late.resets_at == after

    next_day = await store.try_charge("alice", "a3", 1, after, policy)
    assert next_day.granted
    assert next_day.remaining == 0
    assert next_day.resets_at == datetime(2025, 6, 12, tzinfo=BERLIN)
    usage = await store.usage("alice", after, policy)
    assert (usage.day, usage.used) == (date(2025, 6, 11), 1)
    # In UTC it is still June 10th: a UTC policy sees the other day's counter.
    assert (await store.usage("alice", after, QuotaPolicy(daily_limit=1))).used == 1
    assert (await store.usage("alice", before, policy)).used == 1


async def test_resets_at_follows_daylight_saving_changes(store: QuotaStore) -> None:
    policy = QuotaPolicy(timezone="Europe/Berlin")
    # 2025-03-30 is 23 hours long in Berlin: midnight before is CET (+1), midnight after is CEST (+2).
    start = await store.try_charge("alice", "dst1", 1, datetime(2025, 3, 29, 12, tzinfo=UTC), policy)
    assert start.resets_at == datetime(2025, 3, 29, 23, tzinfo=UTC)
    end = await store.try_charge("alice", "dst2", 1, datetime(2025, 3, 30, 12, tzinfo=UTC), policy)
    assert end.resets_at == datetime(2025, 3, 30, 22, tzinfo=UTC)
    # Subtract as instants: Python subtracts wall clocks when both sides share one tzinfo.
    assert end.resets_at.astimezone(UTC) - start.resets_at.astimezone(UTC) == timedelta(hours=23)
    assert end.resets_at.utcoffset() == timedelta(hours=2)


async def test_concurrency_limit_and_release_by_finish(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=20, max_concurrent=2, burst_limit=100, max_job_s=300)
    assert (await store.try_charge("alice", "c1", 1, T0, policy)).granted
    assert (await store.try_charge("alice", "c2", 1, T0 + timedelta(seconds=10), policy)).granted
    assert (await store.usage("alice", T0 + timedelta(seconds=20), policy)).active_jobs == 2

    busy = await store.try_charge("alice", "c3", 1, T0 + timedelta(seconds=20), policy)
    assert busy.reason is Refusal.CONCURRENCY
    assert busy.retry_after == 280  # worst case: when c1's lease runs out
    assert busy.remaining == 18
    # Other users have their own slots.
    assert (await store.try_charge("bob", "b1", 1, T0 + timedelta(seconds=20), policy)).granted

    assert await store.finish("c1", refund=False)
    freed = await store.try_charge("alice", "c3", 1, T0 + timedelta(seconds=21), policy)
    assert freed.granted
    assert freed.remaining == 17  # c1 was finished, not refunded


async def test_a_slot_whose_job_never_finishes_expires_after_its_lease(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=20, max_concurrent=1, burst_limit=100, max_job_s=300)
    assert (await store.try_charge("alice", "dead", 1, T0, policy)).granted  # its process dies
    still = await store.try_charge("alice", "next", 1, T0 + timedelta(seconds=299), policy)
    assert still.reason is Refusal.CONCURRENCY
    assert still.retry_after == 1

    later = T0 + timedelta(seconds=300)
    assert (await store.usage("alice", later, policy)).active_jobs == 0
    assert (await store.try_charge("alice", "next", 1, later, policy)).granted
    # The expired job keeps its charge and can still be finished (and refunded) late.
    assert (await store.usage("alice", later, policy)).used == 2
    assert await store.finish("dead", refund=True)
    assert (await store.usage("alice", later, policy)).used == 1


async def test_burst_rate_is_a_sliding_window(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=20, max_concurrent=100, burst_limit=3, burst_window_s=60)
    for offset in (0, 10, 20):
        result = await store.try_charge("alice", f"r{offset}", 1, T0 + timedelta(seconds=offset), policy)
        assert result.granted

    too_fast = await store.try_charge("alice", "r30", 1, T0 + timedelta(seconds=30), policy)
    assert too_fast.reason is Refusal.RATE
    assert too_fast.retry_after == 30  # the photo of T0 leaves the window at T0 + 60
    almost = await store.try_charge("alice", "r59", 1, T0 + timedelta(seconds=59.5), policy)
    assert almost.reason is Refusal.RATE
    assert almost.retry_after == 1

    # Sliding, not fixed: at T0+60 only the first photo has left, so exactly one more fits.
    assert (await store.try_charge("alice", "r60", 1, T0 + timedelta(seconds=60), policy)).granted
    again = await store.try_charge("alice", "r61", 1, T0 + timedelta(seconds=61), policy)
    assert again.reason is Refusal.RATE
    assert again.retry_after == 9
    # Refusals did not count against the window or the day.
    assert (await store.usage("alice", T0 + timedelta(seconds=61), policy)).used == 4
    assert (await store.try_charge("bob", "b1", 1, T0 + timedelta(seconds=61), policy)).granted


async def test_global_cap_counts_billed_calls_of_everyone(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=20, max_concurrent=100, burst_limit=100, global_daily_calls=5)
    assert (await store.try_charge("alice", "g1", 3, T0, policy)).granted
    over = await store.try_charge("bob", "g2", 3, T0, policy)
    assert over.reason is Refusal.GLOBAL_CAP
    assert over.remaining == 20  # bob's own quota is untouched
    assert over.resets_at == datetime(2025, 6, 11, tzinfo=UTC)
    assert (await store.try_charge("bob", "g3", 2, T0, policy)).granted  # exactly at the cap
    assert (await store.try_charge("carol", "g4", 1, T0, policy)).reason is Refusal.GLOBAL_CAP
    assert (await store.try_charge("carol", "g5", 0, T0, policy)).granted  # offline: no billed call

    assert (await store.stats(T0, policy)).global_calls == 5
    assert await store.finish("g1", refund=True)  # gives back alice's 3 calls
    assert (await store.stats(T0, policy)).global_calls == 2
    assert (await store.try_charge("carol", "g6", 3, T0, policy)).granted
    # A new day has a new budget.
    tomorrow = T0 + timedelta(days=1)
    assert (await store.try_charge("dave", "g7", 5, tomorrow, policy)).granted
    assert (await store.stats(tomorrow, policy)).global_calls == 5


async def test_block_and_unblock(store: QuotaStore) -> None:
    assert await store.block("mallory")
    assert not await store.block("mallory")
    refused = await store.try_charge("mallory", "m1", 1, T0, LOOSE)
    assert refused.reason is Refusal.BLOCKED
    assert (await store.try_charge("mallory", "m2", 1, T0, LOOSE, admin=True)).reason is Refusal.BLOCKED
    usage = await store.usage("mallory", T0, LOOSE)
    assert usage.blocked
    assert usage.used == 0

    assert await store.unblock("mallory")
    assert not await store.unblock("mallory")
    assert not (await store.usage("mallory", T0, LOOSE)).blocked
    assert (await store.try_charge("mallory", "m1", 1, T0, LOOSE)).granted  # a refused id is not remembered


async def test_admins_bypass_every_limit_but_are_counted(store: QuotaStore) -> None:
    strict = QuotaPolicy(daily_limit=1, max_concurrent=1, burst_limit=1, global_daily_calls=0)
    for index in range(3):
        result = await store.try_charge("root", f"adm{index}", 2, T0, strict, admin=True)
        assert result.granted
        assert result.remaining == 0

    usage = await store.usage("root", T0, strict)
    assert (usage.used, usage.active_jobs) == (3, 3)
    stats = await store.stats(T0, strict)
    assert (stats.charged, stats.global_calls) == (3, 6)
    assert stats.top_users == (UserCount("root", 3),)
    # The same user without admin rights is held to the limits.
    assert (await store.try_charge("root", "plain", 0, T0, strict)).reason is Refusal.DAILY_LIMIT


async def test_grant_adds_extra_quota_for_that_day_only(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=2, max_concurrent=100, burst_limit=100)
    await charge_many(store, "alice", 2, T0, policy)
    assert (await store.try_charge("alice", "x", 1, T0, policy)).reason is Refusal.DAILY_LIMIT

    usage = await store.grant("alice", 3, T0, policy)
    assert (usage.used, usage.extra, usage.limit, usage.remaining) == (2, 3, 5, 3)
    granted = await store.try_charge("alice", "x", 1, T0, policy)
    assert granted.granted
    assert (granted.limit, granted.remaining) == (5, 2)
    assert (await store.grant("alice", 1, T0, policy)).limit == 6

    tomorrow = await store.usage("alice", T0 + timedelta(days=1), policy)
    assert (tomorrow.used, tomorrow.extra, tomorrow.limit) == (0, 0, 2)
    with pytest.raises(ValueError, match="extra"):
        await store.grant("alice", 0, T0, policy)


async def test_refund_restores_the_photo_and_finish_is_idempotent(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=2, max_concurrent=1, burst_limit=100, global_daily_calls=10)
    assert (await store.try_charge("alice", "f1", 4, T0, policy)).granted
    assert await store.finish("f1", refund=True)
    assert not await store.finish("f1", refund=True)
    assert not await store.finish("f1", refund=False)

    usage = await store.usage("alice", T0, policy)
    assert (usage.used, usage.remaining, usage.active_jobs) == (0, 2, 0)
    stats = await store.stats(T0, policy)
    assert (stats.charged, stats.refunded, stats.global_calls) == (1, 1, 0)

    assert (await store.try_charge("alice", "f2", 4, T0, policy)).granted
    assert await store.finish("f2", refund=False)
    assert not await store.finish("f2", refund=True)  # the first finish decided: no late refund
    assert (await store.usage("alice", T0, policy)).used == 1
    assert (await store.stats(T0, policy)).global_calls == 4
    assert not await store.finish("never-charged", refund=True)


async def test_a_free_job_can_be_refunded(store: QuotaStore) -> None:
    # An offline recognizer bills no calls; its refund once made Redis refuse "-0" as an increment.
    policy = QuotaPolicy(daily_limit=2)
    assert (await store.try_charge("alice", "free", 0, T0, policy)).granted
    assert await store.finish("free", refund=True)
    assert (await store.usage("alice", T0, policy)).used == 0
    assert (await store.stats(T0, policy)).refunded == 1


async def test_charging_the_same_job_twice_returns_the_original_grant(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=20, max_concurrent=1, burst_limit=100, global_daily_calls=10)
    first = await store.try_charge("alice", "tg:1:42", 2, T0, policy)
    assert first.granted
    assert not first.duplicate

    # A redelivery, even later and while the only slot is taken by this very job.
    again = await store.try_charge("alice", "tg:1:42", 2, T0 + timedelta(seconds=5), policy)
    assert again.granted
    assert again.duplicate
    assert (again.remaining, again.limit, again.resets_at) == (first.remaining, first.limit, first.resets_at)

    await store.finish("tg:1:42", refund=False)
    after_finish = await store.try_charge("alice", "tg:1:42", 2, T0 + timedelta(seconds=6), policy)
    assert after_finish.duplicate

    usage = await store.usage("alice", T0, policy)
    assert usage.used == 1
    stats = await store.stats(T0, policy)
    assert (stats.charged, stats.global_calls) == (1, 2)


async def test_a_refunded_job_charged_again_is_a_fresh_charge_held_to_the_daily_limit(
    store: QuotaStore,
) -> None:
    # A message whose charge was given back (the queue failed, or the job failed on our side) and
    # that the platform redelivers must not get a free photo past the limit.
    policy = QuotaPolicy(daily_limit=1, max_concurrent=100, burst_limit=100, global_daily_calls=10)
    assert (await store.try_charge("alice", "A", 2, T0, policy)).granted
    assert await store.finish("A", refund=True)
    other = await store.try_charge("alice", "B", 1, T0, policy)
    assert (other.granted, other.remaining) == (True, 0)

    redelivered = await store.try_charge("alice", "A", 2, T0 + timedelta(seconds=1), policy)
    assert not redelivered.granted
    assert not redelivered.duplicate
    assert redelivered.reason is Refusal.DAILY_LIMIT
    assert (redelivered.remaining, redelivered.limit) == (0, 1)
    assert not await store.finish("A", refund=True)  # refused: still refunded, nothing to settle
    usage = await store.usage("alice", T0, policy)
    assert (usage.used, usage.active_jobs) == (1, 1)
    stats = await store.stats(T0, policy)
    assert (stats.charged, stats.refunded, stats.global_calls) == (2, 1, 1)
    assert stats.refusals[Refusal.DAILY_LIMIT] == 1

    # With room again (one extra photo) the same job id is granted and charged like a new one.
    await store.grant("alice", 1, T0, policy)
    recharged = await store.try_charge("alice", "A", 2, T0 + timedelta(seconds=2), policy)
    assert (recharged.granted, recharged.duplicate) == (True, False)
    assert (recharged.remaining, recharged.limit) == (0, 2)
    usage = await store.usage("alice", T0, policy)
    assert (usage.used, usage.active_jobs) == (2, 2)
    stats = await store.stats(T0, policy)
    assert (stats.charged, stats.refunded, stats.global_calls) == (3, 1, 3)

    # The new charge stands: a redelivery now is a duplicate of it, and charges nothing.
    again = await store.try_charge("alice", "A", 2, T0 + timedelta(seconds=3), policy)
    assert (again.granted, again.duplicate) == (True, True)
    assert (again.remaining, again.limit, again.resets_at) == (0, 2, recharged.resets_at)
    assert (await store.usage("alice", T0, policy)).used == 2

    # And it is settled once, like any charge: refunded, then a repeated finish does nothing.
    assert await store.finish("A", refund=True)
    assert not await store.finish("A", refund=True)
    assert not await store.finish("A", refund=False)
    usage = await store.usage("alice", T0, policy)
    assert (usage.used, usage.active_jobs) == (1, 1)
    stats = await store.stats(T0, policy)
    assert (stats.charged, stats.refunded, stats.global_calls) == (3, 2, 1)


async def test_a_refunded_job_charged_again_meets_the_global_cap_and_the_rate(store: QuotaStore) -> None:
    policy = QuotaPolicy(
        daily_limit=20, max_concurrent=100, burst_limit=2, burst_window_s=60, global_daily_calls=3
    )
    assert (await store.try_charge("alice", "A", 3, T0, policy)).granted
    assert await store.finish("A", refund=True)
    assert (await store.try_charge("bob", "B", 3, T0, policy)).granted  # the calls A gave back
    assert (await store.try_charge("alice", "A", 3, T0, policy)).reason is Refusal.GLOBAL_CAP
    assert await store.finish("B", refund=True)

    # A's refund took it out of alice's window; two new photos fill the window, so A waits its turn.
    assert (await store.try_charge("alice", "C", 0, T0 + timedelta(seconds=10), policy)).granted
    assert (await store.try_charge("alice", "D", 0, T0 + timedelta(seconds=15), policy)).granted
    fast = await store.try_charge("alice", "A", 3, T0 + timedelta(seconds=20), policy)
    assert (fast.reason, fast.retry_after) == (Refusal.RATE, 50)
    later = await store.try_charge("alice", "A", 3, T0 + timedelta(seconds=70), policy)
    assert (later.granted, later.duplicate) == (True, False)
    assert (await store.stats(T0, policy)).global_calls == 3


async def test_a_refunded_photo_leaves_the_burst_window(store: QuotaStore) -> None:
    """A failure given back (not the user's doing) must not slow the user's next photos down."""
    policy = QuotaPolicy(daily_limit=20, max_concurrent=100, burst_limit=2, burst_window_s=60)
    assert (await store.try_charge("alice", "f1", 1, T0, policy)).granted
    assert (await store.try_charge("alice", "f2", 1, T0 + timedelta(seconds=1), policy)).granted
    assert await store.finish("f1", refund=True)
    assert await store.finish("f2", refund=True)
    # Both failed and were refunded: the window is empty again, at once.
    for offset, job in ((2, "g1"), (3, "g2")):
        assert (await store.try_charge("alice", job, 1, T0 + timedelta(seconds=offset), policy)).granted
    # A finished (kept) photo still counts: the third in the window is refused.
    assert await store.finish("g1", refund=False)
    third = await store.try_charge("alice", "g3", 1, T0 + timedelta(seconds=4), policy)
    assert (third.reason, third.retry_after) == (Refusal.RATE, 58)


async def test_a_refunded_job_charged_again_on_a_later_day_counts_on_that_day(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=5, max_concurrent=1, burst_limit=100, global_daily_calls=10)
    tomorrow = T0 + timedelta(days=1)
    assert (await store.try_charge("alice", "A", 2, T0, policy)).granted
    assert await store.finish("A", refund=True)

    recharged = await store.try_charge("alice", "A", 2, tomorrow, policy)
    assert (recharged.granted, recharged.duplicate, recharged.remaining) == (True, False, 4)
    assert recharged.resets_at == datetime(2025, 6, 12, tzinfo=UTC)
    assert (await store.usage("alice", T0, policy)).used == 0
    assert (await store.usage("alice", tomorrow, policy)).used == 1
    # It holds the only concurrency slot again, until finished.
    assert (await store.try_charge("alice", "other", 0, tomorrow, policy)).reason is Refusal.CONCURRENCY

    # Refunding the new charge gives back tomorrow's photo and calls, not today's once more.
    assert await store.finish("A", refund=True)
    today, next_day = await store.stats(T0, policy), await store.stats(tomorrow, policy)
    assert (today.charged, today.refunded, today.global_calls) == (1, 1, 0)
    assert (next_day.charged, next_day.refunded, next_day.global_calls) == (1, 1, 0)
    assert (await store.usage("alice", tomorrow, policy)).used == 0
    assert (await store.try_charge("alice", "other", 0, tomorrow, policy)).granted


async def test_an_admin_job_refunded_then_charged_again_skips_the_limits_but_is_charged(
    store: QuotaStore,
) -> None:
    strict = QuotaPolicy(daily_limit=1, max_concurrent=1, burst_limit=1, global_daily_calls=0)
    assert (await store.try_charge("root", "A", 2, T0, strict, admin=True)).granted
    assert await store.finish("A", refund=True)
    assert (await store.try_charge("root", "B", 2, T0, strict, admin=True)).granted
    again = await store.try_charge("root", "A", 2, T0, strict, admin=True)
    assert (again.granted, again.duplicate) == (True, False)
    assert (await store.usage("root", T0, strict)).used == 2
    assert (await store.stats(T0, strict)).global_calls == 4


async def test_stats_report_the_day(store: QuotaStore) -> None:
    policy = QuotaPolicy(daily_limit=2, max_concurrent=100, burst_limit=100, global_daily_calls=100)
    await charge_many(store, "alice", 3, T0, policy)  # 2 granted, 1 DAILY_LIMIT
    await charge_many(store, "bob", 2, T0, policy)
    await charge_many(store, "carol", 1, T0, policy)
    await charge_many(store, "aaron", 2, T0, policy)
    assert (await store.try_charge("aaron", "aaron:x", 1, T0, policy)).reason is Refusal.DAILY_LIMIT
    await store.block("mallory")
    await store.try_charge("mallory", "m", 1, T0, policy)
    # carol gets one extra photo, and the job it pays for fails on our side: refunded.
    await store.grant("carol", 1, T0, policy)
    assert (await store.try_charge("carol", "carol:r", 3, T0, policy)).granted
    assert await store.finish("carol:r", refund=True)

    stats = await store.stats(T0, policy, top=3)
    assert stats.day == date(2025, 6, 10)
    assert stats.charged == 8
    assert stats.refunded == 1
    assert stats.global_calls == 7
    assert stats.global_cap == 100
    assert dict(stats.refusals) == {
        Refusal.BLOCKED: 1,
        Refusal.DAILY_LIMIT: 2,
        Refusal.GLOBAL_CAP: 0,
        Refusal.CONCURRENCY: 0,
        Refusal.RATE: 0,
    }
    # Ties are broken by name; carol is out of the top 3 (1 net photo).
    assert stats.top_users == (UserCount("aaron", 2), UserCount("alice", 2), UserCount("bob", 2))
    everyone = await store.stats(T0, policy)
    assert everyone.top_users[-1] == UserCount("carol", 1)
    assert len(everyone.top_users) == 4

    empty = await store.stats(T0 + timedelta(days=1), policy)
    assert (empty.charged, empty.refunded, empty.global_calls, empty.top_users) == (0, 0, 0, ())
    assert set(empty.refusals.values()) == {0}


async def test_bad_arguments_are_refused_before_touching_the_store(store: QuotaStore) -> None:
    with pytest.raises(ValueError, match="aware"):
        await store.try_charge("alice", "j", 1, datetime(2025, 6, 10, 12), LOOSE)
    with pytest.raises(ValueError, match="calls"):
        await store.try_charge("alice", "j", -1, T0, LOOSE)
    with pytest.raises(ValueError, match="job_id"):
        await store.try_charge("alice", "", 1, T0, LOOSE)
    assert (await store.usage("alice", T0, LOOSE)).used == 0


def test_policy_rejects_unknown_zones_and_negative_limits() -> None:
    with pytest.raises(ValueError, match="time zone"):
        QuotaPolicy(timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="daily_limit"):
        QuotaPolicy(daily_limit=-1)
    assert QuotaPolicy().timezone == "UTC"


# ---------------------------------------------------------------------------------------------
# The stores against the pure rules (bot.quota.rules): the same scenarios, the same answers.
# SQLite calls `decide_charge` itself; Redis runs its Lua transcription of it. The reference
# below keeps its state in dicts and decides with `decide_charge` too, so any drift of the Lua
# script (or of what SQLite reads) from the rules shows up as a differing answer.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Job:
    user: str
    day: date
    calls: int
    charged_at: float
    lease_until: float
    stored: StoredJob


@dataclass
class RulesReference:
    """`decide_charge` and `settle` over the plainest possible persistence."""

    jobs: dict[str, _Job] = field(default_factory=dict)
    used: dict[tuple[str, date], int] = field(default_factory=dict)
    extra: dict[tuple[str, date], int] = field(default_factory=dict)
    calls: dict[date, int] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)

    def counts(self, user: str, now: datetime, policy: QuotaPolicy) -> StoredCounts:
        day, _ = quota_day(now, policy)
        ts = now.timestamp()
        mine = [job for job in self.jobs.values() if job.user == user]
        leases = [j.lease_until for j in mine if j.stored.state is JobState.ACTIVE and j.lease_until > ts]
        recent = [
            j.charged_at
            for j in mine
            if counts_in_burst_window(j.stored.state) and j.charged_at > ts - policy.burst_window_s
        ]
        return StoredCounts(
            blocked=user in self.blocked,
            used=self.used.get((user, day), 0),
            extra=self.extra.get((user, day), 0),
            global_calls=self.calls.get(day, 0),
            active=len(leases),
            first_lease_end=min(leases, default=None),
            recent=len(recent),
            first_recent=min(recent, default=None),
        )

    def try_charge(
        self, user: str, job_id: str, calls: int, now: datetime, policy: QuotaPolicy, admin: bool
    ) -> ChargeResult:
        known = self.jobs.get(job_id)
        decision = decide_charge(
            known.stored if known else None,
            self.counts(user, now, policy),
            calls=calls,
            now=now,
            policy=policy,
            admin=admin,
        )
        if decision.charge:
            day, _ = quota_day(now, policy)
            result = decision.result
            ts = now.timestamp()
            stored = StoredJob(JobState.ACTIVE, result.remaining, result.limit, result.resets_at)
            self.jobs[job_id] = _Job(user, day, calls, ts, ts + policy.max_job_s, stored)
            self.used[(user, day)] = self.used.get((user, day), 0) + 1
            self.calls[day] = self.calls.get(day, 0) + calls
        return decision.result

    def finish(self, job_id: str, refund: bool) -> bool:
        job = self.jobs.get(job_id)
        new_state = settle(job.stored.state if job else None, refund=refund)
        if job is None or new_state is None:
            return False
        s = job.stored
        job.stored = StoredJob(new_state, s.remaining, s.limit, s.resets_at)
        if new_state is JobState.REFUNDED:
            key = (job.user, job.day)
            self.used[key] = max(0, self.used.get(key, 0) - 1)
            self.calls[job.day] = max(0, self.calls.get(job.day, 0) - job.calls)
        return True

    def usage(self, user: str, now: datetime, policy: QuotaPolicy) -> Usage:
        day, resets_at = quota_day(now, policy)
        counts = self.counts(user, now, policy)
        return Usage.from_counts(
            user,
            day,
            resets_at,
            policy,
            used=counts.used,
            extra=counts.extra,
            blocked=counts.blocked,
            active_jobs=counts.active,
        )


SCENARIO_POLICY = QuotaPolicy(
    daily_limit=3,
    max_concurrent=1,
    burst_limit=2,
    burst_window_s=1800.0,  # long enough that RATE binds although refunds leave the window
    global_daily_calls=10,
    timezone="Europe/Berlin",
    max_job_s=120.0,
)


@dataclass(frozen=True)
class Charge:
    user: str
    job: str
    calls: int
    now: datetime
    admin: bool


@dataclass(frozen=True)
class Finish:
    job: str
    refund: bool


@dataclass(frozen=True)
class Grant:
    user: str
    extra: int
    now: datetime


@dataclass(frozen=True)
class Block:
    user: str
    block: bool


@dataclass(frozen=True)
class Look:
    user: str
    now: datetime


Step = Charge | Finish | Grant | Block | Look


def scenario(seed: int, steps: int = 70) -> list[Step]:
    """A reproducible mix of charges (fresh, redelivered, after refunds), finishes, grants and blocks.

    Time moves forward in steps of seconds to hours, so leases, the burst window and midnight (in
    Berlin, on the night it moves to summer time) are all crossed; job ids come from a small pool
    so duplicates and re-charges after refunds happen. Every step is followed by a usage look.
    """
    rng = random.Random(seed)
    now = datetime(2025, 3, 29, 20, 0, tzinfo=UTC)
    ops: list[Step] = []
    for _ in range(steps):
        now += timedelta(seconds=rng.choice([0, 0, 1, 5, 30, 200, 700, 3600, 4 * 3600]))
        user = rng.choice(["ann", "bob"])
        job = f"job{rng.randrange(12)}"
        roll = rng.random()
        if roll < 0.55:
            ops.append(Charge(user, job, rng.choice([0, 1, 2, 3]), now, rng.random() < 0.1))
        elif roll < 0.85:
            ops.append(Finish(job, rng.random() < 0.4))
        elif roll < 0.92:
            ops.append(Grant(user, rng.choice([1, 2]), now))
        else:
            ops.append(Block(user, rng.random() < 0.5))
        ops.append(Look(user, now))
    return ops


def apply_to_reference(reference: RulesReference, step: Step, policy: QuotaPolicy) -> object:
    """What the rules answer to one step (and the state they move to)."""
    match step:
        case Charge(user, job, calls, now, admin):
            return reference.try_charge(user, job, calls, now, policy, admin)
        case Finish(job, refund):
            return reference.finish(job, refund)
        case Grant(user, extra, now):
            key = (user, quota_day(now, policy)[0])
            reference.extra[key] = reference.extra.get(key, 0) + extra
            return reference.usage(user, now, policy)
        case Block(user, block):
            changed = (user not in reference.blocked) if block else (user in reference.blocked)
            (reference.blocked.add if block else reference.blocked.discard)(user)
            return changed
        case Look(user, now):
            return reference.usage(user, now, policy)


async def apply_to_store(store: QuotaStore, step: Step, policy: QuotaPolicy) -> object:
    match step:
        case Charge(user, job, calls, now, admin):
            return await store.try_charge(user, job, calls, now, policy, admin=admin)
        case Finish(job, refund):
            return await store.finish(job, refund)
        case Grant(user, extra, now):
            return await store.grant(user, extra, now, policy)
        case Block(user, block):
            return await (store.block(user) if block else store.unblock(user))
        case Look(user, now):
            return await store.usage(user, now, policy)


@pytest.mark.parametrize("seed", range(6))
async def test_the_store_answers_exactly_as_the_pure_rules(store: QuotaStore, seed: int) -> None:
    reference = RulesReference()
    for index, step in enumerate(scenario(seed)):
        expected = apply_to_reference(reference, step, SCENARIO_POLICY)
        got = await apply_to_store(store, step, SCENARIO_POLICY)
        assert got == expected, f"step {index}: {step}"


def test_the_scenarios_cover_every_rule_between_them() -> None:
    """Across the seeds, the rules meet every refusal, duplicates and re-charges after refunds."""
    seen: set[str] = set()
    for seed in range(6):
        reference = RulesReference()
        for step in scenario(seed):
            before = reference.jobs.get(step.job) if isinstance(step, Charge) else None
            result = apply_to_reference(reference, step, SCENARIO_POLICY)
            if isinstance(result, ChargeResult):
                seen.add("duplicate" if result.duplicate else str(result.reason or "granted"))
                if before is not None and before.stored.state is JobState.REFUNDED and result.granted:
                    seen.add("recharged after refund")
    assert seen >= {"granted", "duplicate", "recharged after refund", *(str(r) for r in Refusal)}, seen
