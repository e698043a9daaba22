"""Logging set-up: readable lines for a terminal, JSON lines for a log pipeline, nothing secret in either.

What is logged is decided where it happens; this module shapes it and enforces the rules no
caller has to remember (see docs/operating/logs.md):

- one record is one line: outside text has its control characters escaped, and a traceback's
  lines are indented under their record in text logs (in JSON they are one string), so nothing
  a client sends can forge a line;
- every configured secret is replaced by `[redacted]`, in messages, arguments and tracebacks,
  whoever logged them (`bot.redaction`);
- library records that would carry request bodies or raw bytes are rewritten (`bot.log_taming`),
  and libraries that log URLs with tokens or whole requests at DEBUG are held at WARNING;
- an uncaught exception and a Python warning are records too, so they follow the same rules
  instead of printing a raw traceback.

Fields passed with `extra={"fields": {...}}` become top-level JSON keys, so one job outcome is
one searchable line.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TextIO

from bot.log_taming import LibraryRecordTamer
from bot.redaction import LogHygieneFilter, Redactor, escape_control

LogFormat = Literal["text", "json"]

#: Libraries whose DEBUG/INFO records carry request URLs (a Telegram URL holds the bot token),
#: request or response bodies (python-telegram-bot's API calls with our captions, slack_sdk,
#: botocore: the photo, base64) or photo metadata (PIL's EXIF tags): only their warnings are
#: logged, whatever the level setting.
QUIET_LIBRARIES = (
    "httpx",
    "httpcore",
    "telegram",
    "botocore",
    "boto3",
    "urllib3",
    "aiohttp.access",
    "slack_sdk",
    "PIL",
)
# Characters a JSON encoder leaves raw but line-splitting tools treat as line breaks.
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's `fields`, any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):  # a field never overwrites the four keys every line has
            entry.update({key: value for key, value in fields.items() if key not in entry})
        exception = _exception_text(self, record)
        if exception:
            entry["exception"] = exception
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str).translate(_LINE_BREAKS)


class TextFormatter(logging.Formatter):
    """The usual one-line format, `fields` appended as key=value, a traceback indented beneath."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.getMessage())
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{key}={escape_control(str(value))}" for key, value in fields.items())
        for block in (_exception_text(self, record), record.stack_info):
            if block:
                line += "".join(f"\n    {escape_control(part)}" for part in block.splitlines())
        return line


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The traceback: already rendered and cleaned by the hygiene filter, else rendered here."""
    if record.exc_text:
        return record.exc_text
    return formatter.formatException(record.exc_info) if record.exc_info else None


def configure_logging(log_format: LogFormat, level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Send every record to stderr in the chosen format, with `secrets` redacted (called once at start).

    Also makes uncaught exceptions (main thread and others) and Python warnings log records, so
    they are redacted and well-formed too. Usable as a process pool's initializer, so image
    workers follow the same rules.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(LibraryRecordTamer())
    handler.addFilter(LogHygieneFilter(Redactor(secrets)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    warnings.showwarning = _log_warning
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A Python warning as one record (`logging.captureWarnings` would log the source line too)."""
    logging.getLogger("py.warnings").warning("%s: %s (%s:%d)", category.__name__, message, filename, lineno)


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    log = logging.getLogger("photodetective")
    if issubclass(kind, KeyboardInterrupt):
        log.info("Interrupted")
    else:
        log.critical("Stopped by an unexpected error", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "unknown"
    logging.getLogger("photodetective").error(
        "Thread %s stopped by an unexpected error",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
