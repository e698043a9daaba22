"""The shared Rekognition rate limit: its schedule on SQLite and Redis, and 4 worker processes under
the fake's account quota.

The load test runs 4 spawned processes (nothing shared but the schedule), each analysing photos
concurrently with one attempt per call (no retries to hide throttling) against the fake endpoint
that enforces 10 calls per second per API. With the shared gate at 8 per second no call may be
throttled; the same load without the gate must be throttled, or the test proves nothing.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.rate_limit import RateGate, RedisSlotSchedule, SlotSchedule, SqliteSlotSchedule
from bot.storage import RedisPolicy
from core.analysis_types import ExifData, Feature, PreparedPhoto
from core.errors import RecognizerThrottled
from core.recognizers.base import CallGate, OpenGate
from core.recognizers.rekognition import RekognitionRecognizer
from tests.conftest import RedisServer
from tests.fakes.aws_env import use_dummy_credentials
from tests.fakes.rekognition import FakeRekognition

PROCESSES = 4
PHOTOS_PER_PROCESS = 6
ACCOUNT_TPS = 10
GATE_TPS = 8
FEATURES = frozenset({Feature.LABELS, Feature.FACES})
OPERATIONS = ("DetectLabels", "DetectFaces")


def open_schedule(backend: str, target: str) -> SlotSchedule:
    if backend == "sqlite":
        return SqliteSlotSchedule(Path(target))
    return RedisSlotSchedule(target)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "data" / "rate.sqlite3")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        yield "redis", server.url


def test_slots_are_handed_out_one_interval_apart_and_refused_past_the_bound(backend: tuple[str, str]) -> None:
    """Slots are 0.5 s apart on the wall clock, whatever each call's own time on a loaded machine.

    A wait is measured from the moment of its call, so each is checked against the slot it should
    start (first call + n x 0.5 s) seen from before and after that call, not as a fixed number.
    """
    schedule = open_schedule(*backend)
    first = time.time()

    def reserve(operation: str, max_wait: float, slot: float) -> float | None:
        before = time.time()
        wait = schedule.reserve(operation, 0.5, max_wait)
        after = time.time()
        if wait is not None:
            assert before + wait - 0.05 <= first + slot <= after + wait + 0.05, (operation, slot, wait)
        return wait

    for slot in (0.0, 0.5, 1.0):
        assert reserve("DetectLabels", 1.2, slot) is not None
    assert reserve("DetectLabels", 1.2, 1.5) is None  # would be about 1.5 s ahead
    # The refusal reserved nothing, and another API has its own schedule.
    assert reserve("DetectLabels", 1.6, 1.5) is not None
    assert reserve("DetectFaces", 1.2, time.time() - first) is not None


def test_an_idle_api_saves_no_burst_credit(tmp_path: Path) -> None:
    now = [1000.0]
    schedule = SqliteSlotSchedule(tmp_path / "rate.sqlite3", clock=lambda: now[0])
    assert schedule.reserve("DetectText", 0.2, 5) == 0.0
    now[0] += 60  # a minute idle
    assert [schedule.reserve("DetectText", 0.2, 5) for _ in range(3)] == pytest.approx([0.0, 0.2, 0.4])


def test_the_gate_sleeps_until_its_slot_and_refuses_instead_of_waiting_too_long(tmp_path: Path) -> None:
    now = [0.0]
    slept: list[float] = []
    gate = RateGate(
        SqliteSlotSchedule(tmp_path / "rate.sqlite3", clock=lambda: now[0]),
        4,
        max_wait=0.6,
        sleep=slept.append,
    )
    for _ in range(3):
        gate.wait_turn("DetectFaces")
    assert slept == pytest.approx([0.25, 0.5])  # the first call goes at once
    with pytest.raises(RecognizerThrottled, match="DetectFaces"):
        gate.wait_turn("DetectFaces")


def test_an_unreachable_redis_is_a_throttling_answer(redis_server: RedisServer) -> None:
    schedule = RedisSlotSchedule(redis_server.url, policy=RedisPolicy(timeout_s=0.5))
    redis_server.stop()
    with pytest.raises(RecognizerThrottled, match="could not be reached"):
        schedule.reserve("DetectLabels", 0.1, 1)


def _photo() -> PreparedPhoto:
    image = Image.new("RGB", (320, 240), (90, 140, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return PreparedPhoto(
        image=image,
        jpeg=buffer.getvalue(),
        source_format="JPEG",
        original_width=320,
        original_height=240,
        orientation=1,
        exif=ExifData(),
    )


async def _analyse_batch(endpoint: str, gate: CallGate) -> list[str]:
    recognizer = RekognitionRecognizer(
        region="us-east-1",
        endpoint_url=endpoint,
        max_attempts=1,
        read_timeout=10,
        concurrent_photos=PHOTOS_PER_PROCESS,
        gate=gate,
    )
    photo = _photo()
    try:
        analyses = await asyncio.gather(
            *(recognizer.analyze(photo, FEATURES) for _ in range(PHOTOS_PER_PROCESS)), return_exceptions=True
        )
    finally:
        recognizer.close()
    outcomes = []
    for analysis in analyses:
        if isinstance(analysis, BaseException):
            outcomes.append(f"failed: {analysis!r}")
        else:
            outcomes.append("ok" if not analysis.errors else f"errors: {analysis.errors}")
    return outcomes


def worker_process(endpoint: str, backend: str, target: str, barrier: Any, results: Any) -> None:
    """Process entry point: one worker's batch, started together with the others."""
    try:
        gate: CallGate = (
            OpenGate() if backend == "none" else RateGate(open_schedule(backend, target), GATE_TPS)
        )
        barrier.wait(timeout=60)
        results.put(asyncio.run(_analyse_batch(endpoint, gate)))
    except BaseException as error:
        results.put([f"crashed: {error!r}"])
        raise


def _run_workers(fake: FakeRekognition, backend: str, target: str) -> list[str]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=worker_process, args=(fake.url, backend, target, barrier, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [outcome for _ in processes for outcome in results.get(timeout=120)]
    finally:
        for process in processes:
            process.join(30)
    return outcomes


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeRekognition]:
    """The fake endpoint with a 10-TPS account quota per API and realistic latency."""
    use_dummy_credentials(monkeypatch, tmp_path, access_key="AKIDRATE", secret_key="rate-secret")
    with FakeRekognition() as fake:
        fake.limit_tps(ACCOUNT_TPS)
        fake.set_latency(0.05, 0.3, seed=7)
        yield fake


def test_four_workers_sharing_the_gate_are_never_throttled(
    account: FakeRekognition, backend: tuple[str, str]
) -> None:
    started = time.monotonic()
    outcomes = _run_workers(account, *backend)
    elapsed = time.monotonic() - started
    assert outcomes == ["ok"] * (PROCESSES * PHOTOS_PER_PROCESS)
    assert account.throttled() == 0
    for operation in OPERATIONS:
        assert len(account.requests_for(operation)) == PROCESSES * PHOTOS_PER_PROCESS
        assert account.max_rate(operation) <= ACCOUNT_TPS
    # 24 calls per API at 8 per second cannot all have gone in under about 2.9 s.
    assert elapsed > (PROCESSES * PHOTOS_PER_PROCESS - 1) / GATE_TPS


def test_the_same_load_without_the_gate_is_throttled(account: FakeRekognition) -> None:
    outcomes = _run_workers(account, "none", "")
    assert account.throttled() > 0
    assert any(outcome != "ok" for outcome in outcomes)
