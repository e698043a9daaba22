"""A worker killed with SIGKILL mid-job: another worker process takes the job over and it is finished once.

Each worker is a real process (this module run with `python -m`), sharing the queue through the
SQLite file or a real redis-server. Worker A claims the job with a short visibility timeout and
stalls before it replies, in the middle of sending the reply, or after it has replied; the test
kills it with SIGKILL while worker B is already polling. B must reclaim the job once A's lease
runs out, complete it, and the side-effect log must show exactly one reply and one completion.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.queue import JobQueue, RedisJobQueue, SqliteJobQueue

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 1.0  # worker A's visibility timeout: how long a dead worker holds a job


def open_queue(backend: str, target: str) -> JobQueue:
    if backend == "sqlite":
        return SqliteJobQueue(target)
    return RedisJobQueue(target)


def record(log: Path, line: str) -> None:
    """Append one side effect; O_APPEND writes are whole lines even from several processes."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


async def run_worker(backend: str, target: str, worker_id: str, stall: str, log: Path) -> None:
    """The worker loop from `JobQueue`'s docstring, for one job; `stall` says where to hang."""
    queue = open_queue(backend, target)
    try:
        print("ready", flush=True)
        give_up = time.monotonic() + 20
        while (lease := await queue.claim(worker_id, time.time(), LEASE_S)) is None:
            if time.monotonic() > give_up:
                raise SystemExit("no job to claim")
            await asyncio.sleep(0.05)
        print(f"claimed {lease.job_id} {lease.attempt} {time.time():.3f}", flush=True)
        if await queue.reply_sent(lease.job_id):
            record(log, f"skip-reply {lease.job_id} {worker_id}")
        else:
            if stall == "before-reply":
                print("stalled", flush=True)
                await asyncio.sleep(3600)
            if await queue.mark_reply_started(lease.job_id, lease.attempt):
                if stall == "mid-reply":  # killed during the send: the platform got nothing
                    print("stalled", flush=True)
                    await asyncio.sleep(3600)
                record(log, f"reply {lease.job_id} {worker_id}")
                await queue.mark_reply_sent(lease.job_id)
            if stall == "after-reply":
                print("stalled", flush=True)
                await asyncio.sleep(3600)
        if await queue.complete(lease):
            record(log, f"complete {lease.job_id} {worker_id}")
        print(f"finished {time.time():.3f}", flush=True)
    finally:
        await queue.close()


async def spawn(
    backend: str, target: str, worker_id: str, stall: str, log: Path
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.test_queue_kill9",
        backend,
        target,
        worker_id,
        stall,
        str(log),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )


async def read_until(process: asyncio.subprocess.Process, prefix: str) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(20):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError(f"worker exited before printing {prefix!r}")
            if line.startswith(prefix):
                return line.strip()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "queue.sqlite3")
    else:
        yield "redis", request.getfixturevalue("redis_server").url


@pytest.mark.parametrize("stall", ["before-reply", "mid-reply", "after-reply"])
async def test_a_killed_workers_job_is_finished_once_by_another_worker(
    target: tuple[str, str], stall: str, tmp_path: Path
) -> None:
    backend, where = target
    log = tmp_path / "side-effects.log"
    queue = open_queue(backend, where)
    workers: list[asyncio.subprocess.Process] = []
    try:
        job = await queue.enqueue("telegram:1:1", "telegram:7", {"file_id": "x"}, time.time())

        doomed = await spawn(backend, where, "worker-a", stall, log)
        workers.append(doomed)
        first_claim = (await read_until(doomed, "claimed")).split()
        assert first_claim[1:3] == [job.job_id, "1"]
        await read_until(doomed, "stalled")
        survivor = await spawn(backend, where, "worker-b", "never", log)
        workers.append(survivor)
        await read_until(survivor, "ready")  # polling, finding the job leased

        os.kill(doomed.pid, signal.SIGKILL)
        killed_at = time.time()
        assert await doomed.wait() == -signal.SIGKILL

        claimed = (await read_until(survivor, "claimed")).split()
        finished = (await read_until(survivor, "finished")).split()
        async with asyncio.timeout(10):
            assert await survivor.wait() == 0

        assert claimed[1:3] == [job.job_id, "2"]  # the dead worker's attempt counted
        replier = "worker-a" if stall == "after-reply" else "worker-b"
        effects = sorted(log.read_text().splitlines())
        expected = [f"complete {job.job_id} worker-b", f"reply {job.job_id} {replier}"]
        if stall == "after-reply":
            expected.append(f"skip-reply {job.job_id} worker-b")
        assert effects == sorted(expected)
        stats = await queue.stats(time.time())
        assert (stats.done, stats.in_flight, stats.queued, stats.dead) == (1, 0, 0, 0)
        assert await queue.reply_sent(job.job_id)
        print(
            f"\n{backend}/{stall}: lease {LEASE_S} s; killed {killed_at - float(first_claim[3]):.2f} s"
            f" after the claim; reclaimed {float(claimed[3]) - killed_at:.2f} s and completed"
            f" {float(finished[1]) - killed_at:.2f} s after kill -9"
        )
    finally:
        for process in workers:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await queue.close()


if __name__ == "__main__":
    backend_arg, target_arg, worker_arg, stall_arg, log_arg = sys.argv[1:6]
    asyncio.run(run_worker(backend_arg, target_arg, worker_arg, stall_arg, Path(log_arg)))
