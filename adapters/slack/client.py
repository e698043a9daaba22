"""The one Slack Web API client the adapter uses, with Slack's rate limits honoured.

slack-sdk retries nothing but dropped connections unless told to. Slack answers bursts (a busy
channel, many reactions) with HTTP 429 and a `Retry-After` header; the rate-limit handler sleeps
that long and tries again, for every method, including the raw upload step of files_upload_v2,
but only for short waits (`MAX_RETRY_AFTER_S`): a longer one is not slept through in the worker,
the error goes up and the answer waits in the queue instead (bot/delivery.py).
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

#: Attempts after a 429 before the call fails with `ratelimited`.
RATE_LIMIT_RETRIES = 3
#: Seconds for one Web API call (an upload of a few hundred KB included).
API_TIMEOUT_S = 30
#: The longest `Retry-After` waited out in the call itself; longer waits go back to the queue.
MAX_RETRY_AFTER_S = 5.0


class ShortRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Retry a 429 only when Slack asks for a short wait (see the module docstring)."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        for name, values in response.headers.items():
            if name.lower() == "retry-after":
                try:
                    return float(values[0]) <= MAX_RETRY_AFTER_S
                except (ValueError, IndexError):
                    return True
        return True


def build_web_client(token: str, base_url: str) -> AsyncWebClient:
    """An AsyncWebClient that honours Retry-After on 429 and retries 500/503 and dropped connections once.

    No aiohttp session is passed: the SDK opens one per call, so building the client needs no
    running event loop (workers build adapters before the loop does any Slack work).
    """
    return AsyncWebClient(
        token=token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=API_TIMEOUT_S,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            ShortRateLimitRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            AsyncServerErrorRetryHandler(max_retry_count=1),
        ],
    )
