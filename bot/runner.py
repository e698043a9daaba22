"""`photodetective run`: receive photos on every configured platform and work on them, in one process.

The runner is the composition root for a long-running process: it builds the recognizer, the
stores, the service, the installed adapters and the worker from the settings, starts them, and
on SIGTERM/SIGINT stops receiving, lets in-flight jobs finish within the grace period, and closes.
How long a stop may take, and what a second signal does, is `bot.stopping`; how a failed start is
reported (one line, exit 1 or 2), `bot.startup`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from typing import Literal

from aiohttp import web

from bot.delivery import DeliveryPolicy
from bot.health import HealthEndpoints
from bot.http_log import RefusedRequestLog, refused_requests
from bot.http_server import build_app, start_metrics
from bot.logs import LogFormat, configure_logging
from bot.metrics import Metrics
from bot.photo_requests import PhotoRequest
from bot.platforms import PlatformAdapter, load_adapters
from bot.redaction import configured_secrets
from bot.settings import Settings, SettingsError
from bot.startup import listen_error, start_failure
from bot.stopping import Stopper, exit_now, leave_signals_to_the_parent
from bot.wiring import Stores, build_recognizer, build_service, build_stores
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
        delivery=DeliveryPolicy(
            backoff_max_s=settings.delivery_backoff_max_s, horizon_s=settings.delivery_horizon_s
        ),
    )


Role = Literal["all", "ingress", "worker"]
#: How long a request in progress may finish once the HTTP server closes.
HTTP_SHUTDOWN_S = 2.0
#: How long a cancelled step (a start-up call, the worker) gets to run its clean-up.
ABANDON_S = 1.0


async def start_http(settings: Settings, routes: list[web.AbstractRouteDef]) -> web.AppRunner:
    """One HTTP server for webhooks, Slack events and health, so a container exposes one port.

    At shutdown a request still being handled gets `HTTP_SHUTDOWN_S` (aiohttp's default is 60 s,
    which would outlast any grace): event deliveries only store a job, and an upload cut short was
    not accepted, so its sender retries.
    """
    app = build_app(routes)  # every answer stamped with the security headers (bot.http_server)
    # A refused request is logged as one line without its content (bot.http_log); others are not.
    runner = web.AppRunner(
        app, shutdown_timeout=HTTP_SHUTDOWN_S, access_log_class=RefusedRequestLog, access_log=refused_requests
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    except OSError as error:
        await runner.cleanup()
        raise listen_error(settings.http_host, settings.http_port, error) from None
    log.info("HTTP server on %s:%d", settings.http_host, settings.http_port)
    return runner


async def run_service(settings: Settings, stop: asyncio.Event, role: Role = "all") -> None:
    """Run until `stop` is set, as one process (`all`) or one role of a scaled-out deployment.

    `ingress` receives events and submits jobs; `worker` processes jobs (and still needs the
    adapters' photo sources and reply ports, but does not receive events). A stop during start-up
    abandons the step in progress (a getMe that hangs): nothing was taken yet, so nothing is owed.
    Raises SettingsError when no platform is configured or a setting is refused, and
    StartupFailed when a platform cannot be reached (see `bot.startup`).
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
        receiving = list(adapters) if role in ("all", "ingress") else []
        health = HealthEndpoints(stores, settings, recognizer, metrics)
        routes = [*health.routes(), *(route for a in receiving for route in a.routes())]
        http = await start_http(settings, routes)
        metrics_http: web.AppRunner | None = None
        working: asyncio.Task[None] | None = None
        try:
            # /metrics on its own listener (loopback by default), not on the public port.
            metrics_http = await start_metrics(settings, health.metrics_routes())
            if await _start_receiving(receiving, stop):
                if role != "ingress":
                    working = asyncio.create_task(
                        _work(settings, stores, recognizer, adapters, metrics, stop), name="worker"
                    )
                await _until_stopped(stop, working)
            log.info("stopping: no new photos; jobs in progress get %g s", settings.shutdown_grace_s)
            await _stop_receiving(receiving)
            if working is not None:
                await working
            log.info("stopped")
        finally:
            await _wind_down(working)
            await _stop_receiving(receiving)
            for adapter in adapters:
                await adapter.close()
            await http.cleanup()
            if metrics_http is not None:
                await metrics_http.cleanup()
    finally:
        await stores.close()


async def _start_receiving(adapters: list[PlatformAdapter], stop: asyncio.Event) -> bool:
    """Start each adapter; False when a stop came first (the step in progress is abandoned)."""
    for adapter in adapters:
        start = asyncio.create_task(adapter.start(), name=f"start-{adapter.name}")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({start, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not start.done():
                start.cancel()
                await asyncio.wait({start}, timeout=ABANDON_S)
        if not start.done() or start.cancelled():
            log.info("stopped while starting %s", adapter.name)
            return False
        try:
            start.result()  # its failure, if any, ends start-up
        except Exception as error:
            failure = start_failure(adapter.name, error)
            if failure is error:
                raise
            raise failure from None
        log.info("%s adapter started", adapter.name)
    return not stop.is_set()


async def _until_stopped(stop: asyncio.Event, working: asyncio.Task[None] | None) -> None:
    """Wait for `stop`; a worker that ends on its own (a bug, a broken pool) also ends the run."""
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({stopping, *([working] if working else [])}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    stop.set()


async def _wind_down(working: asyncio.Task[None] | None) -> None:
    """After a cancel, let the worker's own clean-up (releasing leases) end before stores close."""
    if working is not None and not working.done():
        working.cancel()
        await asyncio.wait({working}, timeout=ABANDON_S)


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
    secrets = configured_secrets(settings)  # the pool processes redact them too
    worker = Worker(
        queue=stores.queue,
        quota=stores.quota,
        recognizer=recognizer,
        sources={a.name: a.source for a in adapters},
        replies={a.name: a.replies for a in adapters},
        limits=settings.image_limits(),
        config=worker_config(settings),
        show_location=location_rule(settings),
        pool_factory=partial(
            ProcessPoolExecutor,
            max_workers=processes,
            mp_context=get_context("spawn"),
            initializer=_start_image_process,
            initargs=(os.getpid(), settings.log_format, settings.log_level, tuple(secrets)),
        ),
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


def _start_image_process(parent: int, log_format: LogFormat, level: str, secrets: tuple[str, ...]) -> None:
    """Pool process initializer: stops are the parent's; logs, Pillow's warnings too, follow its rules."""
    leave_signals_to_the_parent(parent)
    configure_logging(log_format, level, secrets)


async def run_until_signalled(settings: Settings, role: Role = "all") -> None:
    """Run the service until SIGTERM (docker stop) or SIGINT (Ctrl-C); see `bot.stopping`.

    The first signal drains within the grace; past it, what is left is cancelled here, which
    counts as a stop (the queue hands the cancelled jobs out again), not as a failure. Once the
    service has stopped on a signal the process ends at once: a call that runs in a thread (a
    Rekognition request) cannot be cancelled, and Python's normal exit would wait for it.
    """
    main = asyncio.current_task()
    assert main is not None
    stopper = Stopper(settings.shutdown_grace_s, main.cancel)
    stopper.install()
    try:
        await run_service(settings, stopper.event, role)
    except asyncio.CancelledError:
        if not stopper.cancelled:
            raise
        main.uncancel()
        log.info("stopped")
    finally:
        stopper.uninstall()
    if stopper.signalled:
        exit_now(0)
