"""The one Slack Web API client the adapter uses, with Slack's rate limits honoured.

slack-sdk retries nothing but dropped connections unless told to. Slack answers bursts (a busy
channel, many reactions) with HTTP 429 and a `Retry-After` header; the rate-limit handler sleeps
that long and tries again, for every method, including the raw upload step of files_upload_v2.
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

#: Attempts after a 429 before the call fails with `ratelimited`.
RATE_LIMIT_RETRIES = 3
#: Seconds for one Web API call (an upload of a few hundred KB included).
API_TIMEOUT_S = 30


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
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            AsyncServerErrorRetryHandler(max_retry_count=1),
        ],
    )
