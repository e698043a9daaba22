"""The stop's deadlines agree everywhere: the code's bound, the compose file, the Dockerfile, the docs.

An operator reads one number in each place; if compose kills before the bot is done draining,
SIGKILL cuts replies short for nothing. So the container's stop timeout must cover the grace plus
the time the process may take after it (`bot.stopping`), with room to spare.
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import pytest
import yaml

from bot.settings import Settings
from bot.stopping import CANCEL_AFTER_GRACE_S, EXIT_AFTER_GRACE_S, Stopper, signal_exit_code

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_GRACE_S = Settings.model_fields["shutdown_grace_s"].default


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"compose duration {duration!r} not in whole seconds"
    return float(match.group(1))


def test_the_bound_after_the_grace_is_inside_the_promised_two_seconds() -> None:
    assert 0 < CANCEL_AFTER_GRACE_S < EXIT_AFTER_GRACE_S < 2.0


def test_compose_gives_every_bot_container_more_than_grace_and_bound() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    for name in ("ingress", "worker"):
        service = compose["services"][name]
        assert service["stop_signal"] == "SIGTERM"
        assert service["init"] is True
        grace = float(service.get("environment", {}).get("PHOTODETECTIVE_SHUTDOWN_GRACE_S", DEFAULT_GRACE_S))
        assert seconds(service["stop_grace_period"]) >= grace + EXIT_AFTER_GRACE_S + 5


def test_the_dockerfile_and_the_docs_name_the_same_stop_timeout() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^STOPSIGNAL SIGTERM$", dockerfile, re.MULTILINE)
    assert "docker stop -t 30" in dockerfile
    docs = (ROOT / "docs" / "operating" / "stopping.md").read_text()
    assert "docker stop -t 30" in docs
    assert "stop_grace_period: 30s" in docs
    assert f"PHOTODETECTIVE_SHUTDOWN_GRACE_S` (default {DEFAULT_GRACE_S:g} s)" in docs


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_forced_exit_uses_the_shells_code_for_the_signal(signum: int, code: int) -> None:
    assert signal_exit_code(signum) == code


async def test_a_second_signal_exits_at_once_with_the_signals_code() -> None:
    exits: list[int] = []
    cancelled: list[bool] = []
    stopper = Stopper(60.0, lambda: cancelled.append(True), exit=exits.append)
    stopper.install()
    try:
        signal.raise_signal(signal.SIGTERM)
        await asyncio_pause()
        assert stopper.event.is_set()
        assert exits == []
        signal.raise_signal(signal.SIGINT)
        assert exits == [130]
        assert cancelled == []  # the grace (60 s) is far from over
    finally:
        stopper.uninstall()


async def test_past_the_grace_the_rest_is_cancelled_then_the_process_exits() -> None:
    exits: list[int] = []
    cancelled = asyncio.Event()
    stopper = Stopper(0.1, cancelled.set, exit=exits.append)
    stopper.install()
    try:
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(cancelled.wait(), 10)
        assert stopper.cancelled
        for _ in range(200):  # the hard exit comes from a thread, a little later
            if exits:
                break
            await asyncio.sleep(0.05)
        assert exits == [143]
    finally:
        stopper.uninstall()


async def asyncio_pause() -> None:
    """Let the loop run the callback the signal handler scheduled."""
    for _ in range(3):
        await asyncio.sleep(0)
