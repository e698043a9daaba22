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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from aiohttp import web

from bot.platforms import PlatformAdapter, load_adapters
from bot.requests import PhotoRequest
from bot.settings import Settings, SettingsError
from bot.wiring import build_recognizer, build_service, build_stores
from bot.worker import Worker, WorkerConfig

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


async def healthz(_: web.Request) -> web.Response:
    """Liveness: the process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


async def start_http(settings: Settings, routes: list[web.AbstractRouteDef]) -> web.AppRunner:
    """One HTTP server for webhooks, Slack events and health, so a container exposes one port."""
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_get("/healthz", healthz)
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    log.info("HTTP server on %s:%d", settings.http_host, settings.http_port)
    return runner


async def run_service(settings: Settings, stop: asyncio.Event) -> None:
    """Run until `stop` is set; raises SettingsError when no platform is configured."""
    choice = build_recognizer(settings)
    if choice.note:
        log.warning(choice.note)
    recognizer = choice.recognizer
    stores = build_stores(settings)
    try:
        service = build_service(settings, stores, recognizer.capabilities)
        adapters: list[PlatformAdapter] = load_adapters(settings, service)
        if not adapters:
            raise SettingsError(NO_PLATFORM)
        processes = settings.worker_processes or os.cpu_count() or 1
        with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn")) as pool:
            worker = Worker(
                queue=stores.queue,
                quota=stores.quota,
                recognizer=recognizer,
                sources={a.name: a.source for a in adapters},
                replies={a.name: a.replies for a in adapters},
                limits=settings.image_limits(),
                config=worker_config(settings),
                show_location=location_rule(settings),
                pool=pool,
            )
            http = await start_http(settings, [route for a in adapters for route in a.routes()])
            try:
                for adapter in adapters:
                    await adapter.start()
                    log.info("%s adapter started", adapter.name)
                log.info("recognizer: %s; %d jobs at once", recognizer.name, settings.worker_concurrency)
                working = asyncio.create_task(worker.run(stop))
                await stop.wait()
                log.info("stopping: no new photos; finishing jobs in progress")
                for adapter in adapters:
                    await adapter.stop()
                await working
            finally:
                for adapter in adapters:
                    await adapter.close()
                await http.cleanup()
    finally:
        await stores.close()


async def run_until_signalled(settings: Settings) -> None:
    """Run the service, stopping cleanly on SIGTERM (docker stop) or SIGINT (Ctrl-C)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_service(settings, stop)
