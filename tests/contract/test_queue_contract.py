"""One contract for both job queues: every test runs against SQLite (in tmp_path) and a real Redis.

SQLite takes all its time from the `now` arguments, so its clock is moved by arithmetic. Redis
measures visibility timeouts and retry backoff with the server's own clock (stream idle time), so
for Redis `Clock.advance` also sleeps for real; the timeouts here are kept to fractions of a second.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.queue import (
    FailOutcome,
    JobNotFound,
    JobQueue,
    Lease,
    QueueClosed,
    QueueUnavailable,
    RedisJobQueue,
    SqliteJobQueue,
)
from bot.queue.base import EXPIRED_ERROR
from bot.storage import SqlitePolicy
from tests.conftest import RedisServer

VT = 0.5  # a visibility timeout short enough to wait out for real
BACKOFF = 0.3


class Backend:
    """Opens queues on one shared storage and moves the clock the way that storage needs."""

    def __init__(self, name: str, factory: Callable[..., JobQueue]) -> None:
        self.name = name
        self._factory = factory
        self.now = time.time()
        self._opened: list[JobQueue] = []

    def open(self, **settings: Any) -> JobQueue:
        """A new queue object on the same storage (what a second process or a restart would get)."""
        settings.setdefault("retry_backoff_s", BACKOFF)
        queue = self._factory(**settings)
        self._opened.append(queue)
        return queue

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.name == "redis":
            await asyncio.sleep(seconds)

    async def close_all(self) -> None:
        for queue in self._opened:
            await queue.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "data" / "queue.sqlite3"
        chosen = Backend("sqlite", lambda **settings: SqliteJobQueue(path, **settings))
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        chosen = Backend("redis", lambda **settings: RedisJobQueue(server.url, **settings))
    yield chosen
    await chosen.close_all()


@pytest.fixture
def queue(backend: Backend) -> JobQueue:
    return backend.open()


async def enqueue_many(queue: JobQueue, now: float, count: int, chat: str = "1") -> list[str]:
    ids = []
    for message in range(count):
        result = await queue.enqueue(f"telegram:{chat}:{message}", f"user{message}", {"n": message}, now)
        ids.append(result.job_id)
    return ids


async def test_jobs_are_claimed_in_enqueue_order(backend: Backend, queue: JobQueue) -> None:
    ids = await enqueue_many(queue, backend.now, 4)

    claimed = []
    for _ in ids:
        lease = await queue.claim("w1", backend.now, 30)
        assert lease is not None
        claimed.append(lease.job_id)
        assert await queue.complete(lease, backend.now)

    assert claimed == ids
    assert await queue.claim("w1", backend.now, 30) is None


async def test_lease_carries_the_job_unchanged(backend: Backend, queue: JobQueue) -> None:
    payload = {"file_id": "AgAD-ä-😀", "chat": 123, "nested": {"list": [1, 2.5, None, True]}}
    result = await queue.enqueue("telegram:123:456", "telegram:42", payload, backend.now)
    assert result.created

    lease = await queue.claim("worker-a", backend.now + 1, 30)

    assert lease is not None
    assert lease.job_id == result.job_id
    assert lease.idempotency_key == "telegram:123:456"
    assert lease.user == "telegram:42"
    assert lease.payload == payload
    assert lease.created_at == pytest.approx(backend.now)
    assert lease.attempt == 1
    assert not lease.exhausted
    assert lease.worker_id == "worker-a"
    assert lease.deadline == pytest.approx(backend.now + 31)
    assert lease.token


async def test_same_platform_message_twice_returns_the_existing_job(
    backend: Backend, queue: JobQueue
) -> None:
    first = await queue.enqueue("slack:C1:1700.01", "slack:U1", {"v": 1}, backend.now)
    again = await queue.enqueue("slack:C1:1700.01", "slack:U1", {"v": 2}, backend.now + 1)

    assert first.created
    assert not again.created
    assert again.job_id == first.job_id
    assert (await queue.stats(backend.now)).queued == 1

    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None
    assert lease.payload == {"v": 1}
    assert await queue.claim("w1", backend.now, 30) is None
    # Still known while in flight, and after it is done: a late redelivery adds nothing.
    assert (await queue.enqueue("slack:C1:1700.01", "slack:U1", {}, backend.now)).job_id == first.job_id
    assert await queue.complete(lease, backend.now)
    late = await queue.enqueue("slack:C1:1700.01", "slack:U1", {}, backend.now)
    assert (late.job_id, late.created, late.ahead) == (first.job_id, False, 0)
    assert await queue.claim("w1", backend.now, 30) is None


async def test_ahead_counts_and_positions(backend: Backend, queue: JobQueue) -> None:
    results = [await queue.enqueue(f"tg:1:{i}", "u", {}, backend.now) for i in range(3)]
    assert [r.ahead for r in results] == [0, 1, 2]
    assert [await queue.position(r.job_id) for r in results] == [0, 1, 2]

    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None
    assert lease.job_id == results[0].job_id

    assert await queue.position(results[0].job_id) is None  # in flight
    assert [await queue.position(r.job_id) for r in results[1:]] == [0, 1]
    duplicate = await queue.enqueue("tg:1:2", "u", {}, backend.now)
    assert (duplicate.created, duplicate.ahead) == (False, 1)
    assert (await queue.enqueue("tg:1:3", "u", {}, backend.now)).ahead == 2
    assert await queue.position("no-such-job") is None


async def test_complete_finishes_the_job_once(backend: Backend, queue: JobQueue) -> None:
    await enqueue_many(queue, backend.now, 1)
    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None

    assert await queue.complete(lease, backend.now)
    assert await queue.complete(lease, backend.now)  # repeating with the same lease is harmless

    stats = await queue.stats(backend.now)
    assert (stats.queued, stats.in_flight, stats.done, stats.dead) == (0, 0, 1, 0)
    assert await queue.claim("w1", backend.now, 30) is None
    assert await queue.fail(lease, "late", backend.now, retryable=True) is FailOutcome.LEASE_LOST
    assert not await queue.release(lease)
    assert await queue.extend(lease, backend.now, 30) is None


async def test_a_valid_lease_is_not_handed_out_twice(backend: Backend, queue: JobQueue) -> None:
    first, second = await enqueue_many(queue, backend.now, 2)

    a = await queue.claim("w1", backend.now, 30)
    b = await queue.claim("w2", backend.now, 30)

    assert a is not None
    assert b is not None
    assert (a.job_id, b.job_id) == (first, second)
    assert await queue.claim("w3", backend.now, 30) is None
    assert (await queue.stats(backend.now)).in_flight == 2


async def test_expired_lease_is_reclaimed_and_the_stale_lease_rejected(
    backend: Backend, queue: JobQueue
) -> None:
    [job_id] = await enqueue_many(queue, backend.now, 1)
    dead_worker = await queue.claim("w1", backend.now, VT)
    assert dead_worker is not None
    assert await queue.claim("w2", backend.now, 30) is None

    await backend.advance(VT + 0.2)
    taken_over = await queue.claim("w2", backend.now, 30)

    assert taken_over is not None
    assert taken_over.job_id == job_id
    assert taken_over.attempt == 2
    assert taken_over.token != dead_worker.token
    # The first worker wakes up: nothing it does with its old lease counts.
    assert not await queue.complete(dead_worker, backend.now)
    assert await queue.fail(dead_worker, "boom", backend.now, retryable=True) is FailOutcome.LEASE_LOST
    assert not await queue.release(dead_worker)
    assert await queue.extend(dead_worker, backend.now, 30) is None
    assert await queue.complete(taken_over, backend.now)
    stats = await queue.stats(backend.now)
    assert (stats.done, stats.in_flight, stats.queued) == (1, 0, 0)


async def test_extend_keeps_a_long_job_leased(backend: Backend, queue: JobQueue) -> None:
    timeout = 1.0  # long enough that the "still leased" checks have slack on a busy machine
    await enqueue_many(queue, backend.now, 1)
    lease = await queue.claim("w1", backend.now, timeout)
    assert lease is not None

    await backend.advance(timeout * 0.6)
    extended = await queue.extend(lease, backend.now, timeout)
    assert extended is not None
    assert extended.deadline == pytest.approx(backend.now + timeout)
    assert (extended.token, extended.attempt) == (lease.token, lease.attempt)
    await backend.advance(timeout * 0.6)  # past the original deadline, within the extended one
    assert await queue.claim("w2", backend.now, 30) is None

    await backend.advance(timeout * 0.6)  # the heartbeats stopped: the lease runs out
    taken_over = await queue.claim("w2", backend.now, 30)
    assert taken_over is not None
    assert taken_over.attempt == 2
    assert await queue.extend(extended, backend.now, timeout) is None


async def test_failures_retry_after_a_backoff_then_dead_letter(backend: Backend, queue: JobQueue) -> None:
    [job_id] = await enqueue_many(queue, backend.now, 1)

    for attempt in (1, 2):
        lease = await queue.claim("w1", backend.now, 30)
        assert lease is not None
        assert (lease.job_id, lease.attempt) == (job_id, attempt)
        assert (
            await queue.fail(lease, f"throttled {attempt}", backend.now, retryable=True) is FailOutcome.RETRY
        )
        assert await queue.claim("w1", backend.now, 30) is None  # waiting out the backoff
        stats = await queue.stats(backend.now)
        assert (stats.queued, stats.in_flight) == (1, 0)
        await backend.advance(BACKOFF * 2 ** (attempt - 1) + 0.15)  # 1x, then 2x the base

    last = await queue.claim("w1", backend.now, 30)
    assert last is not None
    assert last.attempt == 3
    assert await queue.fail(last, "throttled 3", backend.now, retryable=True) is FailOutcome.DEAD

    assert await queue.claim("w1", backend.now + 3600, 30) is None
    [letter] = await queue.dead_letters()
    assert (letter.job_id, letter.error, letter.attempts) == (job_id, "throttled 3", 3)
    assert (letter.user, letter.idempotency_key, letter.payload) == ("user0", "telegram:1:0", {"n": 0})
    assert letter.died_at == pytest.approx(backend.now)
    stats = await queue.stats(backend.now)
    assert (stats.queued, stats.in_flight, stats.dead, stats.done) == (0, 0, 1, 0)


async def test_a_retried_job_keeps_its_place_in_line(backend: Backend, queue: JobQueue) -> None:
    first, second = await enqueue_many(queue, backend.now, 2)
    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None
    assert lease.job_id == first
    assert await queue.fail(lease, "hiccup", backend.now, retryable=True) is FailOutcome.RETRY
    assert await queue.position(first) == 0

    await backend.advance(BACKOFF + 0.1)
    again = await queue.claim("w1", backend.now, 30)
    assert again is not None
    assert (again.job_id, again.attempt) == (first, 2)
    after = await queue.claim("w1", backend.now, 30)
    assert after is not None
    assert after.job_id == second


async def test_a_non_retryable_failure_dead_letters_at_once(backend: Backend, queue: JobQueue) -> None:
    [job_id] = await enqueue_many(queue, backend.now, 1)
    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None

    assert await queue.fail(lease, "not a photo", backend.now, retryable=False) is FailOutcome.DEAD

    assert await queue.claim("w1", backend.now + 3600, 30) is None
    [letter] = await queue.dead_letters()
    assert (letter.job_id, letter.error, letter.attempts) == (job_id, "not a photo", 1)
    # The key stays known: resending the same platform message does not resurrect it.
    again = await queue.enqueue("telegram:1:0", "user0", {"n": 0}, backend.now)
    assert (again.job_id, again.created) == (job_id, False)


async def test_release_gives_the_job_back_without_counting_an_attempt(
    backend: Backend, queue: JobQueue
) -> None:
    first, second = await enqueue_many(queue, backend.now, 2)
    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None
    assert lease.attempt == 1

    assert await queue.release(lease)
    assert (await queue.stats(backend.now)).in_flight == 0
    assert await queue.position(first) == 0

    again = await queue.claim("w2", backend.now, 30)  # at once, first in line
    assert again is not None
    assert (again.job_id, again.attempt) == (first, 1)
    assert not await queue.release(lease)
    assert not await queue.complete(lease, backend.now)
    assert await queue.complete(again, backend.now)
    nxt = await queue.claim("w2", backend.now, 30)
    assert nxt is not None
    assert nxt.job_id == second


async def expire_leases(backend: Backend, queue: JobQueue, job_id: str, count: int) -> list[Lease]:
    """Claim the job `count` times with a short lease and let each run out (its worker died)."""
    leases = []
    for _ in range(count):
        lease = await queue.claim("doomed", backend.now, VT)
        assert lease is not None
        assert lease.job_id == job_id
        leases.append(lease)
        await backend.advance(VT + 0.2)
    return leases


async def test_leases_that_keep_expiring_end_in_one_exhausted_hand_out(backend: Backend) -> None:
    queue = backend.open(max_attempts=2)
    [job_id] = await enqueue_many(queue, backend.now, 1)
    died = await expire_leases(backend, queue, job_id, 2)
    assert [(lease.attempt, lease.exhausted) for lease in died] == [(1, False), (2, False)]

    final = await queue.claim("w2", backend.now, 30)

    assert final is not None
    assert (final.job_id, final.attempt, final.exhausted) == (job_id, 3, True)
    assert (final.payload, final.user) == ({"n": 0}, "user0")  # enough to answer the user
    assert await queue.dead_letters() == []  # not silently dropped
    assert await queue.claim("w3", backend.now, 30) is None  # leased like any job
    assert (await queue.stats(backend.now)).in_flight == 1

    error = EXPIRED_ERROR % 2
    assert await queue.fail(final, error, backend.now, retryable=False) is FailOutcome.DEAD

    [letter] = await queue.dead_letters()
    assert (letter.job_id, letter.error, letter.attempts) == (job_id, error, 3)
    assert await queue.claim("w3", backend.now + 3600, 30) is None
    stats = await queue.stats(backend.now)
    assert (stats.dead, stats.in_flight, stats.queued, stats.done) == (1, 0, 0, 0)


async def test_an_exhausted_lease_that_expires_too_is_dead_lettered_without_another_hand_out(
    backend: Backend,
) -> None:
    queue = backend.open(max_attempts=2)
    [job_id] = await enqueue_many(queue, backend.now, 1)
    died = await expire_leases(backend, queue, job_id, 3)  # the final hand-out's worker died too
    assert [lease.exhausted for lease in died] == [False, False, True]
    later = await queue.enqueue("telegram:1:later", "user9", {"n": 9}, backend.now)

    nxt = await queue.claim("w2", backend.now, 30)

    assert nxt is not None
    assert (nxt.job_id, nxt.exhausted) == (later.job_id, False)  # the claim moved on
    [letter] = await queue.dead_letters()
    assert (letter.job_id, letter.attempts) == (job_id, 3)
    assert "expired 3 times" in letter.error
    assert not await queue.complete(died[-1], backend.now)  # the dead holder's lease is stale
    assert await queue.complete(nxt, backend.now)
    assert await queue.claim("w2", backend.now + 3600, 30) is None
    stats = await queue.stats(backend.now)
    assert (stats.dead, stats.done, stats.in_flight, stats.queued) == (1, 1, 0, 0)


async def test_a_released_exhausted_lease_stays_exhausted(backend: Backend) -> None:
    queue = backend.open(max_attempts=1)
    [job_id] = await enqueue_many(queue, backend.now, 1)
    await expire_leases(backend, queue, job_id, 1)
    final = await queue.claim("w1", backend.now, 30)
    assert final is not None
    assert final.exhausted

    assert await queue.release(final)  # a shutdown before it was answered

    again = await queue.claim("w2", backend.now, 30)
    assert again is not None
    assert (again.job_id, again.attempt, again.exhausted) == (job_id, final.attempt, True)
    assert await queue.fail(again, "gave up", backend.now, retryable=False) is FailOutcome.DEAD
    assert [letter.job_id for letter in await queue.dead_letters()] == [job_id]


async def test_a_last_attempt_that_expires_exhausts_the_job_after_earlier_failures(
    backend: Backend,
) -> None:
    """The attempt that used up the attempts decides: it expired, so nobody answered yet."""
    queue = backend.open(max_attempts=2)
    [job_id] = await enqueue_many(queue, backend.now, 1)
    first = await queue.claim("w1", backend.now, VT)
    assert first is not None
    assert await queue.fail(first, "hiccup", backend.now, retryable=True) is FailOutcome.RETRY
    await backend.advance(BACKOFF + 0.1)
    await expire_leases(backend, queue, job_id, 1)  # attempt 2 died: the attempts are used up

    final = await queue.claim("w2", backend.now, 30)

    assert final is not None
    assert (final.attempt, final.exhausted) == (3, True)


async def test_a_job_whose_reply_was_sent_is_handed_out_to_be_completed(backend: Backend) -> None:
    queue = backend.open(max_attempts=1)
    [job_id] = await enqueue_many(queue, backend.now, 1)
    lease = await queue.claim("w1", backend.now, VT)
    assert lease is not None
    assert await queue.mark_reply_started(job_id, lease.attempt)
    await queue.mark_reply_sent(job_id)
    await backend.advance(VT + 0.2)  # replied, then died before complete

    again = await queue.claim("w2", backend.now, 30)

    assert again is not None
    assert again.job_id == job_id
    assert again.attempt == 2
    assert not again.exhausted  # it only needs completing: nothing to answer or dead-letter
    assert await queue.reply_sent(job_id)
    assert not await queue.mark_reply_started(job_id, again.attempt)
    assert await queue.complete(again, backend.now)
    assert await queue.dead_letters() == []


async def test_a_job_whose_reply_was_interrupted_is_answered_by_its_next_attempt(backend: Backend) -> None:
    queue = backend.open(max_attempts=1)
    [job_id] = await enqueue_many(queue, backend.now, 1)
    lease = await queue.claim("w1", backend.now, VT)
    assert lease is not None
    assert await queue.mark_reply_started(job_id, lease.attempt)
    await backend.advance(VT + 0.2)  # died during the send: nothing recorded as sent

    again = await queue.claim("w2", backend.now, 30)

    assert again is not None
    assert again.attempt == 2
    assert again.exhausted  # the expiry counts: a reply that kills its worker must not loop
    assert await queue.reply_started(job_id)
    assert not await queue.reply_sent(job_id)
    assert not await queue.mark_reply_started(job_id, lease.attempt)  # the dead attempt: never again
    assert await queue.mark_reply_started(job_id, again.attempt)
    assert not await queue.mark_reply_started(job_id, again.attempt)
    await queue.mark_reply_sent(job_id)
    assert not await queue.mark_reply_started(job_id, again.attempt + 1)  # sent: nobody answers again


async def test_a_recent_mark_of_an_earlier_attempt_is_not_taken_over(backend: Backend) -> None:
    queue = backend.open()
    [job_id] = await enqueue_many(queue, backend.now, 1)
    assert await queue.mark_reply_started(job_id, 1, backend.now, 30)

    # Attempt 2 (the first worker stalled past its lease, but may still be sending): not yet.
    assert not await queue.mark_reply_started(job_id, 2, backend.now + 29, 30)
    # Silent for the whole takeover time: that sender is dead, attempt 2 answers.
    assert await queue.mark_reply_started(job_id, 2, backend.now + 31, 30)
    assert not await queue.mark_reply_started(job_id, 1, backend.now + 100, 30)  # never back to 1
    assert not await queue.mark_reply_started(job_id, 3, backend.now + 40, 30)  # 2's mark is recent


async def test_the_reply_marker_is_recorded_once(backend: Backend, queue: JobQueue) -> None:
    first, second = await enqueue_many(queue, backend.now, 2)

    assert not await queue.reply_started(first)
    assert await queue.mark_reply_started(first, 1)
    assert not await queue.mark_reply_started(first, 1)
    assert await queue.reply_started(first)
    assert not await queue.reply_sent(first)
    assert not await queue.reply_started(second)
    assert not await queue.reply_started("no-such-job")
    assert not await queue.reply_sent("no-such-job")
    with pytest.raises(JobNotFound):
        await queue.mark_reply_started("no-such-job", 1)
    with pytest.raises(JobNotFound):
        await queue.mark_reply_sent("no-such-job")

    # Many workers racing for the same marker: exactly one wins.
    racers = [backend.open() for _ in range(3)]
    wins = await asyncio.gather(*(q.mark_reply_started(second, 1) for q in racers for _ in range(4)))
    assert wins.count(True) == 1


async def test_stats_report_the_queue(backend: Backend, queue: JobQueue) -> None:
    empty = await queue.stats(backend.now)
    assert (empty.queued, empty.in_flight, empty.dead, empty.done, empty.oldest_queued_age_s) == (
        0,
        0,
        0,
        0,
        None,
    )
    await queue.enqueue("tg:1:1", "u", {}, backend.now - 40)
    await queue.enqueue("tg:1:2", "u", {}, backend.now - 10)
    await queue.enqueue("tg:1:3", "u", {}, backend.now)
    await queue.enqueue("tg:1:4", "u", {}, backend.now)
    leased = await queue.claim("w1", backend.now, 30)
    done = await queue.claim("w1", backend.now, 30)
    assert leased is not None
    assert done is not None
    assert await queue.complete(done, backend.now)
    doomed = await queue.claim("w1", backend.now, 30)
    assert doomed is not None
    assert await queue.fail(doomed, "bad", backend.now, retryable=False) is FailOutcome.DEAD

    stats = await queue.stats(backend.now + 5)
    assert (stats.queued, stats.in_flight, stats.dead, stats.done) == (1, 1, 1, 1)
    assert stats.oldest_queued_age_s == pytest.approx(5)


# -- delivery retries: an answer kept in the queue while its platform is down ------------------

ANSWER = '{"an": "answer", "image": "' + "QUJD" * 50_000 + '"}'  # 200 KB, like a stored JPEG


async def test_a_deferred_answer_comes_back_after_its_delay_without_counting_an_attempt(
    backend: Backend, queue: JobQueue
) -> None:
    [job_id] = await enqueue_many(queue, backend.now, 1)
    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None
    assert (lease.answer, lease.answer_since, lease.delivery_tries) == (None, None, 0)
    assert await queue.mark_reply_started(job_id, lease.attempt, backend.now)

    outcome = await queue.defer(lease, ANSWER, "sendPhoto: 502", backend.now, BACKOFF)

    assert outcome is FailOutcome.RETRY
    assert await queue.claim("w1", backend.now, 30) is None  # waiting out its delay
    stats = await queue.stats(backend.now)
    assert (stats.queued, stats.in_flight, stats.delivering) == (1, 0, 1)
    assert not await queue.reply_started(job_id)  # the deferring attempt says nothing went out
    since = backend.now
    await backend.advance(BACKOFF + 0.2)
    again = await queue.claim("w2", backend.now, 30)
    assert again is not None
    assert (again.job_id, again.attempt, again.answer) == (job_id, 1, ANSWER)
    assert again.answer_since == pytest.approx(since)
    assert again.delivery_tries == 1
    assert await queue.mark_reply_started(job_id, again.attempt, backend.now)  # no takeover wait


async def test_a_deferral_keeps_the_stored_answer_and_first_failure_time_and_counts_tries(
    backend: Backend, queue: JobQueue
) -> None:
    [_job_id] = await enqueue_many(queue, backend.now, 1)
    first_failure = backend.now
    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None
    assert await queue.defer(lease, ANSWER, "429", backend.now, 0) is FailOutcome.RETRY
    for _tries in (2, 3):
        await backend.advance(0.05)
        lease = await queue.claim("w1", backend.now, 30)
        assert lease is not None
        assert await queue.defer(lease, None, "still down", backend.now, 0) is FailOutcome.RETRY
    await backend.advance(0.05)

    lease = await queue.claim("w1", backend.now, 30)

    assert lease is not None
    assert (lease.answer, lease.delivery_tries, lease.attempt) == (ANSWER, 3, 1)
    assert lease.answer_since == pytest.approx(first_failure)
    assert await queue.complete(lease, backend.now)
    stats = await queue.stats(backend.now)
    assert (stats.done, stats.delivering, stats.queued) == (1, 0, 0)


async def test_a_deferred_job_keeps_its_place_in_line(backend: Backend, queue: JobQueue) -> None:
    first, _second = await enqueue_many(queue, backend.now, 2)
    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None
    assert lease.job_id == first
    assert await queue.defer(lease, ANSWER, "503", backend.now, 0) is FailOutcome.RETRY
    await backend.advance(0.05)

    again = await queue.claim("w1", backend.now, 30)

    assert again is not None
    assert again.job_id == first


async def test_a_stale_lease_cannot_defer(backend: Backend) -> None:
    queue = backend.open()
    [job_id] = await enqueue_many(queue, backend.now, 1)
    stale = await queue.claim("w1", backend.now, VT)
    assert stale is not None
    await backend.advance(VT + 0.3)
    current = await queue.claim("w2", backend.now, 30)
    assert current is not None
    assert current.job_id == job_id

    assert await queue.defer(stale, ANSWER, "late", backend.now, 0) is FailOutcome.LEASE_LOST
    assert await queue.complete(current, backend.now)


async def test_a_job_holding_its_answer_is_not_exhausted_by_dying_workers(backend: Backend) -> None:
    queue = backend.open(max_attempts=1)
    [job_id] = await enqueue_many(queue, backend.now, 1)
    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None
    assert lease.final
    assert await queue.defer(lease, ANSWER, "timeout", backend.now, 0) is FailOutcome.RETRY
    await backend.advance(0.05)
    died = await expire_leases(backend, queue, job_id, 3)
    assert all(not lease.exhausted and lease.answer == ANSWER for lease in died)

    last = await queue.claim("w2", backend.now, 30)

    assert last is not None
    assert not last.exhausted
    assert last.answer == ANSWER
    assert await queue.dead_letters() == []


async def test_stored_answers_are_dropped_when_the_job_ends_and_told_dead_letters_count_as_apologised(
    backend: Backend, queue: JobQueue
) -> None:
    told, untold = await enqueue_many(queue, backend.now, 2)
    for _ in range(2):
        lease = await queue.claim("w1", backend.now, 30)
        assert lease is not None
        assert await queue.defer(lease, ANSWER, "down", backend.now, 0) is FailOutcome.RETRY
    await backend.advance(0.05)
    first = await queue.claim("w1", backend.now, 30)
    second = await queue.claim("w1", backend.now, 30)
    assert first is not None
    assert second is not None
    assert first.job_id == told
    # the horizon passed: both become dead letters; the first user got the apology
    assert await queue.fail(first, "not delivered within 24 h", backend.now, False) is FailOutcome.DEAD
    assert await queue.mark_reply_started(told, first.attempt, backend.now)
    await queue.mark_reply_sent(told)
    await queue.mark_reply_sent(told)  # recorded once
    assert await queue.fail(second, "not delivered within 24 h", backend.now, False) is FailOutcome.DEAD

    stats = await queue.stats(backend.now)

    assert (stats.dead, stats.apologised, stats.delivering, stats.done) == (2, 1, 0, 0)
    letters = {letter.job_id: letter for letter in await queue.dead_letters()}
    assert letters[untold].error == "not delivered within 24 h"


async def test_a_failure_notice_sent_before_the_job_is_buried_counts_as_apologised(
    backend: Backend, queue: JobQueue
) -> None:
    [job_id] = await enqueue_many(queue, backend.now, 1)
    lease = await queue.claim("w1", backend.now, 30)
    assert lease is not None
    assert await queue.mark_reply_started(job_id, lease.attempt, backend.now)
    await queue.mark_reply_sent(job_id)

    assert await queue.fail(lease, "recognizer down", backend.now, False) is FailOutcome.DEAD

    stats = await queue.stats(backend.now)
    assert (stats.dead, stats.apologised) == (1, 1)


async def test_dead_letters_are_listed_newest_first(backend: Backend, queue: JobQueue) -> None:
    ids = await enqueue_many(queue, backend.now, 3)
    for index, job_id in enumerate(ids):
        lease = await queue.claim("w1", backend.now + index, 30)
        assert lease is not None
        assert lease.job_id == job_id
        await queue.fail(lease, f"error {index}", backend.now + index, retryable=False)

    letters = await queue.dead_letters(limit=2)

    assert [letter.job_id for letter in letters] == [ids[2], ids[1]]
    assert [letter.error for letter in letters] == ["error 2", "error 1"]
    assert len(await queue.dead_letters()) == 3
    assert await queue.dead_letters(limit=0) == []


async def test_a_reopened_queue_sees_everything(backend: Backend, queue: JobQueue) -> None:
    first, second, third = await enqueue_many(queue, backend.now, 3)
    lease = await queue.claim("w1", backend.now, 300)
    doomed = await queue.claim("w1", backend.now, 300)
    assert lease is not None
    assert doomed is not None
    assert await queue.mark_reply_started(first, lease.attempt)
    await queue.mark_reply_sent(first)
    assert await queue.fail(doomed, "bad photo", backend.now, retryable=False) is FailOutcome.DEAD
    before = await queue.stats(backend.now)
    await queue.close()

    reopened = backend.open()

    assert await reopened.stats(backend.now) == before
    assert await reopened.reply_started(first)
    assert await reopened.reply_sent(first)
    assert (await reopened.enqueue("telegram:1:0", "user0", {}, backend.now)).created is False
    assert [letter.job_id for letter in await reopened.dead_letters()] == [second]
    assert await reopened.position(third) == 0
    assert await reopened.complete(lease, backend.now)  # the lease outlives the process that took it
    nxt = await reopened.claim("w2", backend.now, 30)
    assert nxt is not None
    assert (nxt.job_id, nxt.payload) == (third, {"n": 2})


async def test_queues_sharing_storage_never_hand_out_a_job_twice(backend: Backend, queue: JobQueue) -> None:
    ids = await enqueue_many(queue, backend.now, 24)
    workers = [backend.open() for _ in range(3)]

    async def drain(worker: JobQueue, name: str) -> list[str]:
        taken = []
        while (lease := await worker.claim(name, backend.now, 30)) is not None:
            taken.append(lease.job_id)
            assert await worker.complete(lease, backend.now)
        return taken

    results = await asyncio.gather(*(drain(w, f"w{i}") for i, w in enumerate(workers)))

    everything = [job_id for taken in results for job_id in taken]
    assert sorted(everything) == sorted(ids)
    assert len(set(everything)) == len(ids)
    assert (await queue.stats(backend.now)).done == 24


async def test_bad_arguments_are_refused(backend: Backend, queue: JobQueue) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        await queue.enqueue("", "u", {}, backend.now)
    with pytest.raises(ValueError, match="user"):
        await queue.enqueue("k", "", {}, backend.now)
    with pytest.raises(TypeError):
        await queue.enqueue("k", "u", {"bytes": b"\x00"}, backend.now)
    with pytest.raises(ValueError, match="visibility_timeout_s"):
        await queue.claim("w1", backend.now, 0)
    with pytest.raises(ValueError, match="now"):
        await queue.claim("w1", float("nan"), 30)
    with pytest.raises(ValueError, match="max_attempts"):
        backend.open(max_attempts=0)
    assert (await queue.stats(backend.now)).queued == 0


async def test_a_closed_queue_refuses_calls(backend: Backend, queue: JobQueue) -> None:
    await queue.close()
    await queue.close()
    with pytest.raises(QueueClosed):
        await queue.enqueue("k", "u", {}, backend.now)
    with pytest.raises(QueueClosed):
        await queue.stats(backend.now)


# -- backend specific: how each reports that its storage is unavailable ---------------------------


@pytest.mark.redis
async def test_redis_outage_raises_a_typed_error_and_recovers(redis_server: RedisServer) -> None:
    queue = RedisJobQueue(redis_server.url)
    try:
        now = time.time()
        await queue.enqueue("tg:1:1", "u", {}, now)
        redis_server.stop()

        async with asyncio.timeout(5):  # a guard against hanging, not a timing assertion
            with pytest.raises(QueueUnavailable) as caught:
                await queue.enqueue("tg:1:2", "u", {}, now)
            with pytest.raises(QueueUnavailable):
                await queue.claim("w1", now, 30)
        assert "try again" in str(caught.value)

        redis_server.start()  # an empty server: the stream and its group are recreated on demand
        result = await queue.enqueue("tg:1:3", "u", {}, now)
        assert result.created
        lease = await queue.claim("w1", now, 30)
        assert lease is not None
        assert lease.job_id == result.job_id
        assert await queue.complete(lease, now)
    finally:
        await queue.close()


async def test_a_sqlite_file_from_before_exhaustion_is_upgraded_in_place(tmp_path: Path) -> None:
    """A version-1 file (no `exhausted` or `reply_sent`) with a job whose leases ran out keeps working."""
    path = tmp_path / "queue.sqlite3"
    now = time.time()
    old = sqlite3.connect(path, isolation_level=None)
    old.execute(
        "CREATE TABLE queue_jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE,"
        " idempotency_key TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, payload TEXT NOT NULL,"
        " created_at REAL NOT NULL, state TEXT NOT NULL, available_at REAL NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0, lease_token TEXT, lease_worker TEXT, lease_deadline REAL,"
        " reply_started INTEGER NOT NULL DEFAULT 0, last_error TEXT, finished_at REAL)"
    )
    old.execute(
        "INSERT INTO queue_jobs (job_id, idempotency_key, user_id, payload, created_at, state,"
        " available_at, attempts, lease_token, lease_worker, lease_deadline)"
        " VALUES ('j1', 'tg:1:1', 'u', '{}', ?, 'leased', ?, 3, 't', 'w0', ?)",
        (now, now, now - 1),
    )
    old.execute(  # answered by a version without `reply_sent`: a started reply counted as sent
        "INSERT INTO queue_jobs (job_id, idempotency_key, user_id, payload, created_at, state,"
        " available_at, attempts, reply_started, finished_at)"
        " VALUES ('j0', 'tg:1:0', 'u', '{}', ?, 'done', ?, 1, 1, ?)",
        (now, now, now),
    )
    old.execute("PRAGMA user_version = 1")
    old.close()
    queue = SqliteJobQueue(path, max_attempts=3)
    try:
        lease = await queue.claim("w1", now, 30)
        assert lease is not None
        assert (lease.job_id, lease.attempt, lease.exhausted) == ("j1", 4, True)
        assert await queue.reply_sent("j0")
        assert not await queue.reply_sent("j1")
    finally:
        await queue.close()


async def test_sqlite_locked_past_the_busy_timeout_raises_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    queue = SqliteJobQueue(path, policy=SqlitePolicy(busy_timeout_s=0.2))
    try:
        await queue.enqueue("tg:1:1", "u", {}, time.time())
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        try:
            with pytest.raises(QueueUnavailable):
                await queue.claim("w1", time.time(), 30)
            assert (await queue.stats(time.time())).queued == 1  # readers are not blocked (WAL)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert await queue.claim("w1", time.time(), 30) is not None
    finally:
        await queue.close()
