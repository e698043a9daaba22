"""Start-up failures are one line naming the cause and the setting, never a traceback or the token.

Each case runs the real `photodetective` executable as an operator would, and checks the three
things an operator (and a supervisor) relies on: the exit code (2: change a setting; 1: something
outside failed, a restart may help), one line that says what to do, and no secret in the output.
"""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.integration.runner_helpers import free_port, jpeg, run_cli

WRONG_TOKEN = "987654321:WRONG-token-that-must-never-be-printed"
AWS_KEYS = {
    "AWS_ACCESS_KEY_ID": "AKIASTARTUPTEST00000",
    "AWS_SECRET_ACCESS_KEY": "startup-secret-never-shown",
}


#: A log line of start-up's progress (the text log format): not part of the error.
PROGRESS = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING) ")


def one_error_line(result: subprocess.CompletedProcess[str], *secrets: str) -> str:
    """The single line that mentions the failure; fails on a traceback or a leaked secret."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    for secret in secrets:
        assert secret not in output, f"{secret!r} leaked:\n{output}"
    errors = [line for line in result.stderr.splitlines() if line and not PROGRESS.match(line)]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_wrong_telegram_token_is_a_setting_to_fix_and_is_never_printed(tmp_path: Path) -> None:
    with FakeTelegram() as telegram:  # it answers 401 to any token but its own
        result = run_cli(
            tmp_path,
            "run",
            PHOTODETECTIVE_BACKEND="none",
            PHOTODETECTIVE_TELEGRAM_TOKEN=WRONG_TOKEN,
            PHOTODETECTIVE_TELEGRAM_API_URL=telegram.url,
            PHOTODETECTIVE_HTTP_PORT=str(free_port()),
        )
    line = one_error_line(result, WRONG_TOKEN, WRONG_TOKEN.split(":")[1])
    assert result.returncode == 2
    assert "refused the bot token" in line
    assert "PHOTODETECTIVE_TELEGRAM_TOKEN" in line


def test_an_unreachable_bot_api_fails_start_up_in_one_line(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_cli(
        tmp_path,
        "run",
        PHOTODETECTIVE_BACKEND="none",
        PHOTODETECTIVE_TELEGRAM_TOKEN=WRONG_TOKEN,
        PHOTODETECTIVE_TELEGRAM_API_URL=nowhere,
        PHOTODETECTIVE_HTTP_PORT=str(free_port()),
    )
    line = one_error_line(result, WRONG_TOKEN, WRONG_TOKEN.split(":")[1])
    assert result.returncode == 1
    assert nowhere in line
    assert "PHOTODETECTIVE_TELEGRAM_API_URL" in line


def test_an_http_port_in_use_fails_start_up_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken, FakeTelegram() as telegram:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            tmp_path,
            "run",
            PHOTODETECTIVE_BACKEND="none",
            PHOTODETECTIVE_TELEGRAM_TOKEN=telegram.token,
            PHOTODETECTIVE_TELEGRAM_API_URL=telegram.url,
            PHOTODETECTIVE_HTTP_HOST="127.0.0.1",
            PHOTODETECTIVE_HTTP_PORT=str(port),
        )
        line = one_error_line(result, telegram.token)
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in line
    assert "in use" in line
    assert "PHOTODETECTIVE_HTTP_PORT" in line


REKOGNITION_MISTAKES = {
    "no region": ({}, "region"),
    "malformed endpoint": (
        {"AWS_DEFAULT_REGION": "eu-west-1", "PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL": "not a url"},
        "PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL",
    ),
}


@pytest.mark.parametrize("command", ["analyze", "run"])
@pytest.mark.parametrize("mistake", sorted(REKOGNITION_MISTAKES))
def test_a_rekognition_setting_mistake_is_one_line_and_exit_2(
    tmp_path: Path, command: str, mistake: str
) -> None:
    env, named = REKOGNITION_MISTAKES[mistake]
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg())
    args = ["analyze", str(photo), "--backend", "rekognition"] if command == "analyze" else ["run"]
    result = run_cli(
        tmp_path,
        *args,
        PHOTODETECTIVE_BACKEND="rekognition",
        PHOTODETECTIVE_TELEGRAM_TOKEN=WRONG_TOKEN,
        PHOTODETECTIVE_HTTP_PORT=str(free_port()),
        **AWS_KEYS,
        **env,
    )
    line = one_error_line(result, WRONG_TOKEN, AWS_KEYS["AWS_SECRET_ACCESS_KEY"])
    assert result.returncode == 2
    assert named in line
    assert "PHOTODETECTIVE_REKOGNITION_REGION" in line


def test_a_refused_webhook_names_its_setting(tmp_path: Path) -> None:
    secret = "webhook-secret-never-printed"
    with FakeTelegram() as telegram:
        telegram.fail(
            "setWebhook", description="Bad Request: bad webhook: HTTPS url must be provided for webhook"
        )
        result = run_cli(
            tmp_path,
            "run",
            PHOTODETECTIVE_BACKEND="none",
            PHOTODETECTIVE_TELEGRAM_TOKEN=telegram.token,
            PHOTODETECTIVE_TELEGRAM_API_URL=telegram.url,
            PHOTODETECTIVE_TELEGRAM_MODE="webhook",
            PHOTODETECTIVE_TELEGRAM_WEBHOOK_URL="https://bot.example.org/telegram/webhook",
            PHOTODETECTIVE_TELEGRAM_WEBHOOK_SECRET=secret,
            PHOTODETECTIVE_HTTP_PORT=str(free_port()),
        )
        line = one_error_line(result, telegram.token, secret)
    assert result.returncode == 2
    assert "https url must be provided" in line.lower()
    assert "PHOTODETECTIVE_TELEGRAM_WEBHOOK_URL" in line


def test_a_data_folder_that_cannot_be_created_names_its_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli(
        tmp_path,
        "run",
        PHOTODETECTIVE_BACKEND="none",
        PHOTODETECTIVE_TELEGRAM_TOKEN=WRONG_TOKEN,
        PHOTODETECTIVE_DATA_DIR=str(blocker / "data"),
        PHOTODETECTIVE_HTTP_PORT=str(free_port()),
    )
    line = one_error_line(result, WRONG_TOKEN)
    assert result.returncode == 2
    assert str(blocker / "data") in line
    assert "PHOTODETECTIVE_DATA_DIR" in line


def test_a_redis_that_does_not_answer_fails_start_up_in_one_line(tmp_path: Path) -> None:
    nowhere = f"redis://:redis-password-never-shown@127.0.0.1:{free_port()}/0"  # nothing listens there
    result = run_cli(
        tmp_path,
        "run",
        PHOTODETECTIVE_BACKEND="none",
        PHOTODETECTIVE_WEB_ENABLED="true",  # its start reads the session secret from the store
        PHOTODETECTIVE_REDIS_URL=nowhere,
        PHOTODETECTIVE_HTTP_PORT=str(free_port()),
        PHOTODETECTIVE_METRICS_PORT="0",
    )
    line = one_error_line(result, "redis-password-never-shown")
    assert result.returncode == 1
    assert "Redis did not answer" in line
    assert "PHOTODETECTIVE_REDIS_URL" in line
