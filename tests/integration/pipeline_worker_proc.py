"""A real worker process for tests/integration/test_pipeline_kill9.py: `Worker.run` until SIGTERM.

    python -m tests.integration.pipeline_worker_proc BACKEND TARGET FAKE_URL REPLY_LOG PHOTO_DIR \
        WORKER_ID VISIBILITY_S

BACKEND is "sqlite" (TARGET: a folder holding queue.sqlite3 and quota.sqlite3) or "redis" (TARGET: a
redis URL for both the queue and the quota store). The recognizer is the real Rekognition backend
pointed at FAKE_URL; photos come from PHOTO_DIR (file_id = file name) and every reply is appended
as one JSON line to REPLY_LOG, so the test can count what users saw even after a kill -9.
AWS credentials come from the environment the test sets.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from bot.queue import JobQueue, RedisJobQueue, SqliteJobQueue
from bot.quota import QuotaStore, RedisQuotaStore, SQLiteQuotaStore
from bot.worker import Worker, WorkerConfig
from core.limits import ImageLimits
from core.recognizers.rekognition import RekognitionRecognizer
from tests.fakes.chat import DirectoryPhotoSource, RecordingReplyPort

MAX_ATTEMPTS = 3


def open_stores(backend: str, target: str) -> tuple[JobQueue, QuotaStore]:
    """The queue and quota store the test process opens too, on the same files or server."""
    if backend == "sqlite":
        folder = Path(target)
        return (
            SqliteJobQueue(folder / "queue.sqlite3", max_attempts=MAX_ATTEMPTS),
            SQLiteQuotaStore(folder / "quota.sqlite3"),
        )
    return RedisJobQueue(target, max_attempts=MAX_ATTEMPTS), RedisQuotaStore.from_url(target)


async def main(argv: list[str]) -> None:
    backend, target, fake_url, reply_log, photo_dir, worker_id, visibility = argv
    logging.basicConfig(level=logging.INFO, format=f"{worker_id} %(levelname)s %(name)s: %(message)s")
    queue, quota = open_stores(backend, target)
    recognizer = RekognitionRecognizer(
        endpoint_url=fake_url, region="us-east-1", max_attempts=1, read_timeout=30, connect_timeout=2
    )
    worker = Worker(
        queue=queue,
        quota=quota,
        recognizer=recognizer,
        sources={"telegram": DirectoryPhotoSource(Path(photo_dir))},
        replies={"telegram": RecordingReplyPort(Path(reply_log))},
        limits=ImageLimits(),
        config=WorkerConfig(
            worker_id=worker_id,
            concurrency=1,
            visibility_timeout_s=float(visibility),
            job_timeout_s=30,
            poll_interval_s=0.05,
            grace_period_s=10,
        ),
        show_location=lambda request: False,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    try:
        await worker.run(stop)
    finally:
        recognizer.close()
        await queue.close()
        await quota.close()
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
