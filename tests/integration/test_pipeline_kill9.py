"""kill -9 a worker process in the middle of recognising a photo: after a restart the user gets one answer.

The whole application runs for real in subprocesses (`pipeline_worker_proc`): the worker loop, the
queue and quota store (SQLite files, or a real redis-server), the core pipeline and the Rekognition
backend over HTTP. The fake Rekognition holds DetectLabels for a few seconds while DetectFaces
answers at once, so once the fake has answered DetectFaces the job is provably mid-recognition;
the test then kills that worker with SIGKILL. A second worker takes the job over when the dead one's
lease runs out, and the user must get exactly one reply, be charged once, and the job be done once.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bot.access import AccessPolicy
from bot.photo_requests import FileRef, PhotoRequest
from bot.preferences import SQLitePreferences
from bot.quota import QuotaPolicy
from bot.service import Accepted, PhotoService
from core.analysis_types import DEFAULT_FEATURES, Feature
from tests.fakes.chat import read_lines
from tests.fakes.rekognition import FakeRekognition
from tests.integration.pipeline_worker_proc import open_stores

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 1.5  # the workers' visibility timeout: how long a killed worker keeps the job
RECOGNITION_DELAY_S = 5.0  # DetectLabels while the first worker runs: it is killed well before


def worker_env(tmp_path: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="AKIAFAKEKILLNINETEST",
        AWS_SECRET_ACCESS_KEY="fake/KillNine+Secret/000000000000000000000",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
    )
    return env


async def wait_for(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path)
    else:
        yield "redis", request.getfixturevalue("redis_server").url


async def test_a_worker_killed_mid_recognition_is_replaced_and_the_user_answered_once(
    target: tuple[str, str], tmp_path: Path
) -> None:
    backend, where = target
    photos = tmp_path / "photos"
    photos.mkdir()
    image = Image.new("RGB", (800, 600), (60, 110, 170))
    ImageDraw.Draw(image).rectangle((200, 150, 600, 450), fill=(220, 190, 140))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    (photos / "photo.jpg").write_bytes(buffer.getvalue())
    reply_log = tmp_path / "replies.jsonl"
    logs = tmp_path / "worker-logs"
    logs.mkdir()

    queue, quota = open_stores(backend, where)
    service = PhotoService(
        queue=queue,
        quota=quota,
        policy=QuotaPolicy(),
        access=AccessPolicy(),
        capabilities=frozenset(Feature) - {Feature.CELEBRITIES},
        max_bytes=5_000_000,
        preferences=SQLitePreferences(tmp_path / "preferences.sqlite3"),
        default_features=DEFAULT_FEATURES,
    )
    workers: list[asyncio.subprocess.Process] = []
    log_files: list[io.BufferedWriter] = []

    async def start_worker(name: str) -> asyncio.subprocess.Process:
        log_file = (logs / f"{name}.log").open("wb")
        log_files.append(log_file)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.pipeline_worker_proc",
            backend,
            where,
            fake.url,
            str(reply_log),
            str(photos),
            name,
            str(LEASE_S),
            cwd=ROOT,
            env=worker_env(tmp_path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log_file,
        )
        workers.append(process)
        return process

    def worker_logs() -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(logs.iterdir()))

    async with FakeRekognition() as fake:
        try:
            fake.set_delay(RECOGNITION_DELAY_S, operation="DetectLabels")
            started = time.monotonic()
            doomed = await start_worker("worker-a")
            request = PhotoRequest(
                platform="telegram",
                user_id="7",
                chat_id="7",
                message_id="1001",
                file=FileRef(file_id="photo.jpg", size=(photos / "photo.jpg").stat().st_size),
                features=frozenset({Feature.LABELS, Feature.FACES}),
                reply_to={"chat_id": "7"},
            )
            verdict = await service.submit(request)
            assert isinstance(verdict, Accepted)

            try:
                await wait_for(
                    lambda: bool(fake.requests_for("DetectFaces")), "worker A to call the recognizer"
                )
            except AssertionError:
                raise AssertionError(worker_logs()) from None
            os.kill(doomed.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            assert await doomed.wait() == -signal.SIGKILL
            assert read_lines(reply_log) == []  # A died before answering
            assert not fake.requests_for("DetectLabels")  # still held: A was mid-recognition

            fake.set_delay(0, operation="DetectLabels")
            survivor = await start_worker("worker-b")
            try:
                await wait_for(lambda: bool(read_lines(reply_log)), "worker B to answer")
            except AssertionError:
                raise AssertionError(worker_logs()) from None
            answered_at = time.monotonic()
            survivor.send_signal(signal.SIGTERM)  # a graceful stop lets B complete and settle the job
            async with asyncio.timeout(15):
                assert await survivor.wait() == 0, worker_logs()

            [reply] = read_lines(reply_log)
            assert reply["kind"] == "analysis", reply
            assert (reply["message_id"], reply["pid"]) == ("1001", survivor.pid)
            assert "Person" in reply["labels"]
            usage = await service.usage(request.user_key)
            assert (usage.used, usage.active_jobs) == (1, 0)
            stats = await service.stats()
            assert (stats.charged, stats.refunded) == (1, 0)
            queue_stats = await queue.stats(time.time())
            assert (queue_stats.done, queue_stats.in_flight, queue_stats.queued, queue_stats.dead) == (
                1,
                0,
                0,
                0,
            )
            print(
                f"\n{backend}: worker A killed {killed_at - started:.2f} s after start; "
                f"B answered {answered_at - killed_at:.2f} s after kill -9 (lease {LEASE_S} s)"
            )
        finally:
            for process in workers:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            for log_file in log_files:
                log_file.close()
            await queue.close()
            await quota.close()
