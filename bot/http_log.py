"""One log line per refused HTTP request: what an operator needs, and nothing a client sent.

The shared HTTP server (webhooks, Slack events, the web page, health) logs no line for requests
it answers normally: a busy bot would log every Slack retry and health probe. A refused one
(status 400 and up: a forged Slack signature, a wrong webhook secret, an oversized or malformed
body, an unknown path) gets one line with method, path, status, sizes, time and client address,
so attacks and misconfigurations are visible without any of their content: no query string, no
header, no body, and a path segment that looks like a token (the sign-in link `/signin/<token>`,
a result's id) only by its first characters. The path
comes from outside, so like every logged string its control characters are escaped (by
`bot.redaction`).
"""

from __future__ import annotations

import logging
import re

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

FIRST_REFUSED_STATUS = 400
#: A path segment this long made only of URL-safe characters, with letters and digits, is taken for
#: a token (a sign-in link is /signin/<token>) and shortened to its first characters.
TOKEN_MIN_CHARS = 20
TOKEN_SHOWN_CHARS = 4
_TOKEN = re.compile(rf"(?=[A-Za-z_-]*[0-9])(?=[0-9_-]*[A-Za-z])[A-Za-z0-9_-]{{{TOKEN_MIN_CHARS},}}")
#: The access log to give aiohttp with `access_log_class=RefusedRequestLog`.
refused_requests = logging.getLogger("bot.http")


def path_for_log(path: str) -> str:
    """The path, token-like segments cut short: a sign-in link must not be replayable from the log."""
    return "/".join(
        segment[:TOKEN_SHOWN_CHARS] + "…" if _TOKEN.fullmatch(segment) else segment
        for segment in path.split("/")
    )


class RefusedRequestLog(AbstractAccessLogger):
    """aiohttp `access_log_class`: logs the refused requests only, to the logger it is given."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        status = response.status
        if status < FIRST_REFUSED_STATUS:
            return
        fields: dict[str, object] = {
            "method": request.method,
            "path": path_for_log(request.path),
            "status": status,
            "reason": response.reason,
            "request_bytes": request.content_length,
            "response_bytes": response.body_length,
            "seconds": round(time, 3),
            "client": request.remote,
        }
        # Everything is in `fields`: key=value pairs in a text log, keys of their own in JSON.
        self.logger.info(
            "Refused request", extra={"fields": {k: v for k, v in fields.items() if v is not None}}
        )
