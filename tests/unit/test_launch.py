"""The console script limits the numerical libraries to one thread before numpy loads."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from PIL import Image

from bot.launch import THREAD_VARIABLES, one_thread_per_photo

THREADS_AFTER_NUMPY = (
    "import os, sys\n"
    "if sys.argv[1] == 'launch':\n"
    "    from bot.launch import one_thread_per_photo\n"
    "    one_thread_per_photo()\n"
    "import numpy\n"
    "numpy.ones((64, 64)) @ numpy.ones((64, 64))\n"
    "print(len(os.listdir('/proc/self/task')))\n"
)


def threads_after_numpy(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", THREADS_AFTER_NUMPY, mode], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_the_console_script_is_the_launcher() -> None:
    [script] = [e for e in entry_points(group="console_scripts") if e.name == "photodetective"]
    assert script.value == "bot.launch:main"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc to count threads")
def test_numpy_loaded_after_the_launcher_starts_no_extra_threads() -> None:
    assert threads_after_numpy("launch") == 1
    if (os.cpu_count() or 1) > 1:  # on one core OpenBLAS starts no extra thread anyway
        assert threads_after_numpy("plain") > 1


def test_a_thread_count_the_operator_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    for name in THREAD_VARIABLES[1:]:
        monkeypatch.delenv(name, raising=False)
    one_thread_per_photo()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"
    assert all(os.environ[name] == "1" for name in THREAD_VARIABLES[1:])


SIGTERM_AS_PROCESS_1 = (
    "import os, signal, sys, time\n"
    "if sys.argv[1] == 'launch':\n"
    "    from bot.launch import exit_on_sigterm\n"
    "    exit_on_sigterm()\n"
    "os.kill(os.getpid(), signal.SIGTERM)\n"
    "time.sleep(1)\n"
    "print('still running')\n"
)


def sigterm_as_process_1(mode: str) -> subprocess.CompletedProcess[str]:
    """SIGTERM sent to a Python that is process 1 of its own PID namespace (as in a container)."""
    return subprocess.run(
        ["unshare", "--pid", "--fork", sys.executable, "-c", SIGTERM_AS_PROCESS_1, mode],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def can_be_process_1() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return sigterm_as_process_1("plain").stdout.strip() == "still running"
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not can_be_process_1(), reason="needs unshare --pid (root or user namespaces)")
def test_sigterm_during_start_up_ends_process_1() -> None:
    # Without the launcher's handler process 1 ignores SIGTERM (the skip condition shows it does here).
    done = sigterm_as_process_1("launch")
    assert done.returncode == 128 + signal.SIGTERM
    assert "still running" not in done.stdout


def test_ctrl_c_during_analyze_is_one_line_and_exit_130(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (640, 480), (200, 120, 40)).save(photo, "JPEG")
    photodetective = Path(sys.executable).with_name("photodetective")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOTODETECTIVE_", "AWS_"))}
    env["PHOTODETECTIVE_DATA_DIR"] = str(tmp_path / "data")
    process = subprocess.Popen(
        [
            str(photodetective),
            "analyze",
            *[str(photo)] * 400,
            "--backend",
            "none",
            "--json",
            "--out",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()  # the first photo is done: the interrupt lands mid-run
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
