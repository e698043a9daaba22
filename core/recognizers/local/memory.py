"""Give the memory the photos freed back to the system once the worker is idle, so its size falls back.

A photo's model runs allocate and free hundreds of MB of short-lived buffers (resized copies,
activations, ONNX Runtime's per-run tensors) on several threads. glibc keeps freed memory in each
thread's heap for reuse instead of returning it, so a worker that analysed two photos at once
stayed at the peak of every heap together. `malloc_trim(0)` returns the free pages (the shared
photos, two at a time: 534 MB held afterwards by the engine before this, 316 MB with it).

It is not free: the pages given back are faulted in again by the next photo, about 45 ms of CPU
per photo when trimmed after every one. So `PhotosInFlight` trims only once no photo has been
in flight for `RELEASE_AFTER_IDLE_S`: a busy worker keeps its heaps, an idle one shrinks. Where
the C library is not glibc (musl, macOS) there is no such call and nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

__all__ = ["RELEASE_AFTER_IDLE_S", "PhotosInFlight", "release_freed_memory"]

RELEASE_AFTER_IDLE_S = 2.0


@cache
def _glibc(function: str) -> Callable[..., int] | None:
    try:
        found: Callable[..., int] = getattr(ctypes.CDLL(ctypes.util.find_library("c")), function)
    except (OSError, AttributeError, TypeError):
        return None
    return found


def release_freed_memory() -> None:
    """Return the heaps' free pages to the system (glibc only; a no-op elsewhere)."""
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


class PhotosInFlight:
    """Counts the photos being analysed and releases freed memory when none has been for a while."""

    def __init__(
        self, idle_s: float = RELEASE_AFTER_IDLE_S, release: Callable[[], None] | None = None
    ) -> None:
        self._idle_s = idle_s
        self._release = release or release_freed_memory
        self._lock = threading.Lock()
        self._count = 0
        self._timer: threading.Timer | None = None

    @contextmanager
    def photo(self) -> Iterator[int]:
        """Hold one photo in flight; gives how many are, this one included."""
        with self._lock:
            self._count += 1
            count = self._count
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        try:
            yield count
        finally:
            with self._lock:
                self._count -= 1
                if self._count == 0:
                    self._timer = threading.Timer(self._idle_s, self._release)
                    self._timer.daemon = True
                    self._timer.start()

    def stop(self) -> None:
        """Release now and schedule nothing more (the recognizer is closing)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._release()
