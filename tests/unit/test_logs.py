"""The log's rules, record by record: secrets redacted, outside text escaped, library records tamed.

Records go through the real handler `configure_logging` installs, writing to a buffer, so these
tests see exactly the bytes an operator would. The whole process (every platform, hostile
requests) is walked in tests/integration/test_log_hygiene.py.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import subprocess
import sys
import threading
import typing
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.http_log import RefusedRequestLog, path_for_log
from bot.logs import configure_logging
from bot.redaction import (
    MAX_MESSAGE_CHARS,
    REDACTED,
    Redactor,
    configured_secrets,
    escape_control,
    secrets_in,
)
from bot.settings import Settings, SettingsSection, installed_sections
from tests.settings_helpers import settings_from

TOKEN = "123456:MARKER-token/with+odd=chars"
AWS_SECRET = "MARKER-aws-secret-value"


@pytest.fixture
def logged() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    """A buffer for the root handler `configure` sets up; the logging set-up is restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook, warnings.showwarning)
    yield io.StringIO(), logging.getLogger("tests.logs")
    root.handlers[:], root.level, sys.excepthook, threading.excepthook, warnings.showwarning = saved


def configure(
    buffer: io.StringIO,
    log_format: typing.Literal["text", "json"],
    level: str = "INFO",
    secrets: typing.Sequence[str] = (),
) -> None:
    """`configure_logging` as the CLI calls it, its handler then pointed at the test's buffer."""
    configure_logging(log_format, level, secrets)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


# -- which secrets -------------------------------------------------------------------------------


def _secret_fields(kind: type[BaseSettings]) -> list[str]:
    return [
        name
        for name, field in kind.model_fields.items()
        if field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation)
    ]


def test_every_secret_field_of_the_settings_and_every_installed_section_is_gathered() -> None:
    expected: set[str] = set()

    def with_markers(kind: type[BaseSettings]) -> dict[str, Any]:
        values: dict[str, Any] = {name: f"MARKER-{kind.__name__}-{name}" for name in _secret_fields(kind)}
        expected.update(values.values())
        return values

    own = with_markers(Settings)
    assert own  # the describer's API key
    sections = [kind(_env_file=None, **with_markers(kind)) for kind in installed_sections()]  # type: ignore[call-arg]
    assert len(expected) >= 7  # and Telegram's token and webhook secret, three Slack, the web session key
    settings = Settings(_env_file=None, **own).with_sections(*sections)  # type: ignore[call-arg]
    assert expected <= configured_secrets(settings)


def test_a_secret_field_added_later_is_gathered_without_naming_it() -> None:
    class Describe(SettingsSection):
        model_config = SettingsConfigDict(env_prefix="PHOTODETECTIVE_DESCRIBE_")
        api_key: SecretStr | None = Field(None)
        model: str = "small"

    found = secrets_in(Settings(_env_file=None), [Describe(api_key=SecretStr("MARKER-describe-key"))], {})  # type: ignore[call-arg]
    assert found == {"MARKER-describe-key"}


def test_url_passwords_and_aws_credentials_are_secrets_too(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = AKIAFILEKEY0000\naws_secret_access_key = MARKER-file-secret\n"
    )
    settings = settings_from(redis_url="redis://:MARKER-redis%40pw@cache:6379/0")
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAENVKEY00000",
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
    }
    found = secrets_in(settings, [], env)
    assert found == {
        "MARKER-redis%40pw",
        "MARKER-redis@pw",
        "AKIAENVKEY00000",
        AWS_SECRET,
        "AKIAFILEKEY0000",
        "MARKER-file-secret",
    }


def test_values_too_short_to_be_secrets_are_not_redacted() -> None:
    assert Redactor(["abc"]).redact("abc abc") == "abc abc"


def test_encoded_forms_of_a_secret_are_redacted() -> None:
    from urllib.parse import quote, quote_plus

    redactor = Redactor([TOKEN])
    for form in (TOKEN, quote(TOKEN, safe=""), quote(TOKEN), quote_plus(TOKEN), json.dumps(TOKEN)[1:-1]):
        assert (
            redactor.redact(f"https://api.example/bot{form}/getMe")
            == f"https://api.example/bot{REDACTED}/getMe"
        )


# -- records through the real handler -------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_are_redacted_in_messages_arguments_tracebacks_stacks_and_fields(
    logged: tuple[io.StringIO, logging.Logger], log_format: typing.Literal["text", "json"]
) -> None:
    buffer, log = logged
    configure(buffer, log_format, "DEBUG", [TOKEN, AWS_SECRET])
    log.info(f"token {TOKEN} in the message")
    log.info("token %s as an argument, %r as its repr", TOKEN, TOKEN)
    try:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
    except RuntimeError:
        log.exception("start-up failed")
    log.warning("where", stack_info=True, extra={"fields": {"key": AWS_SECRET, "nested": {"k": [TOKEN]}}})
    output = buffer.getvalue()
    assert "MARKER" not in output
    assert output.count(REDACTED) >= 6
    assert "RuntimeError" in output  # the traceback is still there, only the secret is gone


def test_text_lines_cannot_be_forged_and_tracebacks_are_indented(
    logged: tuple[io.StringIO, logging.Logger],
) -> None:
    buffer, log = logged
    configure(buffer, "text", "INFO")
    forged = "name\n2020-01-01 00:00:00,000 ERROR bot.runner: FAKE\r\x1b[2J\u2028\u202eevil"
    log.info("file %s", forged, extra={"fields": {"file": forged}})
    try:
        raise ValueError(forged)
    except ValueError:
        log.exception("failed on %s", "x")
    written = lines(buffer)
    assert all(line.startswith(("20", " ")) for line in written)
    assert not any(line.startswith("2020-01-01") for line in written)
    assert "name\\n2020-01-01 00:00:00,000 ERROR bot.runner: FAKE\\r\\x1b[2J\\u2028\\u202eevil" in written[0]
    assert written[1].endswith("failed on x")
    assert written[2] == "    Traceback (most recent call last):"
    assert "\x1b" not in buffer.getvalue()


def test_every_json_record_is_one_parseable_line(logged: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, log = logged
    configure(buffer, "json", "INFO")
    log.info("a\u2028b\x85c\nd", extra={"fields": {"file": "x\u2029y", "message": "not the message"}})
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        log.exception("failed")
    records = [json.loads(line) for line in lines(buffer)]  # splitlines splits at U+2028 too
    assert len(records) == 2
    assert records[0]["message"] == "a\\u2028b\\x85c\\nd"
    assert records[0]["file"] == "x\\u2029y"
    assert "ValueError: line one\nline two" in records[1]["exception"]


def test_a_huge_message_is_capped(logged: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, log = logged
    configure(buffer, "text", "INFO")
    log.info("body: %s", "A" * 200_000)
    written = buffer.getvalue()
    assert len(written) < MAX_MESSAGE_CHARS + 200
    assert "more characters not logged" in written


def test_escape_control_keeps_printable_text_of_every_script() -> None:
    text = "Zürich 東京 Ελλάδα café \\n stays"
    assert escape_control(text) == text
    assert escape_control("a\tb\x00c\x7f\U000e0001") == "a\\tb\\x00c\\x7f\\U000e0001"


def test_libraries_that_log_requests_stay_quiet_at_debug(logged: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, _ = logged
    configure(buffer, "text", "DEBUG")
    for name in (
        "telegram.Bot",
        "telegram.ext.ExtBot",
        "httpx",
        "botocore.endpoint",
        "slack_sdk.web",
        "PIL.Image",
    ):
        logging.getLogger(name).debug("Calling endpoint with parameters `%s`", {"caption": "GPS 48.85, 2.29"})
    logging.getLogger("bot.worker").debug("own debug line")
    assert [line.split(" ", 3)[3] for line in lines(buffer)] == ["bot.worker: own debug line"]


# -- library records -------------------------------------------------------------------------------


def _library_record(
    package: str, file: str, level: int, message: str, *args: object, exc: BaseException | None = None
) -> logging.LogRecord:
    """A record as the library's own code makes it: the file path is what identifies it."""
    path = f"/venv/lib/python3.11/site-packages/{package}/{file}"
    exc_info = (type(exc), exc, None) if exc else None
    return logging.LogRecord("lib", level, path, 1, message, args or None, exc_info)


def test_bolt_signature_failures_lose_their_body(logged: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, _ = logged
    configure(buffer, "text", "INFO")
    body = '{"x": "SECRET-BODY\nERROR bot.runner: FAKE"}' * 10_000
    message = f"Invalid request signature detected (signature: v0=00, timestamp: 1, body: {body})"
    logging.getLogger().handle(
        _library_record(
            "slack_bolt", "middleware/request_verification/request_verification.py", logging.INFO, message
        )
    )
    assert len(lines(buffer)) == 1
    assert "SECRET-BODY" not in buffer.getvalue()
    assert "invalid signature" in buffer.getvalue()


def test_bolt_unhandled_request_advice_is_one_line(logged: tuple[io.StringIO, logging.Logger]) -> None:
    from slack_bolt.logger.messages import warning_unhandled_request
    from slack_bolt.request.async_request import AsyncBoltRequest

    buffer, _ = logged
    configure(buffer, "text", "INFO")
    event = {"type": "event_callback", "event": {"type": "file_shared", "file_id": "F1"}}
    message = warning_unhandled_request(AsyncBoltRequest(body=json.dumps(event)))
    assert "\n" in message  # the library's advice, several lines of code
    logging.getLogger().handle(_library_record("slack_bolt", "app/async_app.py", logging.WARNING, message))
    assert lines(buffer)[0].endswith("Slack request not handled by any listener: event_callback/file_shared")
    assert len(lines(buffer)) == 1


def test_socket_mode_envelopes_are_not_logged_even_at_debug(
    logged: tuple[io.StringIO, logging.Logger],
) -> None:
    buffer, _ = logged
    configure(buffer, "text", "DEBUG")
    envelope = 'Received message (type: TEXT, data: \'{"payload": {"event": {"text": "PRIVATE-TEXT"}}}\')'
    logging.getLogger().handle(
        _library_record("slack_sdk", "socket_mode/aiohttp/__init__.py", logging.DEBUG, envelope)
    )
    warning = "Failed to send a ping message (s1): timeout"
    logging.getLogger().handle(
        _library_record("slack_sdk", "socket_mode/aiohttp/__init__.py", logging.WARNING, warning)
    )
    assert "PRIVATE-TEXT" not in buffer.getvalue()
    assert lines(buffer)[0].endswith(warning)


def test_aiohttp_malformed_request_bytes_are_not_logged(logged: tuple[io.StringIO, logging.Logger]) -> None:
    from aiohttp.http_exceptions import BadHttpMethod

    buffer, _ = logged
    configure(buffer, "text", "DEBUG")
    error = BadHttpMethod(b"\xff\xd8PHOTO-BYTES\nERROR bot.runner: FAKE".decode("latin-1"))
    record = _library_record(
        "aiohttp", "web_protocol.py", logging.ERROR, "Error handling request from %s", "10.0.0.9", exc=error
    )
    logging.getLogger().handle(record)
    assert "PHOTO-BYTES" not in buffer.getvalue()
    assert lines(buffer) == [lines(buffer)[0]]
    assert lines(buffer)[0].endswith(
        "Malformed HTTP request from 10.0.0.9 refused: 400 BadHttpMethod (its bytes are not logged)"
    )
    assert " DEBUG " in lines(buffer)[0]


def test_other_aiohttp_errors_keep_their_traceback(logged: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, _ = logged
    configure(buffer, "text", "INFO")
    record = _library_record(
        "aiohttp",
        "web_protocol.py",
        logging.ERROR,
        "Error handling request from %s",
        "10.0.0.9",
        exc=KeyError("k"),
    )
    logging.getLogger().handle(record)
    assert " ERROR " in lines(buffer)[0]
    assert "KeyError" in buffer.getvalue()


# -- refused requests --------------------------------------------------------------------------------


async def test_a_refused_request_is_logged_without_its_query_or_body(
    logged: tuple[io.StringIO, logging.Logger],
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    buffer, log = logged
    configure(buffer, "json", "INFO")
    access = RefusedRequestLog(log, "")
    request = make_mocked_request("POST", "/signin?token=MARKER-link-token", headers={"Content-Length": "12"})
    access.log(request, web.Response(status=403, text="no"), 0.0123)
    access.log(request, web.Response(status=200, text="ok"), 0.01)
    [record] = [json.loads(line) for line in lines(buffer)]
    assert "MARKER" not in buffer.getvalue()
    assert {k: record[k] for k in ("method", "path", "status", "reason", "request_bytes")} == {
        "method": "POST",
        "path": "/signin",
        "status": 403,
        "reason": "Forbidden",
        "request_bytes": 12,
    }


def test_token_like_path_segments_are_cut_short() -> None:
    token = secrets.token_urlsafe(24)
    assert path_for_log(f"/signin/{token}") == f"/signin/{token[:4]}…"
    assert (
        path_for_log("/results/3b5ca73bc55c4fa6b83d290b4739cbe6/annotated.jpg")
        == "/results/3b5c…/annotated.jpg"
    )
    assert (
        path_for_log("/static/a-rather-long-stylesheet-name.css")
        == "/static/a-rather-long-stylesheet-name.css"
    )
    assert path_for_log("/slack/events") == "/slack/events"


# -- what is not a log call ----------------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_an_uncaught_exception_and_a_warning_become_redacted_json_records() -> None:
    result = _python(
        "import warnings\n"
        "from bot.logs import configure_logging\n"
        f"configure_logging('json', 'INFO', [{TOKEN!r}])\n"
        f"warnings.warn('careful with {TOKEN}')\n"
        f"raise RuntimeError('The token {TOKEN} was rejected')\n"
    )
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert [r["level"] for r in records] == ["warning", "critical"]
    assert "MARKER" not in result.stderr
    assert "RuntimeError: The token [redacted] was rejected" in records[1]["exception"]
    assert records[0]["message"] == "UserWarning: careful with [redacted] (<string>:4)"


def test_an_exception_in_a_thread_is_a_record_too() -> None:
    result = _python(
        "import threading\n"
        "from bot.logs import configure_logging\n"
        f"configure_logging('text', 'INFO', [{TOKEN!r}])\n"
        f"def boom(): raise RuntimeError('{TOKEN}\\nFAKE LINE')\n"
        "t = threading.Thread(target=boom, name='pump'); t.start(); t.join()\n"
    )
    assert "MARKER" not in result.stderr
    assert all(line.startswith(("20", " ")) for line in result.stderr.splitlines())
    assert "Thread pump stopped by an unexpected error" in result.stderr


def test_a_bot_api_page_that_is_not_json_is_not_logged(logged: tuple[io.StringIO, logging.Logger]) -> None:
    """A 5xx from the Bot API's front end is an HTML page; python-telegram-bot logs it whole at ERROR."""
    from telegram.error import TelegramError
    from telegram.request import BaseRequest

    buffer, _ = logged
    configure(buffer, "text", "INFO")
    page = b"<html><body>PAGE-BODY 502 Bad Gateway\nERROR bot.runner: FAKE</body></html>" * 100
    with pytest.raises(TelegramError):
        BaseRequest.parse_json_payload(page)
    assert "PAGE-BODY" not in buffer.getvalue()
    [line] = lines(buffer)
    assert "not JSON" in line
