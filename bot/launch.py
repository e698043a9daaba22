"""The `photodetective` executable: one thread per photo in the numerical libraries, then the CLI.

numpy's OpenBLAS starts a thread per core in every process and spin-waits them between calls.
The embedded recognizer already runs one photo per thread (its models are built single-threaded,
and `WORKER_CONCURRENCY` photos run side by side), so those extra threads only compete: measured
with `bench/throughput.py --scenarios scale` on 2 cores, a photo cost 0.51 CPU s with one worker
and 0.83 with two, and two workers answered fewer photos a minute than one (137 against 147).
With one BLAS thread a photo costs 0.37-0.40 CPU s whatever the number of workers, and two
workers answer 278 a minute against one worker's 152.

The libraries read these variables once, when they load, so this must run before anything
imports numpy: hence a separate entry module that imports the CLI only afterwards. A value the
operator set is kept (`setdefault`), so a host that wants more BLAS threads can still ask.

It also answers SIGTERM from the first instant (see `exit_on_sigterm`), before the imports that
take a second or two.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from types import FrameType

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
INTERRUPTED = 128 + signal.SIGINT
M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


def one_thread_per_photo() -> None:
    """Default every numerical library to one thread (see the module docstring for the numbers)."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def few_heaps() -> None:
    """At most one glibc heap per core for the process's threads, unless MALLOC_ARENA_MAX is set.

    glibc gives threads that allocate at once heaps of their own (up to 8 per core), and memory
    freed in one is not reused by another. The embedded recognizer runs photos, and a photo's text,
    on threads of their own, so each heap came to hold a photo's peak: `photodetective run` peaked
    at 964 MB on a stream of photos against 715 MB with two heaps (`MALLOC_ARENA_MAX=2`). The
    limit must be set before threads start, as here; elsewhere than glibc this does nothing.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    mallopt(M_ARENA_MAX, cores)


def exit_on_sigterm() -> None:
    """End the process on SIGTERM, as the default action would, until `run` takes the signal over.

    In a container the bot is process 1, and the kernel gives process 1 no default action for
    SIGTERM: without a handler, a `docker stop` during start-up would be ignored until Docker's
    timeout ran out and it sent SIGKILL. `bot.stopping` replaces this handler once `run` is up.
    """
    signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, _: FrameType | None) -> None:
    os._exit(128 + signum)


def main() -> int:
    """Entry point of the `photodetective` console script.

    Ctrl-C ends any command with one line and the shell's code for it (130), not a traceback
    from wherever the interrupt landed. (`run` handles SIGINT itself, as a stop: bot.stopping.)
    """
    exit_on_sigterm()
    one_thread_per_photo()
    few_heaps()
    try:
        from bot.cli import main as run_cli  # imported here: numpy must load after the line above

        return run_cli()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
