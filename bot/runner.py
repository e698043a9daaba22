"""`photodetective run`: receive photos on every configured platform and work on them, in one process.

The runner is the composition root for a long-running process: it builds the recognizer, the
stores, the service, the installed adapters and the worker from the settings, starts them, and
on SIGTERM/SIGINT stops receiving, lets in-flight jobs finish within the grace period, and closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from functools import partial
from multiprocessing import get_context
from typing import Literal

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics
from bot.photo_requests import PhotoRequest
from bot.platforms import PlatformAdapter, load_adapters
from bot.settings import Settings, SettingsError
from bot.wiring import Stores, build_recognizer, build_service, build_stores, quota_policy
from bot.worker import Worker, WorkerConfig
from core.recognizers.base import Recognizer

log = logging.getLogger(__name__)

NO_PLATFORM = (
    "No chat platform is configured. Set PHOTODETECTIVE_TELEGRAM_TOKEN for Telegram, or "
    "PHOTODETECTIVE_SLACK_BOT_TOKEN and PHOTODETECTIVE_SLACK_SIGNING_SECRET for Slack (see the README)."
)


def location_rule(settings: Settings) -> Callable[[PhotoRequest], bool]:
    """Whether a reply may show the photo's GPS position: private chats and groups are set apart."""

    def show_location(request: PhotoRequest) -> bool:
        return settings.location_in_private if request.private else settings.location_in_groups

    return show_location


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        worker_id=f"{socket.gethostname()}-{os.getpid()}",
        concurrency=settings.worker_concurrency,
        visibility_timeout_s=settings.job_visibility_timeout_s,
        job_timeout_s=settings.job_timeout_s,
        grace_period_s=settings.shutdown_grace_s,
        charge_user_errors=settings.quota_charge_user_errors,
    )


Role = Literal["all", "ingress", "worker"]
READY_TIMEOUT_S = 2.0


class HealthEndpoints:
    """/healthz (alive), /readyz (stores reachable, recognizer configured) and /metrics."""

    def __init__(self, stores: Stores, settings: Settings, recognizer: Recognizer, metrics: Metrics) -> None:
        self.stores = stores
        self.policy = quota_policy(settings)
        self.recognizer = recognizer
        self.metrics = metrics

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics_page),
        ]

    async def healthz(self, _: web.Request) -> web.Response:
        """Alive: the process is up and its event loop answers (a container restarts it otherwise)."""
        return web.json_response({"status": "ok"})

    async def readyz(self, _: web.Request) -> web.Response:
        """Ready for work: the queue and quota stores answer, and a recognizer is configured."""
        checks: dict[str, str] = {}
        now = datetime.now(UTC)
        probes: dict[str, Awaitable[object]] = {
            "queue": self.stores.queue.stats(now.timestamp()),
            "quota": self.stores.quota.usage("readyz-probe", now, self.policy),
        }
        for name, probe in probes.items():
            try:
                await asyncio.wait_for(probe, READY_TIMEOUT_S)
                checks[name] = "ok"
            except Exception as exc:  # any failure means "not ready"; the reason is for the operator
                checks[name] = f"unavailable: {type(exc).__name__}"
        configured = self.recognizer.name != "none"
        ready = configured and checks["queue"] == checks["quota"] == "ok"
        checks["recognizer"] = self.recognizer.name if configured else "none configured"
        return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)

    async def metrics_page(self, _: web.Request) -> web.Response:
        """Prometheus text format; queue gauges are read from the queue at scrape time."""
        try:
            self.metrics.set_queue(
                await asyncio.wait_for(self.stores.queue.stats(time.time()), READY_TIMEOUT_S)
            )
        except Exception:  # a scrape must not fail because the queue is briefly unreachable
            log.warning("queue stats unavailable for /metrics")
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def start_http(settings: Settings, routes: list[web.AbstractRouteDef]) -> web.AppRunner:
    """One HTTP server for webhooks, Slack events and health, so a container exposes one port."""
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    log.info("HTTP server on %s:%d", settings.http_host, settings.http_port)
    return runner


async def run_service(settings: Settings, stop: asyncio.Event, role: Role = "all") -> None:
    """Run until `stop` is set, as one process (`all`) or one role of a scaled-out deployment.

    `ingress` receives events and submits jobs; `worker` processes jobs (and still needs the
    adapters' photo sources and reply ports, but does not receive events). Raises SettingsError
    when no platform is configured.
    """
    choice = build_recognizer(settings)
    if choice.note:
        log.warning(choice.note)
    recognizer = choice.recognizer
    metrics = Metrics()
    stores = build_stores(settings)
    try:
        service = build_service(settings, stores, recognizer.capabilities, metrics, recognizer.name)
        adapters: list[PlatformAdapter] = load_adapters(settings, service)
        if not adapters:
            raise SettingsError(NO_PLATFORM)
        receiving = adapters if role in ("all", "ingress") else []
        health = HealthEndpoints(stores, settings, recognizer, metrics)
        routes = [*health.routes(), *(route for a in receiving for route in a.routes())]
        http = await start_http(settings, routes)
        try:
            for adapter in receiving:
                await adapter.start()
                log.info("%s adapter started", adapter.name)
            working = None
            if role != "ingress":
                working = asyncio.create_task(_work(settings, stores, recognizer, adapters, metrics, stop))
            stopping = asyncio.create_task(stop.wait())
            # A worker that dies on its own (a bug, a broken pool) must end the process, not hang it.
            await asyncio.wait(
                {stopping, *([working] if working else [])}, return_when=asyncio.FIRST_COMPLETED
            )
            stopping.cancel()
            stop.set()
            log.info("stopping: no new photos; jobs in progress get %g s", settings.shutdown_grace_s)
            await _stop_receiving(receiving)
            if working is not None:
                await working
            log.info("stopped")
        finally:
            await _stop_receiving(receiving)
            for adapter in adapters:
                await adapter.close()
            await http.cleanup()
    finally:
        await stores.close()


async def _stop_receiving(adapters: list[PlatformAdapter]) -> None:
    """Stop taking events first, so nothing new arrives while the workers drain (safe to repeat)."""
    while adapters:
        await adapters.pop().stop()


async def _work(
    settings: Settings,
    stores: Stores,
    recognizer: Recognizer,
    adapters: list[PlatformAdapter],
    metrics: Metrics,
    stop: asyncio.Event,
) -> None:
    """Run the worker with a process pool for image work until `stop`, then drain.

    The worker gets a factory rather than a pool so it can replace a pool that a killed process
    broke; the pool it holds at the end is shut down here.
    """
    processes = settings.worker_processes or os.cpu_count() or 1
    worker = Worker(
        queue=stores.queue,
        quota=stores.quota,
        recognizer=recognizer,
        sources={a.name: a.source for a in adapters},
        replies={a.name: a.replies for a in adapters},
        limits=settings.image_limits(),
        config=worker_config(settings),
        show_location=location_rule(settings),
        pool_factory=partial(ProcessPoolExecutor, max_workers=processes, mp_context=get_context("spawn")),
        metrics=metrics,
    )
    log.info(
        "worker: recognizer %s, %d jobs at once, %d processes",
        recognizer.name,
        settings.worker_concurrency,
        processes,
    )
    try:
        await worker.run(stop)
    finally:
        await worker.close()


async def run_until_signalled(settings: Settings, role: Role = "all") -> None:
    """Run the service, stopping cleanly on SIGTERM (docker stop) or SIGINT (Ctrl-C)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_service(settings, stop, role)
