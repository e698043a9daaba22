"""The worker each platform harness runs beside its adapter, built one way for every platform."""

from __future__ import annotations

from bot.platforms import PlatformAdapter
from bot.runner import location_rule
from bot.settings import Settings
from bot.wiring import Stores
from bot.worker import Worker, WorkerConfig
from core.recognizers.base import Recognizer


def adapter_worker(
    settings: Settings, stores: Stores, adapter: PlatformAdapter, recognizer: Recognizer, config: WorkerConfig
) -> Worker:
    """A worker wired as `photodetective run` wires one (bot.runner), serving this one adapter.

    It runs image work in its own threads (no process pool) and with the test's timings, so a
    harness starts in milliseconds; limits and the GPS rule come from the settings as in production.
    """
    return Worker(
        queue=stores.queue,
        quota=stores.quota,
        recognizer=recognizer,
        sources={adapter.name: adapter.source},
        replies={adapter.name: adapter.replies},
        limits=settings.image_limits(),
        config=config,
        show_location=location_rule(settings),
    )
