"""Fault injection for the platform fakes: what a platform does instead of answering, per call.

A `FaultTable` holds scripted `Fault`s; a fake asks it, for each request it receives (after
reading the whole request, as a real front end would), whether to answer normally or misbehave:

- `status`: answer an HTTP error with the platform's documented body (the fake supplies it);
- `hang`: read the request and never answer until the client gives up (a timeout; the platform
  did not act on it: nothing is sent or stored);
- `drop`: close the connection without an answer (the client sees "server disconnected"; again
  nothing happened on the platform's side).

A fault matches one call name (a Bot API method, a Slack method, or a pseudo-name such as
"download" or "upload" for the file hosts; None matches every call but the long poll) and stays
for `times` calls or, with `for_s`, for a stretch of time ("500 for a while"). Each call a fault
was applied to is counted in `hits`, so a test can check its fault was really met.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp
from aiohttp import web

from tests.fakes.background import BackgroundServer

FaultKind = Literal["status", "hang", "drop"]

#: Calls a `method=None` fault leaves alone: the long poll has its own back-off in the bot.
UNTOUCHED = frozenset({"getUpdates", "auth.test"})


@dataclass
class Fault:
    """One scripted misbehaviour; see the module docstring."""

    kind: FaultKind
    method: str | None = None
    status: int = 500
    retry_after: int | None = None
    error: str = ""  # the platform's error code or description for `status` faults
    html: bool = False  # answer the front end's HTML error page instead of the API's JSON
    times: int | None = 1
    for_s: float | None = None
    hang_s: float = 60.0
    hits: int = 0
    #: A `time.monotonic()` deadline set by hand (an outage of a fixed window); `for_s` sets it
    #: at the first matching call.
    until: float | None = None

    def matches(self, call: str) -> bool:
        if self.method is None:
            return call not in UNTOUCHED
        return self.method == call

    def live(self, now: float) -> bool:
        if self.for_s is not None and self.until is None:
            self.until = now + self.for_s
        if self.until is not None:
            return now < self.until
        return self.times is None or self.hits < self.times


class FaultTable:
    """The faults scripted on one fake; thread-safe (tests script, the fake's loop applies)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Script `fault`; its `for_s` clock starts at the first matching call."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, call: str) -> Fault | None:
        """The fault to apply to this call (counted as a hit), or None to answer normally."""
        now = time.monotonic()
        with self._lock:
            for fault in self._faults:
                if fault.matches(call) and fault.live(now):
                    fault.hits += 1
                    return fault
        return None

    @property
    def hits(self) -> int:
        with self._lock:
            return sum(f.hits for f in self._faults)


async def misbehave(request: web.Request, fault: Fault, stopping: asyncio.Event | None) -> None:
    """Carry out a `hang` (until the client gives up, or the fake stops) or a `drop`."""
    if fault.kind == "hang":
        if stopping is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), fault.hang_s)
        else:
            await asyncio.sleep(fault.hang_s)
    transport = request.transport
    if transport is not None:
        transport.abort()


NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
}


def front_end_page(status: int) -> web.Response:
    """The HTML error page a platform's front end (nginx) answers when the API behind it is down."""
    reason = REASONS.get(status, "Error")
    return web.Response(
        status=status, text=NGINX_PAGE.format(status=status, reason=reason), content_type="text/html"
    )


class FaultyProxy(BackgroundServer):
    """A front end between a browser and a site (a CDN, a flaky network) that misbehaves on cue.

    Requests are passed through to `target` unchanged, except where `faults` has a fault for the
    call name `classify(path)` gives (e.g. "result" for a result's status document).
    """

    thread_name = "faulty-proxy"

    def __init__(self, target: str, classify: Callable[[str], str]) -> None:
        super().__init__()
        self.target = target.rstrip("/")
        self.classify = classify
        self.faults = FaultTable()
        self._session: aiohttp.ClientSession | None = None
        self._stopping: asyncio.Event | None = None

    async def _on_start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._stopping = asyncio.Event()

    async def _on_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._session is not None:
            await self._session.close()

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        return app

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault = self.faults.take(self.classify(request.path))
        if fault is not None:
            if fault.kind != "status":
                await misbehave(request, fault, self._stopping)
                return web.Response(status=504)
            if fault.html:
                return front_end_page(fault.status)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            return web.Response(status=fault.status, text=fault.error or "error", headers=headers)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method, self.target + request.path_qs, headers=headers, data=body, allow_redirects=False
        ) as answer:
            data = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=answer.status, body=data, headers=kept)


_HOP_BY_HOP = frozenset(
    {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}
)
