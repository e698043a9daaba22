"""Long polling that confirms an update to Telegram only after it was handled.

Telegram keeps an update until a later getUpdates call carries an `offset` above its id. The
stock `telegram.ext.Updater` raises the offset as soon as updates are *queued* in memory, so a
crash before the handler ran loses them. Here updates are handled one after another, inside the
loop, and the offset moves past an update only once its handler has returned, which for a photo
means `PhotoService.submit` stored the job (or refused it). A crash at any point before that makes
Telegram deliver the update again; the service recognises the same chat and message and makes no
second job.

Handling sequentially costs little: a handler only submits (a few milliseconds on SQLite or
Redis), and the messages the user sees meanwhile are sent in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError, TimedOut

from adapters.telegram.limits import retry_after_seconds
from bot.settings import ENV_PREFIX

log = logging.getLogger(__name__)

Handle = Callable[[Update], Awaitable[None]]

#: The last getUpdates at a stop only confirms; a Bot API slow or asking to back off must not hold
#: the stop up (the unconfirmed updates come again, and the service knows them).
CONFIRM_TIMEOUT_S = 2.0


class Poller:
    """getUpdates in a loop; `offset` is the id of the first update not yet handled."""

    def __init__(
        self,
        bot: Bot,
        handle: Handle,
        *,
        timeout_s: int,
        allowed_updates: Sequence[str],
        max_backoff_s: float = 30.0,
    ) -> None:
        self.bot = bot
        self.handle = handle
        self.timeout_s = timeout_s
        self.allowed_updates = list(allowed_updates)
        self.max_backoff_s = max_backoff_s
        self.offset: int | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Remove any webhook (Telegram refuses getUpdates while one is set) and start polling."""
        await self.bot.delete_webhook(drop_pending_updates=False)
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="telegram-polling")

    async def stop(self) -> None:
        """Finish the update being handled, then confirm what was handled and stop.

        An open long poll, and a back-off pause, are abandoned: updates a poll might have returned
        were not confirmed, so Telegram hands them out again at the next start.
        """
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self.offset is not None:
            try:
                await asyncio.wait_for(
                    self.bot.get_updates(offset=self.offset, limit=1, timeout=0), CONFIRM_TIMEOUT_S
                )
            except TimeoutError:
                log.info("could not confirm the last updates in time (they will come again)")
            except TelegramError as error:
                log.info("could not confirm the last updates (they will come again): %s", error)

    async def cancel(self) -> None:
        """Stop at once (close without stop): an update being handled is redelivered later."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _fetch(self) -> list[Update] | None:
        """One long poll; None when asked to stop while it was open."""
        fetch = asyncio.create_task(
            self.bot.get_updates(
                offset=self.offset, timeout=self.timeout_s, allowed_updates=self.allowed_updates
            )
        )
        stop = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await fetch
            return None
        return list(fetch.result())

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                updates = await self._fetch()
            except RetryAfter as error:
                await self._pause(retry_after_seconds(error))
                continue
            except TimedOut:
                continue
            except InvalidToken:
                log.error(
                    "Telegram rejected the bot token; polling stopped (check %sTELEGRAM_TOKEN)", ENV_PREFIX
                )
                return
            except Conflict as error:
                log.warning("another instance is polling with this token, or a webhook is set: %s", error)
                await self._pause(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            except TelegramError as error:
                log.warning("getUpdates failed, retrying in %.0f s: %s", backoff, error)
                await self._pause(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            if updates is None:
                return
            backoff = 1.0
            for update in updates:
                if self._stopping.is_set():
                    return  # not handled, not confirmed: delivered again next time
                try:
                    await self.handle(update)
                except Exception:
                    # A handler bug must not stall the bot on one poisoned update forever.
                    log.exception("update %s could not be handled; skipping it", update.update_id)
                self.offset = update.update_id + 1
