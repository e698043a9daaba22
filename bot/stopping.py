"""How `photodetective run` stops: one signal drains within the grace, a second one exits at once.

The promise to an operator is a bound: after SIGTERM (docker stop) or SIGINT (Ctrl-C) the process
is gone within the grace period (`PHOTODETECTIVE_SHUTDOWN_GRACE_S`) plus at most two seconds,
whatever it was doing: a job replying through a 429 `retry_after` 40 backoff, a getMe that hangs
at start-up, an open long poll. Cutting work short loses nothing, because every job lives in the
queue under a lease: a job cancelled here, or still running when the process is gone, is handed
out again (at once when its lease was released, else when the lease expires).

So a stop has three steps, each a deadline measured from the first signal:

1. at once: `event` is set, the runner stops taking work and the workers drain (jobs in progress
   get the grace to finish; the worker cancels the rest and gives them back to the queue);
2. at grace + `CANCEL_AFTER_GRACE_S`: whatever the run is still waiting on (a reply shielded
   through a backoff, an adapter that does not stop) is cancelled, so its clean-up runs;
3. at grace + `EXIT_AFTER_GRACE_S`: if even that has not ended the process, it exits from a
   thread that a blocked event loop cannot hold up.

A second SIGTERM or SIGINT skips to the end at once: someone wants it gone now. Both hard exits
use the shell's convention, 128 + the signal's number (143 for SIGTERM, 130 for SIGINT), so a
supervisor can tell them from a clean stop (0).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: After the grace, what is left is cancelled; its clean-up (requeue, close) gets the rest.
CANCEL_AFTER_GRACE_S = 0.75
#: After the grace, the process exits whatever it is doing (within the promised grace + 2 s).
EXIT_AFTER_GRACE_S = 1.5


def signal_exit_code(signum: int) -> int:
    """The shell's exit status for "ended by this signal" (128 + its number)."""
    return 128 + signum


def leave_signals_to_the_parent(parent: int) -> None:
    """Pool process initializer: the parent alone decides how a stop goes, and outlives its pool.

    Ctrl-C reaches the whole process group, and systemd's default `KillMode=control-group` sends
    SIGTERM to every process of the service: a pool process dying of either would break the pool
    under the jobs that are finishing. So pool processes ignore both, and the parent ends them
    (pool shutdown, or `exit_now`). Should the parent die outright (kill -9, the OOM killer), Linux
    kills them with it (PR_SET_PDEATHSIG), so no pool process is left behind, blocked forever.
    `parent` is the pid of the process that builds the pool.
    """
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # it died before prctl took effect
            os._exit(1)


def exit_now(code: int) -> None:
    """Leave at once: the image processes first (they would outlive us), then the interpreter.

    Pool processes are spawned by multiprocessing and would linger, blocked on their task pipe,
    if the parent vanished under them. Nothing else needs closing: the queue's leases bring back
    what was in flight, and the SQLite and Redis stores are safe against a process dying anyway.
    """
    for child in multiprocessing.active_children():
        with contextlib.suppress(Exception):
            child.kill()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(code)


class Stopper:
    """Turns SIGTERM/SIGINT into the three deadlines above, for the task running the service.

    Plain `signal.signal` handlers are used rather than the event loop's, so that a second signal
    is acted on even while the loop is stuck; the first one only hands over to the loop.
    `cancel` is what "cancel what is left" means for the caller (normally the main task's cancel).
    `exit` is replaceable so tests can watch the hard exits without ending the test process.
    """

    def __init__(
        self,
        grace_s: float,
        cancel: Callable[[], object],
        *,
        exit: Callable[[int], None] = exit_now,
    ) -> None:
        self.grace_s = grace_s
        self.event = asyncio.Event()
        self.cancelled = False
        self._cancel = cancel
        self._exit = exit
        self._signal: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, object] = {}
        self._timer: threading.Timer | None = None
        self._cancel_handle: asyncio.TimerHandle | None = None

    @property
    def signalled(self) -> bool:
        """Whether a stop signal came (the run ended because it was asked to)."""
        return self._signal is not None

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (call from the main thread, inside the running loop)."""
        self._loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        """Give the signals back and drop the deadlines (the run ended by itself)."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]  # what getsignal returned
        self._previous.clear()
        if self._timer is not None:
            self._timer.cancel()
        if self._cancel_handle is not None:
            self._cancel_handle.cancel()

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        if self._signal is not None:
            log.warning(
                "%s again: exiting at once; unfinished jobs come back from the queue",
                signal.Signals(signum).name,
            )
            self._exit(signal_exit_code(signum))
            return
        self._signal = signum
        assert self._loop is not None, "install() first"
        self._loop.call_soon_threadsafe(self.begin, signum)

    def begin(self, signum: int) -> None:
        """The first signal: stop taking work now, and arm the two deadlines after the grace."""
        self._signal = signum
        log.info(
            "%s: stopping; no new photos, jobs in progress get %g s (a second signal exits at once)",
            signal.Signals(signum).name,
            self.grace_s,
        )
        self.event.set()
        loop = asyncio.get_running_loop()
        self._cancel_handle = loop.call_later(self.grace_s + CANCEL_AFTER_GRACE_S, self._cancel_rest)
        self._timer = threading.Timer(self.grace_s + EXIT_AFTER_GRACE_S, self._exit_late, (signum,))
        self._timer.daemon = True
        self._timer.start()

    def _cancel_rest(self) -> None:
        log.warning(
            "the grace of %g s is over: cancelling what is left; it goes back to the queue", self.grace_s
        )
        self.cancelled = True
        self._cancel()

    def _exit_late(self, signum: int) -> None:
        log.error(
            "not stopped %g s after %s: exiting now; unfinished jobs come back from the queue",
            self.grace_s + EXIT_AFTER_GRACE_S,
            signal.Signals(signum).name,
        )
        self._exit(signal_exit_code(signum))
