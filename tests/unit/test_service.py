"""`PhotoService.submit`: the verdict an adapter shows at once, and what it costs the user.

The stores are the real SQLite ones in a temporary folder and the clock is a fake one, so limits,
refunds and reset times are checked as a user would meet them. Outages are real too: another
connection holding SQLite's write lock is what "the store is busy" looks like.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.access import AccessPolicy
from bot.photo_requests import FileRef, PhotoRequest
from bot.preferences import SQLitePreferences
from bot.queue import SqliteJobQueue
from bot.queue.models import FailOutcome
from bot.quota import QuotaPolicy, SQLiteQuotaStore
from bot.service import TRY_AGAIN_SHORTLY, Accepted, PhotoService, Refused, billed_calls
from bot.storage import SqlitePolicy
from core.analysis_types import DEFAULT_FEATURES, Feature
from core.recognizers.rekognition import BASE_CAPABILITIES

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MAX_BYTES = 25_000_000


class FakeClock:
    """The service's clock, moved by the test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    service: PhotoService
    queue: SqliteJobQueue
    quota: SQLiteQuotaStore
    clock: FakeClock
    folder: Path

    def rebuild(self, **changes: object) -> PhotoService:
        """The same stores behind a service with other settings (policy, access, max_bytes...)."""
        self.service = replace_service(self.service, **changes)
        return self.service


def replace_service(service: PhotoService, **changes: object) -> PhotoService:
    fields: dict[str, object] = {
        "queue": service.queue,
        "quota": service.quota,
        "policy": service.policy,
        "access": service.access,
        "capabilities": service.capabilities,
        "max_bytes": service.max_bytes,
        "preferences": service.preferences,
        "default_features": service.default_features,
        "clock": service.clock,
        "outage_patience_s": service.outage_patience_s,
    }
    fields.update(changes)
    return PhotoService(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    queue = SqliteJobQueue(tmp_path / "queue.sqlite3", policy=SqlitePolicy(busy_timeout_s=0.2))
    quota = SQLiteQuotaStore(tmp_path / "quota.sqlite3", policy=SqlitePolicy(busy_timeout_s=0.2))
    clock = FakeClock()
    service = PhotoService(
        queue=queue,
        quota=quota,
        policy=QuotaPolicy(daily_limit=5, max_concurrent=10, burst_limit=10, global_daily_calls=None),
        access=AccessPolicy(),
        capabilities=BASE_CAPABILITIES,
        max_bytes=MAX_BYTES,
        preferences=SQLitePreferences(tmp_path / "preferences.sqlite3"),
        default_features=DEFAULT_FEATURES,
        clock=clock,
    )
    yield World(service, queue, quota, clock, tmp_path)
    await queue.close()
    await quota.close()


def photo(
    message_id: str = "1",
    *,
    user: str = "42",
    chat: str = "42",
    size: int | None = 1_000,
    platform: str = "telegram",
    workspace: str = "",
    features: frozenset[Feature] = DEFAULT_FEATURES,
    reply_to: dict[str, object] | None = None,
) -> PhotoRequest:
    return PhotoRequest(
        platform=platform,
        user_id=user,
        chat_id=chat,
        message_id=message_id,
        file=FileRef(file_id=f"file-{message_id}", size=size),
        features=features,
        reply_to=reply_to if reply_to is not None else {"chat_id": chat},  # type: ignore[arg-type]
        workspace_id=workspace,
    )


def accepted(verdict: object) -> Accepted:
    assert isinstance(verdict, Accepted), verdict
    return verdict


def refused(verdict: object) -> Refused:
    assert isinstance(verdict, Refused), verdict
    return verdict


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock on `path` from another connection, as a stuck writer would."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


# -- accepted ----------------------------------------------------------------------------------


async def test_accepted_verdicts_count_the_jobs_ahead(world: World) -> None:
    first = accepted(await world.service.submit(photo("1", user="a")))
    second = accepted(await world.service.submit(photo("2", user="b")))
    third = accepted(await world.service.submit(photo("3", user="c")))

    assert [first.ahead, second.ahead, third.ahead] == [0, 1, 2]
    assert first.message == "Got it: analysing your photo."
    assert third.message == "Got it: queued, 2 ahead of you."
    assert not any(v.duplicate for v in (first, second, third))
    assert len({first.job_id, second.job_id, third.job_id}) == 3
    assert first.remaining == 4  # daily limit 5, one used

    # A claimed job is no longer waiting: the next one in line has fewer ahead of it.
    lease = await world.queue.claim("w", START.timestamp() + 1, 60)
    assert lease is not None
    assert lease.job_id == first.job_id
    assert await world.queue.position(third.job_id) == 1
    assert accepted(await world.service.submit(photo("4", user="d"))).ahead == 2


async def test_the_same_message_submitted_twice_is_one_job_and_one_charge(world: World) -> None:
    request = photo("7")
    first = accepted(await world.service.submit(request))
    again = accepted(await world.service.submit(request))

    assert again.job_id == first.job_id
    assert (first.duplicate, again.duplicate) == (False, True)
    usage = await world.service.usage(request.user_key)
    assert (usage.used, usage.active_jobs) == (1, 1)
    stats = await world.queue.stats(START.timestamp())
    assert stats.queued == 1

    # Still one job and one charge once the job is running, and after it is done.
    lease = await world.queue.claim("w", START.timestamp() + 1, 60)
    assert lease is not None
    assert accepted(await world.service.submit(request)).job_id == first.job_id
    assert await world.queue.complete(lease)
    late = accepted(await world.service.submit(request))
    assert (late.job_id, late.duplicate, late.ahead) == (first.job_id, True, 0)
    assert (await world.service.usage(request.user_key)).used == 1
    assert (await world.service.stats()).charged == 1


async def test_the_same_photo_in_another_message_is_a_new_job(world: World) -> None:
    first = accepted(await world.service.submit(photo("1")))
    other = replace(photo("2"), file=FileRef(file_id="file-1", size=1_000))
    second = accepted(await world.service.submit(other))
    assert second.job_id != first.job_id
    assert (await world.service.usage(other.user_key)).used == 2


# -- quota refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        # 21:30 UTC in March is 22:30 in Berlin (CET): midnight there is 1 h 30 min away.
        ("Europe/Berlin", datetime(2026, 3, 10, 21, 30, tzinfo=UTC), "at 00:00 CET (in 1 h 30 min)"),
        # Summer time: 21:30 UTC is 23:30 CEST.
        ("Europe/Berlin", datetime(2026, 7, 10, 21, 30, tzinfo=UTC), "at 00:00 CEST (in 30 min)"),
        # The same instant is still afternoon in New York: its midnight is 04:00 UTC.
        ("America/New_York", datetime(2026, 3, 10, 21, 30, tzinfo=UTC), "at 00:00 EDT (in 6 h 30 min)"),
        ("UTC", datetime(2026, 3, 10, 23, 59, 30, tzinfo=UTC), "at 00:00 UTC (in 1 min)"),
    ],
)
async def test_daily_limit_refusal_names_the_limit_and_the_reset_in_the_quota_zone(
    world: World, zone: str, now: datetime, expected: str
) -> None:
    world.clock.now = now
    world.rebuild(policy=QuotaPolicy(daily_limit=2, max_concurrent=10, timezone=zone))
    for message in ("1", "2"):
        accepted(await world.service.submit(photo(message)))

    verdict = refused(await world.service.submit(photo("3")))

    assert verdict.reason == "daily_limit"
    assert verdict.message == f"You have used all 2 photos for today. Your quota resets {expected}."
    usage = await world.service.usage(photo().user_key)
    assert usage.used == 2  # the refusal charged nothing
    assert (await world.queue.stats(now.timestamp())).queued == 2


async def test_the_daily_limit_lifts_at_midnight_in_the_quota_zone(world: World) -> None:
    world.clock.now = datetime(2026, 3, 10, 22, 50, tzinfo=UTC)  # 23:50 in Berlin
    world.rebuild(policy=QuotaPolicy(daily_limit=1, max_concurrent=10, timezone="Europe/Berlin"))
    accepted(await world.service.submit(photo("1")))
    assert refused(await world.service.submit(photo("2"))).reason == "daily_limit"
    world.clock.advance(11 * 60)  # 00:01 in Berlin, still 23:01 in UTC
    assert accepted(await world.service.submit(photo("2"))).remaining == 0


async def test_a_limit_of_one_photo_is_worded_in_the_singular(world: World) -> None:
    world.rebuild(policy=QuotaPolicy(daily_limit=1, max_concurrent=10))
    accepted(await world.service.submit(photo("1")))
    assert "You have used all 1 photo for today." in refused(await world.service.submit(photo("2"))).message


async def test_rate_refusal_says_how_long_to_wait(world: World) -> None:
    world.rebuild(policy=QuotaPolicy(daily_limit=20, max_concurrent=10, burst_limit=2, burst_window_s=60))
    accepted(await world.service.submit(photo("1")))
    world.clock.advance(10)
    accepted(await world.service.submit(photo("2")))
    world.clock.advance(10)

    verdict = refused(await world.service.submit(photo("3")))

    assert (verdict.reason, verdict.retry_after) == ("rate", 40)  # the first leaves the window at 60 s
    assert verdict.message == "Slow down a little: at most 2 photos per 60 s. Try again in 40 s."
    world.clock.advance(40)
    accepted(await world.service.submit(photo("3")))
    assert (await world.service.usage(photo().user_key)).used == 3


async def test_concurrency_refusal_until_a_running_job_finishes(world: World) -> None:
    world.rebuild(policy=QuotaPolicy(daily_limit=20, max_concurrent=1, burst_limit=10))
    first = photo("1")
    accepted(await world.service.submit(first))

    verdict = refused(await world.service.submit(photo("2")))

    assert verdict.reason == "concurrency"
    assert verdict.message == (
        "You already have 1 photo being analysed. Send this one again when they are done."
    )
    assert verdict.retry_after is not None
    assert verdict.retry_after > 0
    assert await world.quota.finish(first.idempotency_key, refund=False)  # what a worker does
    accepted(await world.service.submit(photo("2")))
    # Another user is not held up by this one's running job.
    accepted(await world.service.submit(photo("3", user="someone-else")))


async def test_global_cap_counts_billed_units_with_properties_billed_beside_labels(world: World) -> None:
    """Labels and properties share one DetectLabels request, but AWS bills Image Properties per image
    on top of the labels: the cost guard counts what is billed, one unit per feature."""
    both = frozenset({Feature.LABELS, Feature.PROPERTIES, Feature.FACES})
    assert billed_calls(both, BASE_CAPABILITIES) == 3
    assert billed_calls(frozenset({Feature.CELEBRITIES, Feature.TEXT}), BASE_CAPABILITIES) == 1
    assert billed_calls(DEFAULT_FEATURES, frozenset()) == 0  # an offline recognizer bills nothing

    world.rebuild(policy=QuotaPolicy(daily_limit=20, max_concurrent=10, global_daily_calls=4))
    accepted(await world.service.submit(photo("1", features=both)))
    verdict = refused(await world.service.submit(photo("2", user="b", features=both)))
    assert verdict.reason == "global_cap"
    assert verdict.message.startswith("The bot has reached its analysis budget for today. It resets at 00:00")
    accepted(await world.service.submit(photo("3", user="b", features=frozenset({Feature.TEXT}))))


async def test_a_blocked_user_is_refused_and_can_be_unblocked(world: World) -> None:
    user = photo().user_key
    assert await world.service.block(user)
    verdict = refused(await world.service.submit(photo("1")))
    assert verdict.reason == "blocked"
    assert "can't use this bot" in verdict.message
    assert await world.service.unblock(user)
    accepted(await world.service.submit(photo("1")))


# -- access and size ---------------------------------------------------------------------------


async def test_an_allowlist_admits_only_listed_chats_workspaces_and_admins(world: World) -> None:
    world.rebuild(
        access=AccessPolicy(
            admins=frozenset({"telegram:root"}),
            allowed=frozenset({"telegram:100", "slack:T1"}),
        )
    )
    outsider = refused(await world.service.submit(photo("1", chat="999")))
    assert (outsider.reason, outsider.message) == ("not_allowed", "This bot is not enabled here.")
    assert (await world.service.usage("telegram:42")).used == 0  # refused before any charge

    accepted(await world.service.submit(photo("2", chat="100")))
    accepted(await world.service.submit(photo("3", chat="C5", platform="slack", workspace="T1")))
    refused(await world.service.submit(photo("4", chat="C5", platform="slack", workspace="T2")))
    accepted(await world.service.submit(photo("5", chat="999", user="root")))  # admins go anywhere


async def test_a_blocklist_refuses_chats_and_workspaces_even_for_admins(world: World) -> None:
    world.rebuild(
        access=AccessPolicy(
            admins=frozenset({"telegram:root"}), blocked=frozenset({"telegram:13", "slack:T9"})
        )
    )
    assert refused(await world.service.submit(photo("1", chat="13"))).reason == "not_allowed"
    assert refused(await world.service.submit(photo("2", chat="13", user="root"))).reason == "not_allowed"
    slack = photo("3", chat="C1", platform="slack", workspace="T9")
    assert refused(await world.service.submit(slack)).reason == "not_allowed"
    accepted(await world.service.submit(photo("4", chat="14")))


async def test_admins_skip_the_limits_but_are_still_counted(world: World) -> None:
    world.rebuild(
        access=AccessPolicy(admins=frozenset({"telegram:root"})),
        policy=QuotaPolicy(daily_limit=1, max_concurrent=1),
    )
    for message in ("1", "2", "3"):
        accepted(await world.service.submit(photo(message, user="root")))
    assert (await world.service.usage("telegram:root")).used == 3


async def test_a_file_known_to_be_too_large_is_refused_without_a_charge(world: World) -> None:
    verdict = refused(await world.service.submit(photo("1", size=30_000_000)))

    assert verdict.reason == "too_large"
    assert verdict.message == "That file is 30 MB; the limit is 25 MB."
    assert (await world.service.usage(photo().user_key)).used == 0
    assert (await world.queue.stats(START.timestamp())).queued == 0

    world.rebuild(max_bytes=1_500_000)
    small_limit = refused(await world.service.submit(photo("2", size=1_540_000)))
    assert small_limit.message == "That file is just over the 1.5 MB limit."
    accepted(await world.service.submit(photo("3", size=1_500_000)))  # at the limit is fine
    accepted(await world.service.submit(photo("4", size=None)))  # unknown: checked while downloading


# -- outages -----------------------------------------------------------------------------------


async def test_quota_store_unavailable_refuses_with_try_again_and_recovers(world: World) -> None:
    accepted(await world.service.submit(photo("0", user="warm-up")))  # the file and its tables exist
    with write_locked(world.folder / "quota.sqlite3"):
        verdict = refused(await world.service.submit(photo("1")))
    assert verdict == Refused("unavailable", TRY_AGAIN_SHORTLY)
    assert (await world.queue.stats(START.timestamp())).queued == 1  # nothing stored uncounted

    again = accepted(await world.service.submit(photo("1")))
    assert not again.duplicate
    assert (await world.service.usage(photo().user_key)).used == 1


class Outage:
    """SQLite's write lock held on a store until the service has slept `lasts` times (or for good).

    It is the service's `sleep`: each wait it asks for is recorded instead of slept, so the test
    sees the back-off the service chose, and the outage ends after the waits a real one would take.
    """

    def __init__(self, path: Path, lasts: int | None) -> None:
        self.lasts = lasts
        self.waits: list[float] = []
        self.holder: sqlite3.Connection | None = sqlite3.connect(path, isolation_level=None)
        self.holder.execute("BEGIN IMMEDIATE")

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.lasts is not None and len(self.waits) >= self.lasts:
            self.end()

    def end(self) -> None:
        if self.holder is not None:
            self.holder.execute("ROLLBACK")
            self.holder.close()
            self.holder = None


@pytest.mark.parametrize("store", ["queue", "quota"])
async def test_a_short_outage_is_waited_out_and_the_photo_accepted_once(world: World, store: str) -> None:
    accepted(await world.service.submit(photo("0", user="warm-up")))
    outage = Outage(world.folder / f"{store}.sqlite3", lasts=3)
    world.rebuild(outage_patience_s=10.0, sleep=outage)
    try:
        verdict = accepted(await world.service.submit(photo("1")))
    finally:
        outage.end()

    assert not verdict.duplicate
    assert outage.waits == [0.25, 0.5, 1.0]  # doubling, and no more tries once it worked
    usage = await world.service.usage(photo().user_key)
    assert (usage.used, usage.active_jobs) == (1, 1)  # charged once, whatever the failed tries did
    assert (await world.queue.stats(START.timestamp())).queued == 2


async def test_an_outage_longer_than_the_patience_is_refused_uncharged(world: World) -> None:
    accepted(await world.service.submit(photo("0", user="warm-up")))
    outage = Outage(world.folder / "queue.sqlite3", lasts=None)
    world.rebuild(outage_patience_s=5.0, sleep=outage)
    try:
        verdict = refused(await world.service.submit(photo("1")))
    finally:
        outage.end()

    assert verdict == Refused("unavailable", TRY_AGAIN_SHORTLY)
    assert outage.waits == [0.25, 0.5, 1.0, 2.0, 1.25]  # the last wait is cut to fit in 5 s
    assert sum(outage.waits) == pytest.approx(5.0)
    usage = await world.service.usage(photo().user_key)
    assert (usage.used, usage.active_jobs) == (0, 0)


async def test_refusals_that_are_not_outages_are_not_tried_again(world: World) -> None:
    never = Outage(world.folder / "unused.sqlite3", lasts=0)
    never.end()
    world.rebuild(outage_patience_s=10.0, sleep=never)
    assert refused(await world.service.submit(photo("1", size=30_000_000))).reason == "too_large"
    assert never.waits == []


async def test_a_queue_failure_after_the_charge_refunds_it(world: World) -> None:
    accepted(await world.service.submit(photo("0", user="warm-up")))
    request = photo("1")
    with write_locked(world.folder / "queue.sqlite3"):
        verdict = refused(await world.service.submit(request))
    assert verdict == Refused("unavailable", TRY_AGAIN_SHORTLY)
    usage = await world.service.usage(request.user_key)
    assert (usage.used, usage.active_jobs) == (0, 0)
    assert (await world.service.stats()).refunded == 1

    # The queue is back; a new message goes through and is charged once.
    accepted(await world.service.submit(photo("2")))
    assert (await world.service.usage(request.user_key)).used == 1


async def test_the_redelivery_of_a_message_refunded_for_a_queue_failure_is_charged(world: World) -> None:
    world.rebuild(policy=QuotaPolicy(daily_limit=2, max_concurrent=10, burst_limit=10))
    accepted(await world.service.submit(photo("0", user="warm-up")))
    request = photo("1")
    with write_locked(world.folder / "queue.sqlite3"):
        assert refused(await world.service.submit(request)).reason == "unavailable"
    assert (await world.service.usage(request.user_key)).used == 0

    # The platform redelivers the same message and the queue works again: a photo like any other.
    verdict = accepted(await world.service.submit(request))
    assert not verdict.duplicate
    assert verdict.remaining == 1
    usage = await world.service.usage(request.user_key)
    assert (usage.used, usage.active_jobs) == (1, 1)
    stats = await world.service.stats()
    assert (stats.charged, stats.refunded) == (3, 1)  # warm-up, the refunded charge, the new one
    assert (await world.queue.stats(START.timestamp())).queued == 2


async def test_the_redelivery_of_a_message_refunded_for_a_queue_failure_meets_the_daily_limit(
    world: World,
) -> None:
    world.rebuild(policy=QuotaPolicy(daily_limit=1, max_concurrent=10, burst_limit=10))
    accepted(await world.service.submit(photo("0", user="warm-up")))
    request = photo("1")
    with write_locked(world.folder / "queue.sqlite3"):
        assert refused(await world.service.submit(request)).reason == "unavailable"
    accepted(await world.service.submit(photo("2")))  # the day's only photo

    # Not a free photo: the redelivered message is held to the limit like a new one.
    verdict = refused(await world.service.submit(request))
    assert verdict.reason == "daily_limit"
    assert (await world.service.usage(request.user_key)).used == 1
    assert (await world.queue.stats(START.timestamp())).queued == 2  # warm-up and "2" only


async def test_a_job_that_ran_and_was_refunded_is_not_charged_again_when_redelivered(world: World) -> None:
    request = photo("1")
    first = accepted(await world.service.submit(request))
    # What a worker does when the recognizer is down for good: dead-letter the job and refund it.
    lease = await world.queue.claim("w", START.timestamp() + 1, 60)
    assert lease is not None
    assert lease.job_id == first.job_id
    outcome = await world.queue.fail(lease, "recognizer down", START.timestamp() + 2, retryable=False)
    assert outcome is FailOutcome.DEAD
    assert await world.quota.finish(request.idempotency_key, refund=True)
    world.clock.advance(3600)

    again = accepted(await world.service.submit(request))  # the platform redelivers the message

    assert (again.job_id, again.duplicate, again.ahead) == (first.job_id, True, 0)
    assert again.remaining == 5
    usage = await world.service.usage(request.user_key)
    assert (usage.used, usage.active_jobs) == (0, 0)
    stats = await world.service.stats()
    assert (stats.charged, stats.refunded) == (2, 2)  # charged afresh, and given back at once
    assert (await world.queue.stats(world.clock.now.timestamp())).queued == 0


async def test_a_payload_the_queue_cannot_store_is_refunded_and_raised(world: World) -> None:
    request = photo("1", reply_to={"thread": float("nan")})  # not JSON: a bug in an adapter
    with pytest.raises(ValueError, match="JSON"):
        await world.service.submit(request)
    usage = await world.service.usage(request.user_key)
    assert (usage.used, usage.active_jobs) == (0, 0)
