"""How the web page refuses: one exception carrying the words, and the small answers every handler uses.

A handler raises `WebError` wherever it notices a problem; `adapters.web.app` turns it into the
page (`message.html`) or, for the page's script and API clients, `{"error": {"code", "message"}}`.
Keeping the refusal an exception means a check deep in the upload's body reader can end the
request without each caller threading an error value back up.
"""

from __future__ import annotations

import sqlite3

from aiohttp import web
from redis.exceptions import RedisError


class WebError(Exception):
    """A refusal the page shows in words (and the API as `{"error": {"code", "message"}}`)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


#: The result store could not be reached (SQLite locked or gone, Redis down): answered 503.
STORE_ERRORS = (sqlite3.Error, RedisError, OSError)


def redirect(location: str) -> web.Response:
    """A 303 to a page of ours (after a POST the browser GETs it)."""
    return web.Response(status=303, headers={"Location": location})


def wants_json(request: web.Request) -> bool:
    """The page's script and API clients ask for JSON; a plain form post gets HTML."""
    return "application/json" in request.headers.get("Accept", "")


def form_field(value: object) -> str | None:
    """A text field of a parsed form (a file part or a missing field is None)."""
    return value if isinstance(value, str) else None
