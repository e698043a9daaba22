"""Telegram's limits, and flood control that keeps the bot inside them.

Telegram allows a bot about 30 messages a second overall, 20 a minute in one group and about one
a second in one private chat (short bursts are tolerated); past that it answers 429 with
`retry_after`. `FloodControl` is a python-telegram-bot rate limiter that paces *messages* per
chat before they are sent and, when a 429 comes anyway, waits the time Telegram asked for and
tries again. Unlike the stock `AIORateLimiter`, chat actions and lookups (getFile,
getChatMember) do not use up a group's 20 messages a minute, and a 429 in one chat does not
hold up the others.

It also rides out a blip: a 5xx answer (Telegram reports that the request failed) or a
connection that could not be opened (it never arrived) is sent again after 1 and 2 s, and a 429
asking for at most 5 s is waited out. A request that may have arrived (a timeout or a connection
dropped mid-answer) is only repeated for lookups: sending a message twice would answer a photo
twice, so for messages that stays at most once. Anything longer is not slept through here, where
it would hold a worker and a shutdown: the error goes up, `delivery_failure` tells the worker
whether it is worth another try, and the answer waits in the queue (bot/delivery.py).
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
from aiolimiter import AsyncLimiter
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import BaseRateLimiter

from bot.ports import DeliveryFailed

log = logging.getLogger(__name__)

#: Bots download at most this much through getFile (the Bot API's "20 MB").
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
#: sendPhoto takes at most 10 MB, and width + height at most 10000; beyond, send a document.
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_SIDES = 10_000
MAX_PHOTO_RATIO = 20

#: Methods that post or change a message: these are what Telegram's flood limits count.
MESSAGE_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendMediaGroup",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
    }
)

_MAX_CHAT_LIMITERS = 1024
#: getUpdates has its own back-off in the poller; retrying it here too would only stack the waits.
_OWN_RETRIES = frozenset({"getUpdates"})
#: Decoration ("uploading a photo..."): a failed one is skipped, not waited for, since waiting
#: would hold up the very answer it announces (in an outage, each answer's try by seconds).
_DECORATION = frozenset({"sendChatAction"})


def not_delivered(error: NetworkError) -> bool:
    """Whether Telegram certainly did not carry out the request that raised `error`.

    python-telegram-bot raises NetworkError both for an HTTP 5xx answer (no underlying exception)
    and for transport failures (the httpx error as the cause). Of those only a refused or failed
    connection proves nothing was sent; a timeout or a reset may come after Telegram acted.
    """
    if isinstance(error, TimedOut):
        return False
    cause = error.__cause__
    return cause is None or isinstance(cause, httpx.ConnectError) or not isinstance(cause, httpx.HTTPError)


def short_reason(error: TelegramError) -> str:
    """The error in a few safe words for logs and dead letters, never the body the server sent.

    python-telegram-bot puts an unparsable answer (a front end's HTML error page) into the
    message after "Parsing the server response"; Telegram's own descriptions are short text.
    """
    message = error.message.split(". Parsing the server response", 1)[0]
    cleaned = "".join(ch if ch.isprintable() else " " for ch in message)[:120]
    return f"{type(error).__name__}: {cleaned}"


def delivery_failure(error: TelegramError) -> DeliveryFailed:
    """What a failed send means for the answer: permanent when Telegram refused this chat or request.

    Permanent: 403 Forbidden (the bot was blocked, kicked, or may not write there), 400 Bad
    Request (chat not found, a request Telegram will never take), a chat that migrated. Anything
    else (429, 5xx, a timeout, no connection, even a token the operator is fixing) may pass.
    The reason is Telegram's own short description or the error's class: no message content.
    """
    if isinstance(error, RetryAfter):
        wait = retry_after_seconds(error)
        return DeliveryFailed(f"429 retry after {wait:g} s", permanent=False, retry_after_s=wait)
    if isinstance(error, (Forbidden, BadRequest, ChatMigrated)):
        return DeliveryFailed(short_reason(error), permanent=True)
    cause = error.__cause__
    if isinstance(error, NetworkError) and cause is not None:  # no answer: the transport failed
        return DeliveryFailed(f"{type(error).__name__}: {type(cause).__name__}", permanent=False)
    return DeliveryFailed(short_reason(error), permanent=False)


def fits_as_photo(size: int, width: int, height: int) -> bool:
    """Whether Telegram accepts this image through sendPhoto (else it must go as a document)."""
    if size > MAX_PHOTO_BYTES or width <= 0 or height <= 0:
        return False
    return width + height <= MAX_PHOTO_SIDES and max(width, height) <= MAX_PHOTO_RATIO * min(width, height)


def retry_after_seconds(error: RetryAfter) -> float:
    """The wait Telegram asked for, whatever python-telegram-bot's int/timedelta migration setting."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def chat_kind(chat_id: object) -> str | None:
    """ "group" for groups and channels (negative ids or @names), "private" for users, None otherwise."""
    if chat_id is None:
        return None
    if isinstance(chat_id, str) and chat_id.startswith("@"):
        return "group"
    try:
        return "group" if int(str(chat_id)) < 0 else "private"
    except ValueError:
        return None


class FloodControl(BaseRateLimiter[int]):
    """Pace messages per chat and overall; on 429 wait `retry_after` and retry (at most `max_retries`).

    `group_per_minute` and `private_burst`/`private_per_second` are Telegram's published limits;
    a 429 asking for longer than `max_wait_s` is not waited out but raised, so a reply is not held
    for minutes (the worker keeps the answer in the queue and tries again after that wait).
    """

    def __init__(
        self,
        *,
        overall_per_second: float = 30,
        group_per_minute: float = 20,
        private_burst: float = 3,
        private_per_second: float = 1,
        max_retries: int = 2,
        max_wait_s: float = 5,
        outage_retries: int = 2,
        outage_backoff_s: float = 1.0,
    ) -> None:
        self.overall = AsyncLimiter(overall_per_second, 1)
        self.group_per_minute = group_per_minute
        self.private_burst = private_burst
        self.private_per_second = private_per_second
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.outage_retries = outage_retries
        self.outage_backoff_s = outage_backoff_s
        self._chats: OrderedDict[str, AsyncLimiter] = OrderedDict()

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def _chat_limiter(self, chat_id: object) -> AsyncLimiter | None:
        kind = chat_kind(chat_id)
        if kind is None:
            return None
        key = str(chat_id)
        limiter = self._chats.get(key)
        if limiter is None:
            if kind == "group":
                limiter = AsyncLimiter(self.group_per_minute, 60)
            else:
                limiter = AsyncLimiter(self.private_burst, self.private_burst / self.private_per_second)
            self._chats[key] = limiter
            while len(self._chats) > _MAX_CHAT_LIMITERS:
                self._chats.popitem(last=False)
        else:
            self._chats.move_to_end(key)
        return limiter

    def limiters_for(self, endpoint: str, data: dict[str, Any]) -> list[AsyncLimiter]:
        """The buckets one request takes from: messages count per chat and overall, the rest not at all."""
        if endpoint not in MESSAGE_METHODS:
            return []
        chat = self._chat_limiter(data.get("chat_id"))
        return [self.overall] if chat is None else [chat, self.overall]

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        limiters = self.limiters_for(endpoint, data)
        attempt = outage = 0
        while True:
            try:
                async with AsyncExitStack() as stack:
                    for limiter in limiters:
                        await stack.enter_async_context(limiter)
                    return await callback(*args, **kwargs)
            except RetryAfter as error:
                wait = retry_after_seconds(error)
                if attempt >= retries or wait > self.max_wait_s or endpoint in _DECORATION:
                    raise
                attempt += 1
                log.info("Telegram asked to slow down (%s): retrying in %.1f s", endpoint, wait)
                await asyncio.sleep(wait + 0.1)
            except NetworkError as error:
                # BadRequest subclasses NetworkError in python-telegram-bot, but it is Telegram's
                # answer about the request itself: sending it again gets the same answer.
                safe = not_delivered(error) or endpoint not in MESSAGE_METHODS
                refused = isinstance(error, BadRequest)
                once = endpoint in _OWN_RETRIES or endpoint in _DECORATION
                if refused or not safe or outage >= self.outage_retries or once:
                    raise
                wait = self.outage_backoff_s * 2**outage
                outage += 1
                log.warning("Bot API %s failed (%s): retrying in %.0f s", endpoint, short_reason(error), wait)
                await asyncio.sleep(wait)
