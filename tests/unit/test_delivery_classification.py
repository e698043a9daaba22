"""Each platform's errors read as "try the answer again later" or "refused for good", and say why safely."""

from __future__ import annotations

import aiohttp
import httpx
import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.slack_response import SlackResponse
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from adapters.slack.replies import delivery_failure as slack_failure
from adapters.telegram.limits import FloodControl
from adapters.telegram.limits import delivery_failure as telegram_failure

HTML = "Bad Gateway (502). Parsing the server response b'<html><body>SECRET BODY</body></html>' failed"


def with_cause(error: NetworkError, cause: Exception) -> NetworkError:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "permanent", "retry_after"),
    [
        (RetryAfter(30), False, 30.0),
        (NetworkError(HTML), False, None),
        (NetworkError("Internal Server Error"), False, None),
        (TimedOut("Timed out"), False, None),
        (with_cause(NetworkError("httpx.ConnectError"), httpx.ConnectError("refused")), False, None),
        (Forbidden("Forbidden: bot was blocked by the user"), True, None),
        (BadRequest("Bad Request: chat not found"), True, None),
        (ChatMigrated(-1001), True, None),
    ],
)
def test_telegram_errors(error: Exception, permanent: bool, retry_after: float | None) -> None:
    failure = telegram_failure(error)  # type: ignore[arg-type]

    assert failure.permanent is permanent
    assert failure.retry_after_s == retry_after
    assert "SECRET" not in failure.reason
    assert "<html>" not in failure.reason


def slack_error(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="http://127.0.0.1/api/chat.postMessage",
        req_args={},
        data=body,
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError("failed", response)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("error", "permanent", "retry_after"),
    [
        (slack_error(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "20"}), False, 20.0),
        (slack_error(200, {"ok": False, "error": "ratelimited"}), False, None),
        (slack_error(503, {"ok": False, "error": "service_unavailable"}), False, None),
        (slack_error(502, {}), False, None),
        (slack_error(200, {"ok": False, "error": "fatal_error"}), False, None),
        (slack_error(200, {"ok": False, "error": "not_in_channel"}), True, None),
        (slack_error(200, {"ok": False, "error": "channel_not_found"}), True, None),
        (slack_error(403, {}), True, None),
        (
            SlackRequestError("Failed to upload a file (status: 503, body: SECRET BODY, filename: a.jpg)"),
            False,
            None,
        ),
        (aiohttp.ClientConnectionError("refused"), False, None),
        (TimeoutError(), False, None),
    ],
)
def test_slack_errors(error: Exception, permanent: bool, retry_after: float | None) -> None:
    failure = slack_failure(error)

    assert failure.permanent is permanent
    assert failure.retry_after_s == retry_after
    assert "SECRET" not in failure.reason


@pytest.mark.parametrize(
    ("endpoint", "error", "tries"),
    [
        ("sendChatAction", NetworkError("Service Unavailable"), 1),  # decoration: skipped, not waited for
        ("sendChatAction", RetryAfter(1), 1),
        ("sendPhoto", NetworkError("Service Unavailable"), 3),  # the answer: two short retries in place
        ("sendPhoto", RetryAfter(1), 3),
        ("sendPhoto", RetryAfter(40), 1),  # a long wait is the queue's, not the worker's
    ],
)
async def test_flood_control_does_not_hold_an_answer_for_decoration_or_long_waits(
    endpoint: str, error: Exception, tries: int
) -> None:
    limiter = FloodControl(outage_backoff_s=0.01, max_wait_s=1.5)
    calls = 0

    async def callback() -> dict[str, object]:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(type(error)):
        await limiter.process_request(callback, (), {}, endpoint, {"chat_id": 42}, None)
    assert calls == tries
