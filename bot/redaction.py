"""What keeps secrets and outside text from shaping a log line: redaction and control-character escapes.

Code is careful not to log a token, but libraries are not: an HTTP client puts the bot token in
the URL it reports, a rejected token is quoted in the exception, a traceback repeats whatever an
error message held. So the one handler every record passes through gets `LogHygieneFilter`,
which replaces each configured secret by `[redacted]` in the message, its arguments, the
traceback and the stack, whoever logged it. The secrets are gathered from the settings models
themselves (every `SecretStr` of the application's and every installed platform's settings,
passwords in URL settings, and the AWS credentials boto3 will use), so a secret added later is
covered without anyone remembering this module.

The same filter escapes control characters (newline, carriage return, ESC, bidi overrides...) in
everything outside can influence, so a forged body or file name cannot start a fake log line or
repaint an operator's terminal, whatever the format, and caps a message's length.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel, SecretBytes, SecretStr

from bot.settings import Settings, installed_sections

REDACTED = "[redacted]"
#: Shorter values are not treated as secrets: redacting "abc" everywhere would mangle the log
#: while protecting nothing (such a value can be guessed anyway).
MIN_SECRET_LENGTH = 6
MAX_MESSAGE_CHARS = 2_000
MAX_TRACE_CHARS = 20_000
AWS_SECRET_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_AWS_FILE_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every unprintable character written as an escape (`\\n`, `\\x1b`, `\\u202e`).

    "Unprintable" is Python's `str.isprintable`: control, format (bidi, zero width), separator
    (U+2028 splits lines in many tools) and unassigned characters; ordinary letters of every
    script stay as they are. A backslash is left alone: the output is for people, not a parser.
    `keep_newlines` is for tracebacks, whose lines the formatter indents under their record.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or (keep_newlines and ch == "\n") else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    named = _NAMED_ESCAPES.get(ch)
    if named:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def cap(text: str, limit: int) -> str:
    """At most `limit` characters, saying how many were left out (a 200 KB body is not a log line)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters not logged)"


class Redactor:
    """Replaces every known secret, and the encoded forms it takes in URLs and JSON, by `[redacted]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                forms.update(
                    {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), repr(secret)[1:-1]}
                )
        # Longest first, so a secret containing another is replaced whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(REDACTED, text)


def configured_secrets(settings: Settings) -> set[str]:
    """The secrets of these settings and of every installed platform's settings section."""
    return secrets_in(settings, [settings.section(kind) for kind in installed_sections()])


def secrets_in(
    settings: BaseModel, sections: Iterable[BaseModel] = (), environ: Mapping[str, str] | None = None
) -> set[str]:
    """Every secret value the process is configured with: the values to keep out of the log.

    Walks the models' fields (nested models and collections too) for `SecretStr`/`SecretBytes`
    and for passwords inside URLs (`redis://:pw@host`), then adds the AWS credentials boto3 reads
    from the environment and the shared credentials file (not the instance role: asking for that
    would mean a network call at start, and those short-lived keys are never in our messages).
    """
    found: set[str] = set()
    for model in (settings, *sections):
        found.update(_secret_values(model))
    env = os.environ if environ is None else environ
    found.update(env[name] for name in AWS_SECRET_VARIABLES if env.get(name))
    found.update(_aws_file_secrets(env))
    return {value for value in found if len(value) >= MIN_SECRET_LENGTH}


def _secret_values(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, SecretBytes):
        yield value.get_secret_value().decode("utf-8", "replace")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name, None))
    elif isinstance(value, str):
        if "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                yield password
                yield unquote(password)  # as a client library may quote it in an error
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item)


def _aws_file_secrets(env: Mapping[str, str]) -> Iterator[str]:
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return
    for section in parser.sections():
        for key in _AWS_FILE_KEYS:
            value = parser.get(section, key, fallback="").strip()
            if value:
                yield value


class LogHygieneFilter(logging.Filter):
    """Installed on the log handler: every record leaves it redacted, escaped and capped.

    The message is rendered here (so a secret passed as an argument is caught too), and the
    traceback and stack are rendered into `exc_text`/`stack_info` and cleaned the same way;
    `exc_info` is dropped so no later formatter renders the raw one again. String values of the
    record's `fields` are cleaned as well. A record is cleaned once, even if it passes several
    handlers. (Records from libraries that log request bodies are rewritten before this, by
    `bot.log_taming`.)
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_hygienic", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record or raise while logging
            message = f"{record.msg!r} {record.args!r}"
        record.msg = cap(self.clean(message), MAX_MESSAGE_CHARS)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = cap(self.clean(record.exc_text, keep_newlines=True), MAX_TRACE_CHARS)
        if record.stack_info:
            record.stack_info = cap(self.clean(record.stack_info, keep_newlines=True), MAX_TRACE_CHARS)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {key: self._clean_value(value) for key, value in fields.items()}
        record._hygienic = True
        return True

    def clean(self, text: str, *, keep_newlines: bool = False) -> str:
        return escape_control(self.redactor.redact(text), keep_newlines=keep_newlines)

    def _clean_value(self, value: object) -> object:
        if isinstance(value, str):
            return cap(self.clean(value), MAX_MESSAGE_CHARS)
        if isinstance(value, bool | int | float) or value is None:
            return value
        if isinstance(value, dict):
            return {str(k): self._clean_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean_value(item) for item in value]
        return cap(self.clean(str(value)), MAX_MESSAGE_CHARS)
