"""A worker gives the memory a photo freed back to the system (`memory.release_freed_memory`)."""

from __future__ import annotations

import ctypes.util
import sys
import threading
from pathlib import Path

import pytest

from core.recognizers.local.memory import release_freed_memory


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
