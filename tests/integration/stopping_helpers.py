"""Running `photodetective run` as a subprocess to stop it: the process, its pool, its queue afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from bot.queue import JobQueue, RedisJobQueue, SqliteJobQueue
from bot.queue.models import QueueStats
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.runner_helpers import PHOTODETECTIVE, clean_env, free_port, get, jpeg, wait_for

#: Short, so the tests stay quick; the deadlines after it are the same whatever the grace (bot.stopping).
GRACE_S = 3.0
#: The promise: gone within the grace plus this, measured from the signal.
WITHIN_S = GRACE_S + 2.0


class Bot:
    """One `photodetective run` process and what a test needs to stop it and look at it after."""

    def __init__(
        self,
        tmp_path: Path,
        telegram: FakeTelegram,
        role: str = "all",
        env: Mapping[str, str] | None = None,
        *,
        as_pid_1: bool = False,
    ) -> None:
        env = env or {}
        self.port = free_port()
        self.data = tmp_path / "data"
        self.redis_url = env.get("PHOTODETECTIVE_REDIS_URL") or None
        settings = {
            "PHOTODETECTIVE_BACKEND": "none",
            "PHOTODETECTIVE_TELEGRAM_TOKEN": telegram.token,
            "PHOTODETECTIVE_TELEGRAM_API_URL": telegram.url,
            "PHOTODETECTIVE_HTTP_HOST": "127.0.0.1",
            "PHOTODETECTIVE_HTTP_PORT": str(self.port),
            "PHOTODETECTIVE_WORKER_PROCESSES": "1",
            "PHOTODETECTIVE_SHUTDOWN_GRACE_S": str(GRACE_S),
            **env,
        }
        # As process 1 of its own PID namespace, as in a container (`unshare` waits for it).
        prefix = ["unshare", "--pid", "--fork"] if as_pid_1 else []
        self.process = subprocess.Popen(
            [*prefix, str(PHOTODETECTIVE), "run", "--role", role],
            env=clean_env(tmp_path, **settings),
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.process.pid
        if as_pid_1:
            self.pid = wait_for(lambda: self._children_of(self.process.pid), "the bot inside unshare")[0]
        self.stderr = ""

    def serving(self) -> None:
        """Wait until /healthz answers (the HTTP server is up; adapters may still be starting)."""
        base = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: get(f"{base}/healthz")[0] == 200 or self.process.poll() is not None, "/healthz")
        assert self.process.poll() is None, self.process.communicate()[1]

    def children(self) -> list[int]:
        """The bot's children now (the image pool), from /proc."""
        return self._children_of(self.pid)

    @staticmethod
    def _children_of(pid: int) -> list[int]:
        found: list[int] = []
        with contextlib.suppress(FileNotFoundError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                found += [int(child) for child in (task / "children").read_text().split()]
        return found

    def stop(self, signum: int = signal.SIGTERM) -> float:
        """Send `signum` to the bot; the seconds until it was gone."""
        sent = time.monotonic()
        os.kill(self.pid, signum)
        _, self.stderr = self.process.communicate(timeout=60)
        return time.monotonic() - sent

    def queue(self) -> QueueStats:
        """The job queue's counts, read from the store the bot used."""
        queue: JobQueue = (
            RedisJobQueue(self.redis_url) if self.redis_url else SqliteJobQueue(self.data / "queue.sqlite3")
        )

        async def read() -> QueueStats:
            try:
                return await queue.stats(time.time())
            finally:
                await queue.close()

        return asyncio.run(read())

    def kill(self) -> None:
        """Test clean-up after a failure: SIGKILL the process and its pool (which SIGKILL orphans)."""
        if self.process.poll() is None:
            for pid in [*self.children(), self.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.communicate(timeout=10)

    def handles(self, signum: int) -> bool:
        """Whether the bot has a handler for `signum` now (the kernel's SigCgt mask)."""
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
        return False


class Launch(Protocol):
    def __call__(
        self, role: str = "all", env: Mapping[str, str] | None = None, *, as_pid_1: bool = False
    ) -> Bot: ...


def send_photo(telegram: FakeTelegram) -> None:
    alice = telegram.user(4242)
    telegram.send_photo(telegram.private_chat(alice), jpeg(), sender=alice)


def gone(pid: int) -> bool:
    """No such process any more, or only its exit status waiting to be collected."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def pid_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, check=False)
    return probe.returncode == 0
