"""The operator's endpoints: /healthz and /readyz on the shared HTTP port, /metrics on its own listener.

Health checks answer whoever can reach the service (a container's probe, a load balancer); the
metrics say how busy the bot is and what it costs, so `bot.http_server` serves them apart,
on loopback unless the operator says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics
from bot.settings import Settings
from bot.wiring import Stores, quota_policy
from core.recognizers.base import Recognizer

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0


class HealthEndpoints:
    """/healthz (alive), /readyz (stores reachable, recognizer configured) and /metrics."""

    def __init__(self, stores: Stores, settings: Settings, recognizer: Recognizer, metrics: Metrics) -> None:
        self.stores = stores
        self.policy = quota_policy(settings)
        self.recognizer = recognizer
        self.metrics = metrics

    def routes(self) -> list[web.RouteDef]:
        """The health checks, for the shared (public) HTTP port."""
        return [web.get("/healthz", self.healthz), web.get("/readyz", self.readyz)]

    def metrics_routes(self) -> list[web.RouteDef]:
        """/metrics, for the metrics listener only (`bot.http_server.start_metrics`)."""
        return [web.get("/metrics", self.metrics_page)]

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
