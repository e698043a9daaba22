"""The service's two HTTP listeners, and the headers every answer of either one carries.

The public listener (`PHOTODETECTIVE_HTTP_HOST`/`_PORT`) takes Telegram webhooks, Slack events,
the web page and the health checks. /metrics is served apart, on its own listener
(`PHOTODETECTIVE_METRICS_HOST`/`_PORT`, loopback by default): it tells anyone who can read it how
busy the bot is and what it costs, which is the operator's business, not the public's.

Every answer carries the security headers and a `Server` header without versions, including
aiohttp's own 404 and 405, the health checks and errors. They are added as the response is
prepared (`on_response_prepare`), not by a middleware wrapping the handler: a middleware never
sees an answer a handler prepared itself (the web page sends its 408 and then hangs up), and an
exception turned into a response after every middleware has returned.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence

from aiohttp import web, web_response

from bot.settings import ENV_PREFIX, Settings, SettingsError
from bot.startup import StartupFailed

log = logging.getLogger(__name__)

#: What `Server:` says: the name only, so an answer does not advertise versions to look up.
SERVER_NAME = "PhotoDetective"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

#: Webhooks and forms are small; the web page's uploads are read as a stream, not under this cap.
CLIENT_MAX_SIZE = 2 * 1024 * 1024


async def add_security_headers(_: web.Request, response: web.StreamResponse) -> None:
    """Stamp an answer as it is prepared; a header the handler set itself (Cache-Control) stays."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER_NAME


def build_app(routes: Sequence[web.AbstractRouteDef]) -> web.Application:
    """An aiohttp application for `routes` whose every answer carries the headers above."""
    # Answers aiohttp makes before any application sees the request (a malformed request line)
    # take `Server` from this module default; the application's own answers are stamped below.
    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    app.add_routes(routes)
    app.on_response_prepare.append(add_security_headers)
    return app


async def start_metrics(settings: Settings, routes: Sequence[web.AbstractRouteDef]) -> web.AppRunner | None:
    """Serve /metrics on its own listener; None when `PHOTODETECTIVE_METRICS_PORT` is 0 (off)."""
    if not settings.metrics_port:
        log.info("metrics are off (PHOTODETECTIVE_METRICS_PORT is 0)")
        return None
    runner = web.AppRunner(build_app(routes), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
    except OSError as error:
        await runner.cleanup()
        raise _metrics_listen_error(settings, error) from None
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    return runner


def _metrics_listen_error(settings: Settings, error: OSError) -> Exception:
    """One line naming the metrics settings (the same rule as the public port's, `bot.startup`)."""
    where = f"{settings.metrics_host}:{settings.metrics_port}"
    names = f"{ENV_PREFIX}METRICS_HOST / {ENV_PREFIX}METRICS_PORT, 0 turns metrics off"
    if error.errno == errno.EADDRINUSE:
        return StartupFailed(f"Cannot serve /metrics on {where}: the port is in use ({names})")
    return SettingsError(
        f"Cannot serve /metrics on {where}: {error.strerror or type(error).__name__} ({names})"
    )
