"""A stop that stops: `photodetective run` exits within its grace + 2 s after SIGTERM, whatever it does.

Each case runs the real executable against the fakes, puts it in one state (idle in a long poll,
stuck in getMe at start-up, analysing, replying through a 429 `retry_after` 40 backoff, serving
Slack and the web page), sends SIGTERM and measures until the process is gone. The grace is 3 s
here so the suite stays quick; the deadlines scale with it (see bot.stopping). Cutting a job short
must not lose it: the queue still holds it afterwards, neither done nor dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Protocol

import pytest

from bot.queue import JobQueue, RedisJobQueue, SqliteJobQueue
from bot.queue.models import QueueStats
from tests.fakes.rekognition import FakeRekognition
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.runner_helpers import PHOTODETECTIVE, clean_env, free_port, get, jpeg, wait_for

GRACE_S = 3.0
#: The promise: gone within the grace plus this, measured from the signal.
WITHIN_S = GRACE_S + 2.0

pytestmark = pytest.mark.slow


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


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def launch(tmp_path: Path, telegram: FakeTelegram) -> Iterator[Launch]:
    started: list[Bot] = []

    def start(role: str = "all", env: Mapping[str, str] | None = None, *, as_pid_1: bool = False) -> Bot:
        bot = Bot(tmp_path, telegram, role, env, as_pid_1=as_pid_1)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.kill()


def send_photo(telegram: FakeTelegram) -> None:
    alice = telegram.user(4242)
    telegram.send_photo(telegram.private_chat(alice), jpeg(), sender=alice)


@pytest.mark.parametrize("role", ["all", "ingress", "worker"])
def test_idle_in_a_long_poll_stops_at_once(launch: Launch, telegram: FakeTelegram, role: str) -> None:
    bot = launch(role)
    bot.serving()
    if role != "worker":  # a worker receives nothing: it waits for jobs in the queue
        wait_for(lambda: "getUpdates" in [method for method, _ in telegram.started], "the long poll")
    took = bot.stop()
    assert bot.process.returncode == 0, bot.stderr
    assert took < WITHIN_S, bot.stderr
    assert "stopped" in bot.stderr


def test_a_getme_that_hangs_at_start_up_does_not_hold_the_stop(
    launch: Launch, telegram: FakeTelegram
) -> None:
    telegram.set_delay("getMe", 120)
    bot = launch()
    wait_for(lambda: "getMe" in [method for method, _ in telegram.started], "getMe")
    took = bot.stop()
    assert bot.process.returncode == 0, bot.stderr
    assert took < WITHIN_S, bot.stderr
    assert "Traceback" not in bot.stderr


def with_rekognition(rekognition: FakeRekognition, **extra: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "AKIAFAKESTOPPING0000",
        "AWS_SECRET_ACCESS_KEY": "fake-stopping-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PHOTODETECTIVE_BACKEND": "rekognition",
        "PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL": rekognition.url,
        "PHOTODETECTIVE_REKOGNITION_MAX_ATTEMPTS": "1",
        "PHOTODETECTIVE_REKOGNITION_READ_TIMEOUT": "60",
        **extra,
    }


def analysing(
    launch: Launch, telegram: FakeTelegram, rekognition: FakeRekognition, env: dict[str, str]
) -> Bot:
    """A bot whose one job waits on a Rekognition call that takes a minute (in a thread)."""
    rekognition.set_delay(60.0, operation="DetectLabels")
    bot = launch("all", env)
    bot.serving()
    send_photo(telegram)
    wait_for(lambda: rekognition.requests_for("DetectFaces"), "the recognizer at work")
    return bot


def answered_after_a_restart(
    launch: Launch, telegram: FakeTelegram, rekognition: FakeRekognition, env: dict[str, str]
) -> None:
    """Nothing was lost: the next process answers the photo, once."""
    rekognition.set_delay(0.0, operation="DetectLabels")
    bot = launch("all", env)
    bot.serving()
    wait_for(
        lambda: telegram.calls_to("sendPhoto", "sendDocument", ok=True), "the reply after the restart", 60
    )
    bot.stop()
    assert len(telegram.calls_to("sendPhoto", "sendDocument", ok=True)) == 1
    assert bot.queue().done == 1


@pytest.mark.parametrize("store", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_job_still_analysing_after_the_grace_goes_back_to_the_queue(
    launch: Launch, telegram: FakeTelegram, store: str, request: pytest.FixtureRequest
) -> None:
    redis = (
        {"PHOTODETECTIVE_REDIS_URL": request.getfixturevalue("redis_server").url} if store == "redis" else {}
    )
    with FakeRekognition() as rekognition:
        env = with_rekognition(rekognition, **redis)
        bot = analysing(launch, telegram, rekognition, env)
        took = bot.stop()
        assert bot.process.returncode == 0, bot.stderr
        assert took < WITHIN_S, bot.stderr
        stats = bot.queue()
        assert (stats.done, stats.dead) == (0, 0)
        assert stats.queued == 1  # given back at once, not left to its lease
        assert not telegram.calls_to("sendPhoto", "sendDocument", "sendMessage", ok=True)
        answered_after_a_restart(launch, telegram, rekognition, env)


def test_a_reply_backing_off_after_429_retry_after_40_does_not_hold_the_stop(
    launch: Launch, telegram: FakeTelegram
) -> None:
    telegram.rate_limit("sendPhoto", times=100, retry_after=40)
    telegram.rate_limit("sendDocument", times=100, retry_after=40)
    bot = launch()
    bot.serving()
    send_photo(telegram)
    wait_for(lambda: telegram.calls_to("sendPhoto", "sendDocument"), "the first reply attempt (429)")
    took = bot.stop()
    assert bot.process.returncode == 0, bot.stderr
    assert took < WITHIN_S, bot.stderr
    stats = bot.queue()
    assert (stats.done, stats.dead) == (0, 0)
    assert stats.queued + stats.in_flight == 1


def test_a_second_signal_exits_at_once_and_leaves_no_image_process(
    launch: Launch, telegram: FakeTelegram
) -> None:
    with FakeRekognition() as rekognition:
        # A short lease, so the job left behind by the exit comes back within the test.
        env = with_rekognition(rekognition, PHOTODETECTIVE_JOB_VISIBILITY_TIMEOUT_S="4")
        bot = analysing(launch, telegram, rekognition, env)
        pool = bot.children()
        assert pool, "the image pool should be running"
        bot.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # inside the grace: the job is still being waited for
        took = bot.stop(signal.SIGINT)
        assert took < 1.5, bot.stderr
        assert bot.process.returncode == 128 + signal.SIGINT, bot.stderr
        assert "SIGINT again: exiting at once" in bot.stderr
        for pid in pool:
            wait_for(partial(gone, pid), f"pool process {pid} gone", 5)
        stats = bot.queue()
        assert (stats.done, stats.dead) == (0, 0)
        assert stats.queued + stats.in_flight == 1
        answered_after_a_restart(launch, telegram, rekognition, env)


def gone(pid: int) -> bool:
    """No such process any more, or only its exit status waiting to be collected."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def test_slack_and_the_web_page_running_stop_within_the_grace(launch: Launch, telegram: FakeTelegram) -> None:
    with FakeSlack() as slack:
        bot = launch(
            "all",
            {
                "PHOTODETECTIVE_SLACK_BOT_TOKEN": "xoxb-fake-bot-token",
                "PHOTODETECTIVE_SLACK_SIGNING_SECRET": "stopping-signing-secret",
                "PHOTODETECTIVE_SLACK_API_URL": slack.api_url,
                "PHOTODETECTIVE_WEB_ENABLED": "true",
            },
        )
        bot.serving()
        wait_for(lambda: "getUpdates" in [method for method, _ in telegram.started], "the long poll")
        took = bot.stop()
    assert bot.process.returncode == 0, bot.stderr
    assert took < WITHIN_S, bot.stderr
    assert "slack adapter started" in bot.stderr
    assert "web adapter started" in bot.stderr


def test_a_process_killed_outright_takes_its_image_processes_with_it(
    launch: Launch, telegram: FakeTelegram
) -> None:
    bot = launch()
    bot.serving()
    send_photo(telegram)
    wait_for(lambda: telegram.calls_to("sendPhoto", "sendDocument", ok=True), "the reply")
    pool = bot.children()
    assert pool, "the image pool should be running"
    bot.process.kill()
    bot.process.communicate(timeout=10)  # returns only once no pool process holds stderr open
    for pid in pool:
        wait_for(partial(gone, pid), f"pool process {pid} gone", 5)


def pid_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not pid_namespaces(), reason="needs unshare --pid (root or user namespaces)")
@pytest.mark.parametrize("when", ["starting", "running"])
def test_as_process_1_like_in_a_container_sigterm_is_honoured(
    launch: Launch, telegram: FakeTelegram, when: str
) -> None:
    """Process 1 has no default action for SIGTERM: only a handler makes `docker stop` work."""
    bot = launch(as_pid_1=True)
    if when == "running":
        bot.serving()
        wait_for(lambda: "getUpdates" in [method for method, _ in telegram.started], "the long poll")
    else:  # while it imports: the launcher's handler is in place (before it, no code can help; see docs)
        wait_for(lambda: bot.handles(signal.SIGTERM), "the launcher's SIGTERM handler")
    took = bot.stop()
    assert took < WITHIN_S, bot.stderr
    # unshare passes on how its child ended: an exit code, or the signal that ended it.
    assert bot.process.returncode in ((0,) if when == "running" else (0, 143, -signal.SIGTERM)), bot.stderr
