"""Whole jobs through `Worker`: from a submitted photo to the one reply a user sees, and the quota after it.

Everything ours is real: `PhotoService`, the SQLite queue and quota store in a temporary folder, the
core pipeline, and `RekognitionRecognizer` with a real boto3 client over HTTP. Only the network is
faked: `FakeRekognition` on 127.0.0.1 (scripted to fail, throttle or answer slowly) and the chat
platform (`tests.fakes.chat`: the photos it serves and the replies users would see).
The last tests submit against a real redis-server that is stopped and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from bot.access import AccessPolicy
from bot.delivery import DeliveryPolicy
from bot.photo_requests import AnalysisReply, FailureReply, FileRef, PhotoRequest
from bot.ports import DeliveryFailed
from bot.preferences import SQLitePreferences
from bot.queue import JobQueue, RedisJobQueue, SqliteJobQueue
from bot.queue.base import EXPIRED_ERROR
from bot.quota import QuotaPolicy, QuotaStore, RedisQuotaStore, SQLiteQuotaStore
from bot.service import TRY_AGAIN_SHORTLY, Accepted, PhotoService, Refused
from bot.storage import RedisPolicy
from bot.worker import GAVE_UP, POOL_BROKEN, Worker, WorkerConfig
from core.analysis_types import DEFAULT_FEATURES, Feature
from core.limits import ImageLimits
from core.recognizers.rekognition import RekognitionRecognizer
from tests.conftest import RedisServer
from tests.fakes.aws_env import use_dummy_credentials
from tests.fakes.chat import UNAVAILABLE, InMemoryPhotoSource, RecordingReplyPort
from tests.fakes.rekognition import FakeRekognition

MAX_ATTEMPTS = 3
HTML = b"<!DOCTYPE html><html><head><title>Login</title></head><body>Please sign in</body></html>"


def jpeg(width: int = 640, height: int = 480) -> bytes:
    image = Image.new("RGB", (width, height), (70, 120, 180))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(230, 200, 150))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


FILES = {"photo.jpg": jpeg(), "page.html": HTML, "tiny.jpg": jpeg(40, 40)}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials from the environment, nothing from files, no instance-metadata lookups."""
    use_dummy_credentials(
        monkeypatch,
        tmp_path,
        access_key="AKIAFAKEWORKERTEST01",
        secret_key="fake/Worker+Secret/0000000000000000000000",
    )


@dataclass
class Rig:
    """One deployment in miniature: stores, service, recognizer, and the fake platform."""

    queue: JobQueue
    quota: QuotaStore
    service: PhotoService
    recognizer: RekognitionRecognizer
    fake: FakeRekognition
    source: InMemoryPhotoSource = field(default_factory=lambda: InMemoryPhotoSource(FILES))
    replies: RecordingReplyPort = field(default_factory=RecordingReplyPort)
    limits: ImageLimits = field(default_factory=ImageLimits)
    counter: int = 0

    def worker(
        self,
        pool: Executor | None = None,
        clock: Callable[[], float] = time.time,
        pool_factory: Callable[[], Executor] | None = None,
        **config: Any,
    ) -> Worker:
        settings: dict[str, Any] = {
            "worker_id": "worker-1",
            "concurrency": 2,
            "visibility_timeout_s": 5.0,
            "job_timeout_s": 10.0,
            "poll_interval_s": 0.05,
            "grace_period_s": 10.0,
        }
        settings.update(config)
        return Worker(
            queue=self.queue,
            quota=self.quota,
            recognizer=self.recognizer,
            sources={"telegram": self.source},
            replies={"telegram": self.replies},
            limits=self.limits,
            config=WorkerConfig(**settings),
            show_location=lambda request: request.private,
            pool=pool,
            pool_factory=pool_factory,
            clock=clock,
        )

    async def submit(self, file_id: str = "photo.jpg", *, user: str = "42") -> PhotoRequest:
        self.counter += 1
        request = PhotoRequest(
            platform="telegram",
            user_id=user,
            chat_id=user,
            message_id=str(self.counter),
            file=FileRef(file_id=file_id, size=len(FILES[file_id])),
            features=frozenset({Feature.LABELS, Feature.FACES}),
            reply_to={"chat_id": user},
        )
        verdict = await self.service.submit(request)
        assert isinstance(verdict, Accepted), verdict
        return request

    async def used(self, request: PhotoRequest) -> tuple[int, int]:
        """(photos charged today, jobs holding a concurrency slot) for the request's user."""
        usage = await self.service.usage(request.user_key)
        return usage.used, usage.active_jobs


def make_service(queue: JobQueue, quota: QuotaStore, folder: Path) -> PhotoService:
    return PhotoService(
        queue=queue,
        quota=quota,
        policy=QuotaPolicy(daily_limit=10, max_concurrent=5, burst_limit=10),
        access=AccessPolicy(),
        capabilities=frozenset(Feature) - {Feature.CELEBRITIES},
        max_bytes=5_000_000,
        preferences=SQLitePreferences(folder / "preferences.sqlite3"),
        default_features=DEFAULT_FEATURES,
    )


@pytest.fixture
def fake() -> Iterator[FakeRekognition]:
    with FakeRekognition() as server:
        yield server


@contextlib.asynccontextmanager
async def rig_on(queue: JobQueue, tmp_path: Path, fake: FakeRekognition) -> AsyncIterator[Rig]:
    """A rig around `queue`, with the SQLite quota store and a recognizer talking to `fake`."""
    quota = SQLiteQuotaStore(tmp_path / "quota.sqlite3")
    recognizer = RekognitionRecognizer(
        endpoint_url=fake.url, region="us-east-1", max_attempts=1, read_timeout=5, connect_timeout=2
    )
    try:
        yield Rig(queue, quota, make_service(queue, quota, tmp_path), recognizer, fake)
    finally:
        recognizer.close()
        await queue.close()
        await quota.close()


@pytest.fixture
async def rig(tmp_path: Path, fake: FakeRekognition) -> AsyncIterator[Rig]:
    queue = SqliteJobQueue(tmp_path / "queue.sqlite3", max_attempts=MAX_ATTEMPTS, retry_backoff_s=0)
    async with rig_on(queue, tmp_path, fake) as built:
        yield built


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def run_until(worker: Worker, condition: Callable[[], bool], within: float = 10.0) -> None:
    """Run the worker loop until `condition` holds, then stop it and wait for its drain."""
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await eventually(condition, within)
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)


def only_reply(rig: Rig, request: PhotoRequest) -> AnalysisReply | FailureReply:
    replies = rig.replies.replies_to(request)
    assert len(replies) == 1, replies
    return replies[0]


# -- a job that works ---------------------------------------------------------------------------


async def test_a_photo_is_analysed_and_answered_once_with_an_annotated_jpeg(rig: Rig) -> None:
    request = await rig.submit()

    await run_until(rig.worker(), lambda: bool(rig.replies.delivered))

    reply = only_reply(rig, request)
    assert isinstance(reply, AnalysisReply)
    assert reply.request == request
    assert "Person" in [label.name for label in reply.analysis.labels]
    assert len(reply.analysis.faces) == 1
    assert reply.analysis.features == {Feature.LABELS, Feature.FACES}
    with Image.open(io.BytesIO(reply.annotated_jpeg)) as annotated:
        assert (annotated.format, annotated.size) == ("JPEG", (reply.width, reply.height))
        assert not annotated.getexif()
    assert reply.show_location  # a private chat
    assert sorted(r.operation for r in rig.fake.requests) == ["DetectFaces", "DetectLabels"]
    assert await rig.used(request) == (1, 0)  # charged once, slot freed
    stats = await rig.queue.stats(time.time())
    assert (stats.done, stats.queued, stats.in_flight, stats.dead) == (1, 0, 0, 0)


async def test_jobs_are_answered_in_the_order_they_were_submitted(rig: Rig) -> None:
    requests = [await rig.submit(user=str(user)) for user in range(4)]
    # None ahead: a job taken ahead may be answered before the one before it has sent its answer.
    await run_until(rig.worker(concurrency=1, ahead=0), lambda: len(rig.replies.delivered) == 4)
    assert [r.request for r in rig.replies.delivered] == requests


async def test_a_message_submitted_twice_is_one_job_one_charge_and_one_reply(rig: Rig) -> None:
    request = await rig.submit()
    again = await rig.service.submit(request)  # the platform delivered the same message again
    assert isinstance(again, Accepted)
    assert again.duplicate

    await run_until(rig.worker(), lambda: bool(rig.replies.delivered))
    late = await rig.service.submit(request)  # and once more after it was answered
    assert isinstance(late, Accepted)
    assert late.duplicate

    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert await rig.used(request) == (1, 0)
    assert len(rig.fake.requests_for("DetectLabels")) == 1
    stats = await rig.queue.stats(time.time())
    assert (stats.done, stats.queued, stats.in_flight) == (1, 0, 0)  # nothing left to answer again


# -- the user's own bad input -------------------------------------------------------------------


@pytest.mark.parametrize(("charge_user_errors", "charged"), [(False, 0), (True, 1)])
async def test_a_file_that_is_not_a_photo_gets_a_friendly_answer_and_a_refund_by_default(
    rig: Rig, charge_user_errors: bool, charged: int
) -> None:
    request = await rig.submit("page.html")

    await run_until(rig.worker(charge_user_errors=charge_user_errors), lambda: bool(rig.replies.delivered))

    reply = only_reply(rig, request)
    assert isinstance(reply, FailureReply)
    assert (reply.reason, reply.user_fault) == ("unsupported_format", True)
    assert reply.message.startswith("That file looks like an HTML page, not a photo.")
    assert await rig.used(request) == (charged, 0)
    assert rig.fake.requests == []  # nothing billed for it
    assert (await rig.queue.stats(time.time())).done == 1  # answered: not retried, not a dead letter


# -- failures that are not the user's -----------------------------------------------------------


@pytest.mark.parametrize("trouble", ["http-500", "throttled", "server-gone"])
async def test_a_recognizer_that_stays_down_is_retried_then_dead_lettered_with_one_answer_and_a_refund(
    rig: Rig, trouble: str
) -> None:
    if trouble == "http-500":
        rig.fake.fail("InternalServerError", status=500)
    elif trouble == "throttled":
        rig.fake.throttle()
    request = await rig.submit()
    if trouble == "server-gone":
        rig.fake.stop()

    await run_until(rig.worker(), lambda: bool(rig.replies.delivered))

    reply = only_reply(rig, request)
    assert isinstance(reply, FailureReply)
    assert not reply.user_fault
    assert reply.message.startswith("Sorry, I couldn't analyse that photo: ")
    assert "Amazon Rekognition" in reply.message
    assert reply.message.endswith("You were not charged.")
    if trouble != "server-gone":
        assert len(rig.fake.requests_for("DetectLabels")) == MAX_ATTEMPTS  # one call per attempt
    assert await rig.used(request) == (0, 0)
    assert (await rig.service.stats()).refunded == 1
    stats = await rig.queue.stats(time.time())
    assert (stats.dead, stats.done, stats.queued, stats.in_flight) == (1, 0, 0, 0)
    [dead] = await rig.queue.dead_letters()
    assert dead.attempts == MAX_ATTEMPTS
    assert dead.error.startswith("recognizer: ")
    assert "Amazon Rekognition" in dead.error


async def test_a_recognizer_hiccup_is_retried_and_answered_once(rig: Rig) -> None:
    rig.fake.fail("InternalServerError", status=500, times=2)
    request = await rig.submit()

    await run_until(rig.worker(), lambda: bool(rig.replies.delivered))

    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert await rig.used(request) == (1, 0)
    assert (await rig.queue.stats(time.time())).done == 1


async def test_a_download_that_fails_once_is_retried(rig: Rig) -> None:
    rig.source.fail_times = 1
    request = await rig.submit()

    await run_until(rig.worker(), lambda: bool(rig.replies.delivered))

    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert rig.source.fetched == ["photo.jpg", "photo.jpg"]
    assert await rig.used(request) == (1, 0)


async def test_a_job_that_times_out_every_time_is_answered_once_and_refunded(rig: Rig) -> None:
    rig.fake.set_delay(3.0, operation="DetectLabels")
    request = await rig.submit()

    worker = rig.worker(job_timeout_s=0.4)
    await run_until(worker, lambda: bool(rig.replies.delivered))

    reply = only_reply(rig, request)
    assert isinstance(reply, FailureReply)
    assert (reply.reason, reply.user_fault) == ("timeout", False)
    assert "took too long" in reply.message
    assert await rig.used(request) == (0, 0)
    [dead] = await rig.queue.dead_letters()
    assert (dead.attempts, dead.error) == (MAX_ATTEMPTS, "timed out after 0.4 s")


# -- delivery through a platform outage (issue 21, finding 1) ---------------------------------------

FAST_DELIVERY = DeliveryPolicy(backoff_s=0.05, backoff_max_s=0.2, horizon_s=3600)


async def test_an_answer_outlives_a_platform_outage_and_goes_out_once_without_a_second_analysis(
    rig: Rig,
) -> None:
    rig.replies = RecordingReplyPort(fail_times=12, failure=UNAVAILABLE)  # far past FloodControl's tries
    request = await rig.submit()

    await run_until(rig.worker(delivery=FAST_DELIVERY), lambda: bool(rig.replies.delivered), within=20)

    assert len(rig.replies.attempts) == 13
    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert len(rig.fake.requests_for("DetectLabels")) == 1  # analysed (and billed) once
    assert await rig.used(request) == (1, 0)  # charged once, slot freed
    stats = await rig.queue.stats(time.time())
    assert (stats.done, stats.dead, stats.delivering, stats.queued) == (1, 0, 0, 0)


async def test_an_answer_waiting_for_its_platform_survives_a_restart(rig: Rig) -> None:
    rig.replies = RecordingReplyPort(fail_times=1, failure=UNAVAILABLE)
    request = await rig.submit()
    slow = DeliveryPolicy(backoff_s=3600, backoff_max_s=3600)
    await run_until(rig.worker(delivery=slow), lambda: bool(rig.replies.attempts))
    assert (await rig.queue.stats(time.time())).delivering == 1
    rig.replies = RecordingReplyPort()  # a new process, the platform back

    later = time.time() + 3601
    lease = await rig.queue.claim("worker-2", later, 5)
    assert lease is not None
    assert lease.answer is not None
    await rig.worker(clock=lambda: later).process(lease)

    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert len(rig.fake.requests_for("DetectLabels")) == 1
    assert await rig.used(request) == (1, 0)


async def test_a_permanent_refusal_ends_the_job_at_once_as_a_refunded_dead_letter(rig: Rig) -> None:
    rig.replies = RecordingReplyPort(
        fail_times=1, failure=DeliveryFailed("Forbidden: bot was blocked by the user", permanent=True)
    )
    request = await rig.submit()

    await run_until(rig.worker(delivery=FAST_DELIVERY), lambda: bool(rig.replies.attempts))

    assert len(rig.replies.attempts) == 1  # no second try, no second bill
    assert await rig.used(request) == (0, 0)
    [letter] = await rig.queue.dead_letters()
    assert "bot was blocked by the user" in letter.error
    assert (await rig.queue.stats(time.time())).done == 0


async def test_past_the_delivery_horizon_the_user_gets_one_apology_a_refund_and_a_dead_letter(
    rig: Rig,
) -> None:
    rig.replies = RecordingReplyPort(fail_times=1, failure=UNAVAILABLE)
    request = await rig.submit()
    now = [time.time()]
    worker = rig.worker(clock=lambda: now[0], delivery=DeliveryPolicy(backoff_s=1, horizon_s=3600))
    lease = await rig.queue.claim("worker-1", now[0], 5)
    assert lease is not None
    await worker.process(lease)  # analysed; the platform is down
    assert rig.replies.delivered == []
    assert await rig.used(request) == (1, 1)  # charged while the answer waits

    now[0] += 3601  # a day's outage in an hour's clock: the platform answers again
    lease = await rig.queue.claim("worker-1", now[0], 5)
    assert lease is not None
    await worker.process(lease)

    reply = only_reply(rig, request)
    assert isinstance(reply, FailureReply)
    assert reply.reason == "undelivered"
    assert "not charged" in reply.message
    assert await rig.used(request) == (0, 0)
    [letter] = await rig.queue.dead_letters()
    assert "not delivered within 1 h" in letter.error
    assert "the user was told" in letter.error
    stats = await rig.queue.stats(now[0])
    assert (stats.dead, stats.apologised, stats.done, stats.delivering) == (1, 1, 0, 0)
    metric = worker.metrics.undelivered.labels(platform="telegram", reason="horizon")
    assert metric._value.get() == 1
    assert len(rig.fake.requests_for("DetectLabels")) == 1


async def process_at(rig: Rig, worker: Worker, at: float) -> None:
    """Claim the job at `at` (the queue and the worker share that clock) and process it."""
    lease = await rig.queue.claim("worker-1", at, 5)
    assert lease is not None
    await worker.process(lease)


async def test_an_apology_waits_for_a_platform_still_down_at_the_horizon(rig: Rig) -> None:
    rig.replies = RecordingReplyPort(fail_times=3, failure=UNAVAILABLE)
    request = await rig.submit()
    now = [time.time()]
    worker = rig.worker(clock=lambda: now[0], delivery=DeliveryPolicy(backoff_s=1, horizon_s=3600))
    await process_at(rig, worker, now[0])  # analysed; the platform is down

    now[0] += 3601
    await process_at(rig, worker, now[0])  # stale: refunded, the apology goes back to wait

    assert await rig.used(request) == (0, 0)
    assert await rig.queue.dead_letters() == []
    assert (await rig.queue.stats(now[0])).delivering == 1
    for _ in range(2):  # still down, then back
        now[0] += 120
        await process_at(rig, worker, now[0])

    reply = only_reply(rig, request)
    assert isinstance(reply, FailureReply)
    assert reply.reason == "undelivered"
    assert [o.reason for o in rig.replies.attempts if isinstance(o, FailureReply)] == ["undelivered"] * 3
    [letter] = await rig.queue.dead_letters()
    assert "not delivered within 1 h" in letter.error
    assert letter.error.endswith("the user was told")
    stats = await rig.queue.stats(now[0])
    assert (stats.dead, stats.apologised, stats.delivering, stats.done) == (1, 1, 0, 0)
    assert await rig.used(request) == (0, 0)
    assert len(rig.fake.requests_for("DetectLabels")) == 1


async def test_an_apology_still_undelivered_after_a_second_horizon_is_given_up(rig: Rig) -> None:
    rig.replies = RecordingReplyPort(fail_times=100, failure=UNAVAILABLE)
    request = await rig.submit()
    now = [time.time()]
    worker = rig.worker(clock=lambda: now[0], delivery=DeliveryPolicy(backoff_s=1, horizon_s=3600))
    await process_at(rig, worker, now[0])
    now[0] += 3601
    await process_at(rig, worker, now[0])
    tries = len(rig.replies.attempts)

    now[0] += 3600
    await process_at(rig, worker, now[0])

    assert len(rig.replies.attempts) == tries  # not tried again: given up
    assert rig.replies.delivered == []
    [letter] = await rig.queue.dead_letters()
    assert "the apology was not delivered either" in letter.error
    stats = await rig.queue.stats(now[0])
    assert (stats.dead, stats.apologised, stats.delivering) == (1, 0, 0)
    assert await rig.used(request) == (0, 0)


async def test_a_failure_notice_is_kept_through_an_outage_too(rig: Rig) -> None:
    rig.replies = RecordingReplyPort(fail_times=3, failure=UNAVAILABLE)
    request = await rig.submit("page.html")  # not a photo: a friendly notice

    await run_until(rig.worker(delivery=FAST_DELIVERY), lambda: bool(rig.replies.delivered))

    reply = only_reply(rig, request)
    assert isinstance(reply, FailureReply)
    assert reply.user_fault
    assert await rig.used(request) == (0, 0)


def test_the_delivery_backoff_grows_to_its_cap_with_jitter_and_honours_retry_after() -> None:
    policy = DeliveryPolicy(backoff_s=2, backoff_max_s=60)
    low = [policy.delay_s(n, None, lambda a, b: a) for n in range(1, 9)]
    high = [policy.delay_s(n, None, lambda a, b: b) for n in range(1, 9)]

    assert low == [1, 2, 4, 8, 16, 30, 30, 30]
    assert high == [2, 4, 8, 16, 32, 60, 60, 60]
    assert policy.delay_s(1, 40, lambda a, b: a) == 40  # never sooner than the platform asked
    assert policy.delay_s(8, 3, lambda a, b: a) == 30


async def test_stopping_during_a_long_delivery_puts_the_answer_back_for_the_next_worker(rig: Rig) -> None:
    rig.replies.delay_s = 30  # the platform holds the upload (a 429 backoff, a hung connection)
    request = await rig.submit()
    worker = rig.worker(grace_period_s=0.05, delivery=FAST_DELIVERY)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await eventually(lambda: bool(rig.replies.attempts))

    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(running, 10)

    assert time.monotonic() - started < 5  # not held through the platform's wait
    assert rig.replies.delivered == []
    assert (await rig.queue.stats(time.time())).delivering == 1
    rig.replies = RecordingReplyPort()
    await run_until(rig.worker(delivery=FAST_DELIVERY), lambda: bool(rig.replies.delivered))
    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert len(rig.fake.requests_for("DetectLabels")) == 1
    assert await rig.used(request) == (1, 0)


# -- redelivery -----------------------------------------------------------------------------------


async def test_a_redelivered_job_whose_reply_was_sent_is_completed_without_answering(rig: Rig) -> None:
    request = await rig.submit()
    # An earlier worker took the job, answered, and died before completing it.
    start = time.time()
    first = await rig.queue.claim("dead-worker", start, 0.2)
    assert first is not None
    assert await rig.queue.mark_reply_started(first.job_id, first.attempt)
    await rig.queue.mark_reply_sent(first.job_id)

    # The queue takes its clock from the caller: a claim 1 s later is past the dead worker's lease.
    second = await rig.queue.claim("worker-1", start + 1, 5)
    assert second is not None
    assert (second.job_id, second.attempt) == (first.job_id, 2)
    await rig.worker().process(second)

    assert rig.replies.delivered == []
    assert rig.fake.requests == []  # not analysed (and billed) a second time
    assert await rig.used(request) == (1, 0)  # the charge stays, the slot is freed
    assert (await rig.queue.stats(time.time())).done == 1


async def test_a_job_whose_worker_died_mid_send_is_answered_by_the_next_attempt(rig: Rig) -> None:
    request = await rig.submit()
    # An earlier worker began its reply a minute ago and was killed before the platform had it.
    start = time.time()
    first = await rig.queue.claim("dead-worker", start, 0.2)
    assert first is not None
    assert await rig.queue.mark_reply_started(first.job_id, first.attempt, now=start - 60)

    second = await rig.queue.claim("worker-1", start + 1, 5)
    assert second is not None
    assert (second.job_id, second.attempt) == (first.job_id, 2)
    await rig.worker().process(second)

    assert only_reply(rig, request).request == request  # answered, once
    assert await rig.queue.reply_sent(first.job_id)
    assert not await rig.queue.mark_reply_started(first.job_id, 3)  # no later attempt answers again
    assert await rig.used(request) == (1, 0)  # charged once, slot freed
    assert (await rig.queue.stats(time.time())).done == 1


async def test_an_answer_cut_short_after_its_first_message_counts_as_sent(rig: Rig) -> None:
    rig.replies = RecordingReplyPort(cut_short_times=1)
    request = await rig.submit()
    lease = await rig.queue.claim("worker-1", time.time(), 5)
    assert lease is not None

    await rig.worker().process(lease)

    assert only_reply(rig, request).request == request
    assert await rig.queue.reply_sent(lease.job_id)  # no later attempt sends the photo again
    assert await rig.used(request) == (1, 0)  # the user got the analysis: charged, slot freed
    assert (await rig.queue.stats(time.time())).done == 1


async def assert_given_up_once(rig: Rig, request: PhotoRequest, expirations: int) -> None:
    """One failure answer, not analysed again, dead-lettered, and the user's quota given back."""
    reply = only_reply(rig, request)
    assert isinstance(reply, FailureReply)
    assert (reply.reason, reply.user_fault, reply.message) == ("gave_up", False, GAVE_UP)
    assert rig.source.fetched == []  # the photo that killed its workers was not even downloaded
    assert rig.fake.requests == []
    assert await rig.used(request) == (0, 0)  # refunded, slot freed
    assert (await rig.service.stats()).refunded == 1
    [dead] = await rig.queue.dead_letters()
    assert dead.idempotency_key == request.idempotency_key
    assert (dead.attempts, dead.error) == (expirations + 1, EXPIRED_ERROR % expirations)
    stats = await rig.queue.stats(time.time())
    assert (stats.dead, stats.done, stats.queued, stats.in_flight) == (1, 0, 0, 0)


async def test_a_photo_whose_workers_keep_dying_is_answered_once_dead_lettered_and_refunded(rig: Rig) -> None:
    request = await rig.submit()
    start = time.time()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        # Each of these workers was killed mid-job: its 5 s lease ran out unextended.
        died = await rig.queue.claim(f"killed-{attempt}", start + 10 * attempt, 5)
        assert died is not None
        assert (died.attempt, died.exhausted) == (attempt, False)

    worker = rig.worker(clock=lambda: time.time() + 3600)  # past the last lease
    await run_until(worker, lambda: bool(rig.replies.delivered))

    await assert_given_up_once(rig, request, MAX_ATTEMPTS)
    assert await rig.queue.claim("worker-2", time.time() + 7200, 5) is None  # nothing left to redo


@pytest.mark.redis
async def test_a_photo_whose_workers_keep_dying_is_given_up_once_on_redis(
    redis_server: RedisServer, tmp_path: Path, fake: FakeRekognition
) -> None:
    queue = RedisJobQueue(redis_server.url, max_attempts=2, retry_backoff_s=0)
    async with rig_on(queue, tmp_path, fake) as rig:
        request = await rig.submit()
        for attempt in (1, 2):
            died = await rig.queue.claim(f"killed-{attempt}", time.time(), 0.3)
            assert died is not None
            assert (died.attempt, died.exhausted) == (attempt, False)
            await asyncio.sleep(0.4)  # Redis measures leases with its own clock

        await run_until(rig.worker(), lambda: bool(rig.replies.delivered))

        await assert_given_up_once(rig, request, 2)


async def test_two_workers_on_one_job_answer_once(rig: Rig) -> None:
    """A worker that stalled past its lease and the one that took the job over both finish it."""
    rig.fake.set_delay(0.6, operation="DetectLabels")
    request = await rig.submit()
    start = time.time()
    stalled = await rig.queue.claim("stalled", start, 0.2)
    assert stalled is not None
    taker = await rig.queue.claim("taker", start + 1, 5)  # past the stalled worker's lease
    assert taker is not None

    await asyncio.gather(rig.worker(worker_id="stalled").process(stalled), rig.worker().process(taker))

    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert await rig.used(request) == (1, 0)
    stats = await rig.queue.stats(time.time())
    assert (stats.done, stats.in_flight, stats.queued) == (1, 0, 0)


async def test_an_unreadable_job_is_dead_lettered_without_an_answer(rig: Rig) -> None:
    await rig.queue.enqueue("telegram:broken", "telegram:1", {"platform": "telegram"}, time.time())
    lease = await rig.queue.claim("worker-1", time.time(), 5)
    assert lease is not None

    await rig.worker().process(lease)

    assert rig.replies.delivered == []
    [dead] = await rig.queue.dead_letters()
    assert dead.error.startswith("unreadable payload")


# -- graceful shutdown ----------------------------------------------------------------------------


async def test_stopping_lets_a_job_in_flight_finish_within_the_grace_period(rig: Rig) -> None:
    rig.fake.set_delay(0.5, operation="DetectLabels")
    request = await rig.submit()
    worker = rig.worker(grace_period_s=10)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await eventually(lambda: bool(rig.fake.requests_for("DetectFaces")))  # mid-recognition

    stop.set()
    await asyncio.wait_for(running, 10)

    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert await rig.used(request) == (1, 0)
    assert (await rig.queue.stats(time.time())).done == 1


async def test_stopping_with_a_short_grace_period_releases_the_job_for_another_worker(rig: Rig) -> None:
    rig.fake.set_delay(5.0, operation="DetectLabels")
    request = await rig.submit()
    later = await rig.submit(user="43")  # taken ahead, waiting for the one analysis: released too
    worker = rig.worker(grace_period_s=0.1, concurrency=1)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await eventually(lambda: bool(rig.fake.requests_for("DetectFaces")))

    stop.set()
    await asyncio.wait_for(running, 5)

    assert rig.replies.delivered == []
    stats = await rig.queue.stats(time.time())
    assert (stats.queued, stats.in_flight) == (2, 0)
    # Claimable at once, first in line, and the cancelled attempt was not counted.
    lease = await rig.queue.claim("worker-2", time.time(), 5)
    assert lease is not None
    assert lease.idempotency_key == request.idempotency_key
    assert lease.attempt == 1
    assert await rig.used(request) == (1, 1)  # still charged: the job is not finished

    rig.fake.set_delay(0, operation="DetectLabels")
    await rig.worker(worker_id="worker-2").process(lease)
    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert await rig.used(request) == (1, 0)
    assert rig.replies.replies_to(later) == []
    second = await rig.queue.claim("worker-2", time.time(), 5)
    assert second is not None
    assert (second.idempotency_key, second.attempt) == (later.idempotency_key, 1)


async def test_the_next_job_is_fetched_while_a_photo_is_analysed_and_waits_for_its_turn(rig: Rig) -> None:
    """One job ahead: its photo is downloaded and prepared during the analysis before it.

    Without it, the analysis slot stood idle while the next job was claimed, downloaded and decoded.
    Analyses still run `concurrency` at a time (one DetectLabels per photo, none overlapping), in order.
    """
    rig.fake.set_delay(1.0, operation="DetectLabels")
    requests = [await rig.submit(user=str(user)) for user in range(3)]
    stop = asyncio.Event()
    running = asyncio.create_task(rig.worker(concurrency=1).run(stop))
    try:
        await eventually(lambda: len(rig.source.fetched) == 2)
        assert rig.replies.delivered == []  # the second photo came in before the first was answered
        assert len(rig.source.fetched) == 2  # and only one job ahead
        await eventually(lambda: len(rig.replies.delivered) == 3, within=20)
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
    # The first two are taken together; whichever photo is ready first is analysed first.
    assert sorted(r.request.message_id for r in rig.replies.delivered) == [r.message_id for r in requests]
    analyses = sorted((r.started, r.ended) for r in rig.fake.requests_for("DetectLabels"))
    assert len(analyses) == 3
    assert all(ended <= started for (_, ended), (started, _) in itertools.pairwise(analyses))


async def test_a_stop_sends_a_job_waiting_for_its_analysis_back_at_once(rig: Rig) -> None:
    """The job ahead has not begun: the stop does not wait for its analysis within the grace."""
    rig.fake.set_delay(1.0, operation="DetectLabels")
    both = [await rig.submit(user="1"), await rig.submit(user="2")]
    stop = asyncio.Event()
    running = asyncio.create_task(rig.worker(concurrency=1, grace_period_s=10).run(stop))
    await eventually(lambda: len(rig.source.fetched) == 2 and bool(rig.fake.requests_for("DetectFaces")))

    stop.set()
    await asyncio.wait_for(running, 10)

    # Both were taken at once; the one whose photo was ready first was under way and finished.
    answered = [r for r in both if rig.replies.replies_to(r)]
    assert len(answered) == 1
    assert isinstance(only_reply(rig, answered[0]), AnalysisReply)
    ahead = next(r for r in both if r is not answered[0])
    assert len(rig.fake.requests_for("DetectLabels")) == 1
    lease = await rig.queue.claim("worker-2", time.time(), 5)
    assert lease is not None
    assert (lease.idempotency_key, lease.attempt) == (ahead.idempotency_key, 1)
    assert await rig.used(ahead) == (1, 1)  # charged, its job still to do


async def test_stopping_while_a_reply_is_being_sent_lets_it_arrive(rig: Rig) -> None:
    rig.replies.delay_s = 0.5  # a slow upload to the platform
    request = await rig.submit()
    worker = rig.worker(grace_period_s=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await eventually(lambda: bool(rig.replies.attempts))

    stop.set()
    await asyncio.wait_for(running, 5)

    assert isinstance(only_reply(rig, request), AnalysisReply)
    assert await rig.used(request) == (1, 0)
    stats = await rig.queue.stats(time.time())
    assert (stats.done, stats.in_flight, stats.queued) == (1, 0, 0)


# -- CPU work in a process pool -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spawn_pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


async def test_the_process_pool_prepares_and_draws_and_survives_rejected_photos(
    rig: Rig, spawn_pool: ProcessPoolExecutor
) -> None:
    """Rejections raised in a pool process must come back whole and leave the pool working."""
    tiny = await rig.submit("tiny.jpg", user="1")
    page = await rig.submit("page.html", user="2")
    good = await rig.submit("photo.jpg", user="3")

    await run_until(rig.worker(pool=spawn_pool, concurrency=1), lambda: len(rig.replies.delivered) == 3, 30)

    too_small = only_reply(rig, tiny)
    assert isinstance(too_small, FailureReply)
    assert (too_small.reason, too_small.user_fault) == ("too_small", True)
    assert "at least 80 pixels" in too_small.message
    not_a_photo = only_reply(rig, page)
    assert isinstance(not_a_photo, FailureReply)
    assert not_a_photo.message.startswith("That file looks like an HTML page, not a photo. Send")
    assert not_a_photo.message.count("not a photo") == 1
    analysed = only_reply(rig, good)
    assert isinstance(analysed, AnalysisReply)
    assert analysed.annotated_jpeg.startswith(b"\xff\xd8\xff")
    assert spawn_pool.submit(sum, [1, 2]).result(timeout=10) == 3  # the pool is still usable


async def test_a_pool_process_killed_mid_job_gets_a_new_pool_and_the_jobs_are_retried_and_answered_once(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The OOM killer taking a pool process must cost one attempt, not every job until a restart."""
    built: list[ProcessPoolExecutor] = []

    def one_process_pool() -> ProcessPoolExecutor:
        built.append(ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")))
        return built[-1]

    worker = rig.worker(pool_factory=one_process_pool, concurrency=2)
    try:
        loop = asyncio.get_running_loop()
        child = await loop.run_in_executor(built[0], os.getpid)  # the pool's one process, started
        # Keep that process busy, so both jobs' preparation waits in the pool when it is killed.
        busy: Future[None] = built[0].submit(time.sleep, 60)
        first = await rig.submit(user="1")
        second = await rig.submit(user="2")
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        # A job hands its photo to the pool in the same step as its download returns.
        await eventually(lambda: len(rig.source.fetched) == 2)
        os.kill(child, signal.SIGKILL)
        await eventually(lambda: len(rig.replies.delivered) == 2, 20)
        third = await rig.submit(user="3")  # after the rebuild
        await eventually(lambda: len(rig.replies.delivered) == 3, 20)
        stop.set()
        await asyncio.wait_for(running, 15)
    finally:
        await worker.close()
        for pool in built:
            pool.shutdown(wait=False, cancel_futures=True)

    with pytest.raises(BrokenProcessPool):
        busy.result(timeout=0)  # the kill really broke the first pool
    assert len(built) == 2  # both jobs saw it break; it was rebuilt once
    assert worker.pool is built[1]
    rebuilt = [r for r in caplog.records if r.levelno == logging.WARNING and "pool is broken" in r.message]
    assert len(rebuilt) == 1
    for request in (first, second, third):
        assert isinstance(only_reply(rig, request), AnalysisReply)
        assert await rig.used(request) == (1, 0)
    assert sorted(rig.source.fetched) == ["photo.jpg"] * 5  # the two killed attempts were retried
    retried = [r for r in caplog.records if "attempt 1 failed (retry)" in r.message]
    assert len(retried) == 2
    assert all(POOL_BROKEN in r.message for r in retried)
    stats = await rig.queue.stats(time.time())
    assert (stats.done, stats.dead, stats.queued, stats.in_flight) == (3, 0, 0, 0)


# -- submitting while Redis is down ---------------------------------------------------------------

#: One photo in a private chat, submitted straight to the service (no rig: the stores are the test's own).
PRIVATE_REQUEST = PhotoRequest(
    platform="telegram",
    user_id="42",
    chat_id="42",
    message_id="1",
    file=FileRef("photo.jpg", size=1000),
    features=DEFAULT_FEATURES,
)


@pytest.mark.redis
async def test_submit_refuses_while_redis_is_down_and_recovers_by_itself(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    queue = RedisJobQueue(redis_server.url)
    quota = RedisQuotaStore.from_url(redis_server.url, policy=RedisPolicy(timeout_s=0.5))
    service = make_service(queue, quota, tmp_path)
    request = PRIVATE_REQUEST
    try:
        assert isinstance(await service.submit(replace(request, message_id="0")), Accepted)
        redis_server.stop()
        assert await service.submit(request) == Refused("unavailable", TRY_AGAIN_SHORTLY)

        redis_server.start()  # an empty Redis, as after a restart without persistence
        verdict = await service.submit(request)
        assert isinstance(verdict, Accepted)
        assert not verdict.duplicate
        assert (await service.usage(request.user_key)).used == 1
        assert (await queue.stats(time.time())).queued == 1
    finally:
        await queue.close()
        await quota.close()


@pytest.mark.redis
async def test_a_redis_queue_outage_after_the_charge_is_refunded(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    queue = RedisJobQueue(redis_server.url)
    quota = SQLiteQuotaStore(tmp_path / "quota.sqlite3")
    service = make_service(queue, quota, tmp_path)
    request = PRIVATE_REQUEST
    try:
        redis_server.stop()
        assert await service.submit(request) == Refused("unavailable", TRY_AGAIN_SHORTLY)
        usage = await service.usage(request.user_key)
        assert (usage.used, usage.active_jobs) == (0, 0)
        redis_server.start()
        assert isinstance(await service.submit(replace(request, message_id="2")), Accepted)
    finally:
        await queue.close()
        await quota.close()
