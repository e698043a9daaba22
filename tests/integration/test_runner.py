"""`photodetective run` as an operator runs it: a real subprocess, a fake Telegram, a fake Rekognition.

Covers what only the whole process shows: start-up from environment variables, /healthz, /readyz
and /metrics, a photo going from a Telegram update to a reply, SIGTERM letting the job in flight
finish, and bad settings stopping start-up with the variable named.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.rekognition import FakeRekognition
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.integration.runner_helpers import (
    PHOTODETECTIVE,
    clean_env,
    free_port,
    get,
    jpeg,
    run_cli,
    wait_for,
)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTelegram, FakeRekognition]]:
    with FakeTelegram() as telegram, FakeRekognition() as rekognition:
        yield telegram, rekognition


@pytest.fixture
def metrics_port() -> int:
    """The /metrics listener's port (apart from the public HTTP port)."""
    return free_port()


@pytest.fixture
def bot(
    tmp_path: Path, fakes: tuple[FakeTelegram, FakeRekognition], metrics_port: int
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`photodetective run` with Telegram (polling) and Rekognition pointed at the fakes."""
    telegram, rekognition = fakes
    port = free_port()
    env = clean_env(
        tmp_path,
        AWS_ACCESS_KEY_ID="AKIAFAKERUNNER000000",
        AWS_SECRET_ACCESS_KEY="fake-runner-secret",
        AWS_DEFAULT_REGION="us-east-1",
        PHOTODETECTIVE_BACKEND="rekognition",
        PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL=rekognition.url,
        PHOTODETECTIVE_REKOGNITION_MAX_ATTEMPTS="1",
        PHOTODETECTIVE_TELEGRAM_TOKEN=TOKEN,
        PHOTODETECTIVE_TELEGRAM_API_URL=telegram.url,
        PHOTODETECTIVE_HTTP_PORT=str(port),
        PHOTODETECTIVE_METRICS_PORT=str(metrics_port),
        PHOTODETECTIVE_WORKER_PROCESSES="1",
        PHOTODETECTIVE_SHUTDOWN_GRACE_S="20",
        PHOTODETECTIVE_LOG_FORMAT="json",
    )
    process = subprocess.Popen(
        [str(PHOTODETECTIVE), "run"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/healthz")[0] == 200 or process.poll() is not None, "the HTTP server")
        assert process.poll() is None, process.communicate()[1]
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: the bot stops its pool's processes too
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait(timeout=10)


def test_photo_to_reply_health_metrics_and_a_draining_sigterm(
    bot: tuple[subprocess.Popen[str], str], fakes: tuple[FakeTelegram, FakeRekognition]
) -> None:
    process, base = bot
    telegram, rekognition = fakes

    status, body = get(f"{base}/readyz")
    assert status == 200, body
    assert json.loads(body) == {"ready": True, "queue": "ok", "quota": "ok", "recognizer": "rekognition"}

    # A photo arrives while Rekognition is slow: the job is in flight when SIGTERM comes.
    rekognition.set_delay(3.0, operation="DetectLabels")
    alice = telegram.user(4242)
    chat = telegram.private_chat(alice)
    telegram.send_photo(chat, jpeg(), sender=alice)
    wait_for(lambda: rekognition.requests_for("DetectFaces"), "the recognizer call")
    process.send_signal(signal.SIGTERM)

    replies = wait_for(lambda: telegram.calls_to("sendPhoto", "sendDocument", ok=True), "the reply", 40)
    assert len(replies) == 1
    assert replies[0].chat_id == chat["id"]
    assert "Person" in replies[0].text
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr

    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    outcome = [line for line in lines if line.get("outcome")]
    assert len(outcome) == 1
    assert outcome[0]["outcome"] == "analysed"
    assert set(outcome[0]["seconds"]) >= {"download", "prepare", "recognize", "annotate", "reply"}
    assert TOKEN not in stderr
    assert "fake-runner-secret" not in stderr


def test_metrics_count_what_happened(
    bot: tuple[subprocess.Popen[str], str], fakes: tuple[FakeTelegram, FakeRekognition], metrics_port: int
) -> None:
    _, base = bot
    assert get(f"{base}/metrics")[0] == 404  # not on the public port
    telegram, _ = fakes
    bob = telegram.user(777)
    telegram.send_photo(telegram.private_chat(bob), jpeg(), sender=bob)
    wait_for(lambda: telegram.calls_to("sendPhoto", "sendDocument", ok=True), "the reply", 40)

    def analysed() -> str | None:
        _, text = get(f"http://127.0.0.1:{metrics_port}/metrics")
        return text if 'photodetective_photos_analysed_total{platform="telegram"} 1.0' in text else None

    text = wait_for(analysed, "the analysed counter")
    assert 'photodetective_photos_received_total{platform="telegram"} 1.0' in text
    assert 'photodetective_recognizer_calls_total{backend="rekognition",feature="labels"} 1.0' in text
    assert 'photodetective_stage_seconds_count{stage="recognize"} 1.0' in text
    assert "photodetective_queue_depth 0.0" in text


def run_quickly(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(tmp_path, "run", **env)


def test_bad_setting_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    result = run_quickly(
        tmp_path, PHOTODETECTIVE_QUOTA_DAILY_LIMIT="twenty", PHOTODETECTIVE_TELEGRAM_TOKEN="1:x"
    )
    assert result.returncode == 2
    assert "PHOTODETECTIVE_QUOTA_DAILY_LIMIT" in result.stderr


def test_no_platform_configured_explains_how(tmp_path: Path) -> None:
    result = run_quickly(tmp_path, PHOTODETECTIVE_BACKEND="none", PHOTODETECTIVE_HTTP_PORT=str(free_port()))
    assert result.returncode == 2
    assert "PHOTODETECTIVE_TELEGRAM_TOKEN" in result.stderr
    assert "PHOTODETECTIVE_SLACK_BOT_TOKEN" in result.stderr
