"""An idle worker gives the memory its photos freed back to the system (`memory`)."""

from __future__ import annotations

import ctypes.util
import sys
import threading
import time
from pathlib import Path

import pytest

from core.recognizers.local.memory import PhotosInFlight, release_freed_memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not ctypes.util.find_library("c"), reason="glibc")
def test_memory_freed_on_a_worker_thread_goes_back_to_the_system() -> None:
    kept: list[bytearray] = []

    def analyse_like() -> None:
        # 200 MB in 64 kB pieces (under glibc's mmap threshold: they live in the thread's heap),
        # every other one kept, so the free half sits in holes the heap does not return itself.
        pieces = [bytearray(64 * 1024) for _ in range(3200)]
        kept.extend(pieces[::2])
        del pieces

    worker = threading.Thread(target=analyse_like)
    worker.start()
    worker.join()
    before = _rss_mb()
    release_freed_memory()
    assert before - _rss_mb() > 50, "the freed half (100 MB) stayed with the process"
    assert len(kept) == 1600


def test_freed_memory_is_released_once_no_photo_has_been_in_flight_for_a_while() -> None:
    released = threading.Event()
    calls: list[int] = []

    def release() -> None:
        calls.append(1)
        released.set()

    in_flight = PhotosInFlight(idle_s=0.2, release=release)
    with in_flight.photo() as first:
        with in_flight.photo() as second:
            assert (first, second) == (1, 2)
        time.sleep(0.5)
        assert calls == []  # one photo still in flight: a busy worker keeps its heaps
    assert released.wait(10)
    assert calls == [1]


def test_a_photo_starting_in_the_idle_time_puts_the_release_off() -> None:
    calls: list[float] = []
    in_flight = PhotosInFlight(idle_s=1.0, release=lambda: calls.append(time.monotonic()))
    with in_flight.photo():
        pass
    with in_flight.photo():  # within the second: the first release is called off
        ended = time.monotonic()
    time.sleep(3)
    assert len(calls) == 1
    assert calls[0] >= ended + 0.9
