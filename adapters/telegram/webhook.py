"""Webhook mode: Telegram POSTs each update to /telegram/webhook on the shared HTTP server.

Telegram sends the secret given to setWebhook in `X-Telegram-Bot-Api-Secret-Token`; anything
without it is refused (compared in constant time, so the secret cannot be guessed byte by byte).
The answer is 200 only after the update was handled, i.e. after its job was stored: any other
answer, or none, makes Telegram send the update again, and the service recognises the repeat.
While the adapter is not receiving (starting or stopping) the answer is 503 for the same reason.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from telegram import Bot, Update

from adapters.telegram.config import SECRET_HEADER

log = logging.getLogger(__name__)


class WebhookReceiver:
    """The aiohttp handler of the webhook route."""

    def __init__(
        self,
        secret: str,
        bot: Callable[[], Awaitable[Bot]],
        handle: Callable[[Update], Awaitable[None]],
        receiving: Callable[[], bool],
    ) -> None:
        self._secret = secret.encode()
        self._bot = bot
        self._handle = handle
        self._receiving = receiving

    def authentic(self, request: web.Request) -> bool:
        given = request.headers.get(SECRET_HEADER, "").encode()
        return hmac.compare_digest(given, self._secret)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.authentic(request):
            log.warning("webhook request without the right secret from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        if not self._receiving():
            return web.Response(status=503, text="not receiving", headers={"Retry-After": "5"})
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.Response(status=400, text="not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="not an update")
        try:
            update = Update.de_json(data, await self._bot())
        except (KeyError, TypeError, ValueError) as error:
            log.warning("webhook update %s could not be read: %s", data.get("update_id"), error)
            return web.Response(status=200, text="ignored")  # redelivering it would not help
        await self._handle(update)
        return web.Response(status=200, text="ok")
