"""Running the real `photodetective` executable in tests, with nothing of the machine's set-up leaking in."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

PHOTODETECTIVE = Path(sys.executable).with_name("photodetective")
RUN_CLI_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The machine's environment minus anything PhotoDetective or AWS would pick up, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOTODETECTIVE_", "AWS_"))}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        PHOTODETECTIVE_DATA_DIR=str(tmp_path / "data"),
        # No /metrics listener unless a test asks for one: its default port would be shared.
        PHOTODETECTIVE_METRICS_PORT="0",
    )
    env.update(extra)
    return env


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`photodetective ARGS` to its end, with a clean environment plus `env`."""
    return subprocess.run(
        [str(PHOTODETECTIVE), *args],
        env=clean_env(tmp_path, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_CLI_TIMEOUT_S,
        check=False,
    )
