"""A stop that stops: `photodetective run` exits within its grace + 2 s after SIGTERM, whatever it does.

Each case runs the real executable against the fakes, puts it in one state (idle in a long poll,
stuck in getMe at start-up, analysing, replying through a 429 `retry_after` 40 backoff, serving
Slack and the web page), sends SIGTERM and measures until the process is gone. The grace is 3 s
here so the suite stays quick; the deadlines scale with it (see bot.stopping). Cutting a job short
must not lose it: the queue still holds it afterwards, neither done nor dead.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path

import pytest

from tests.fakes.rekognition import FakeRekognition
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.runner_helpers import wait_for
from tests.integration.stopping_helpers import WITHIN_S, Bot, Launch, gone, pid_namespaces, send_photo

pytestmark = pytest.mark.slow


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


def test_a_slack_socket_mode_connect_that_hangs_does_not_hold_the_stop(
    launch: Launch, telegram: FakeTelegram
) -> None:
    with FakeSlack() as slack:
        hang = slack.timeout("apps.connections.open", times=None)
        bot = launch(
            "all",
            {
                "PHOTODETECTIVE_SLACK_BOT_TOKEN": slack.bot_token,
                "PHOTODETECTIVE_SLACK_APP_TOKEN": slack.app_token,
                "PHOTODETECTIVE_SLACK_MODE": "socket",
                "PHOTODETECTIVE_SLACK_API_URL": slack.api_url,
            },
        )
        bot.serving()
        wait_for(lambda: hang.hits, "the Socket Mode connection attempt")
        took = bot.stop()
    assert bot.process.returncode == 0, bot.stderr
    assert took < WITHIN_S, bot.stderr
    assert "stopped while starting slack" in bot.stderr
