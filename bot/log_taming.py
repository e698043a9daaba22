"""Rewrites the few library log records that would carry request bodies or raw bytes.

slack_bolt logs the whole body of every request whose signature fails (unauthenticated content
of any size) and prints a multi-line code suggestion for an event no listener takes; aiohttp
logs the raw bytes of a malformed request at ERROR with a traceback (a body longer than its
Content-Length: during an upload, those bytes are the photo). python-telegram-bot logs a Bot API answer
that is not JSON (an outage's HTML error page) whole. Each such record becomes one line
saying what happened, without the content; the refused request itself is logged by
`bot.http_log` with its method, path, status and size.

Socket Mode's client (slack_sdk) logs every envelope, whole, at DEBUG through the app's own
logger; those records are dropped, as slack_sdk's own loggers are held at WARNING.

Records are recognised by the library file that logged them and the message's fixed start, not
by logger name: Bolt names its loggers after the app and its classes, which a later Bolt or app
name would change. Everything else passes untouched (and is then redacted and escaped by
`bot.redaction.LogHygieneFilter`, installed after this filter).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import PurePath

from aiohttp.http_exceptions import HttpProcessingError

#: A rule rewrites a record in place; False drops it.
Rule = Callable[[logging.LogRecord], bool]
_TYPE = re.compile(r"'type': '([\w.:-]{1,64})'")


def _library(record: logging.LogRecord) -> str:
    """The top-level package of the file that made the record ("" outside site-packages)."""
    parts = PurePath(record.pathname).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            index = parts.index(marker)
            return parts[index + 1] if index + 1 < len(parts) else ""
    return ""


def _replace(record: logging.LogRecord, message: str, level: int | None = None) -> None:
    record.msg, record.args = message, None
    record.exc_info, record.exc_text = None, None
    if level is not None:
        record.levelno, record.levelname = level, logging.getLevelName(level)


def _bolt(record: logging.LogRecord) -> bool:
    message = str(record.msg)
    if message.startswith("Invalid request signature detected"):
        _replace(record, "Slack request refused: invalid signature or timestamp (its content is not logged)")
    elif message.startswith("Unhandled request ("):
        # Bolt appends a multi-line code suggestion, and its summary may quote what a user typed
        # (a dialog's fields): the payload and event types say which listener is missing.
        kinds = "/".join(_TYPE.findall(message.split("\n", 1)[0])) or "unknown"
        _replace(record, f"Slack request not handled by any listener: {kinds}")
    elif message.startswith("A global middleware (") and "for the request (" in message:
        _replace(record, message.split(" for the request (", 1)[0] + " (the request body is not logged)")
    return True


def _slack_sdk(record: logging.LogRecord) -> bool:
    """Socket Mode logs every envelope it receives or sends, whole, at DEBUG, through the app's logger."""
    return record.levelno > logging.DEBUG


def _aiohttp(record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, HttpProcessingError):
        # The exception's text quotes the offending bytes; its class and status say enough.
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "a client"
        _replace(
            record,
            f"Malformed HTTP request from {remote} refused: {error.code} {type(error).__name__} "
            "(its bytes are not logged)",
            logging.DEBUG,  # bot.http_log's line for the 400 says the rest
        )
    return True


def _telegram(record: logging.LogRecord) -> bool:
    """python-telegram-bot logs a Bot API answer that is not JSON whole, at ERROR with a traceback.

    That answer is a front end's HTML error page during an outage (any size, any text): the
    failed call is retried and, if it keeps failing, logged by the delivery code with its reason.
    """
    if str(record.msg).startswith("Can not load invalid JSON data"):
        _replace(
            record,
            "Bot API answered with a page that is not JSON (its content is not logged)",
            logging.WARNING,
        )
    return True


_RULES: dict[str, Rule] = {
    "slack_bolt": _bolt,
    "slack_sdk": _slack_sdk,
    "aiohttp": _aiohttp,
    "telegram": _telegram,
}


class LibraryRecordTamer(logging.Filter):
    """A handler filter applying the rules above.

    Besides what a rule drops, a record a rule lowered below its logger's level is dropped, as it
    would have been had the library logged it at that level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        rule = _RULES.get(_library(record))
        if rule is None:
            return True
        return rule(record) and record.levelno >= logging.getLogger(record.name).getEffectiveLevel()
