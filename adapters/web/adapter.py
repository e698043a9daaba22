"""The web platform adapter: the upload page and results pages on the runner's shared HTTP server.

Building it opens the result store and starts nothing, so worker-only processes can use its
`source` and `replies`. `start` begins the retention sweep; the routes are served by the runner
in every process that receives (roles all and ingress).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from aiohttp import web

from adapters.web.app import WebPages
from adapters.web.config import WebSettings
from adapters.web.replies import PLATFORM, WebReplies
from adapters.web.source import WebPhotoSource
from adapters.web.store import WebStore, build_store
from bot.service import PhotoService
from bot.settings import Settings

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 3600.0
#: How often photos waiting for the quota's concurrency are offered again (a cheap read when none wait).
WAITING_INTERVAL_S = 1.0
WAITING_BACKOFF_MAX_S = 30.0


class WebAdapter:
    """`bot.platforms.PlatformAdapter` for the web page."""

    def __init__(
        self,
        settings: Settings,
        service: PhotoService,
        *,
        store: WebStore | None = None,
        clock: Callable[[], float] = time.time,
        sweep_interval_s: float = SWEEP_INTERVAL_S,
        waiting_interval_s: float = WAITING_INTERVAL_S,
    ) -> None:
        self.settings = settings.section(WebSettings)
        self.name = PLATFORM
        self.store = store or build_store(settings.redis_url, settings.data_dir)
        self.clock = clock
        self.source = WebPhotoSource(self.store)
        self.replies = WebReplies(self.store)
        self.pages = WebPages(self.settings, service, self.store, clock=clock)
        self.sweep_interval_s = sweep_interval_s
        self.waiting_interval_s = waiting_interval_s
        self._sweeper: asyncio.Task[None] | None = None
        self._releaser: asyncio.Task[None] | None = None

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return self.pages.routes()

    async def sweep_once(self) -> int:
        """Delete every result older than the retention period (photo, images, analysis)."""
        deleted = await self.store.sweep(self.clock() - self.settings.retention_days * 86400)
        if deleted:
            log.info("retention: deleted %d web result(s)", deleted)
        return deleted

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:  # the store briefly unreachable: try again next round
                log.exception("retention sweep failed; trying again later")
            await asyncio.sleep(self.sweep_interval_s)

    async def release_waiting(self) -> int:
        """Submit the photos of earlier uploads that were waiting for the user's concurrency."""
        return await self.pages.waiting.release()

    async def _release_forever(self) -> None:
        """Offer waiting photos every `waiting_interval_s`; while the stores fail, less and less often."""
        pause = self.waiting_interval_s
        while True:
            try:
                await self.release_waiting()
                pause = self.waiting_interval_s
            except Exception as exc:  # the stores briefly unreachable: the photos keep waiting
                pause = min(pause * 2, WAITING_BACKOFF_MAX_S)
                log.warning(
                    "waiting web photos not offered (%s); trying again in %g s", type(exc).__name__, pause
                )
            await asyncio.sleep(pause)

    async def start(self) -> None:
        await self.pages.signer()  # the session secret exists before the first request
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="web-retention")
        if self._releaser is None:
            self._releaser = asyncio.create_task(self._release_forever(), name="web-waiting")

    async def stop(self) -> None:
        for task in (self._sweeper, self._releaser):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sweeper = self._releaser = None

    async def close(self) -> None:
        await self.stop()
        await self.store.close()


def create(settings: Settings, service: PhotoService) -> WebAdapter | None:
    """The entry-point factory: a WebAdapter when PHOTODETECTIVE_WEB_ENABLED is true, else None."""
    if not settings.section(WebSettings).enabled:
        log.info("The web page is off (PHOTODETECTIVE_WEB_ENABLED is not true)")
        return None
    return WebAdapter(settings, service)
