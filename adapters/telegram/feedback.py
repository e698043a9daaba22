"""What the user sees while a photo waits: "sending photo..." in the chat, a short note, or a refusal.

All of it is best effort and runs in background tasks, so an update is acknowledged to Telegram
as soon as its job is stored, however slowly these messages go out under flood control. Within
an album it is said once: one chat action, one "queued" note, one refusal per reason, instead of
one per photo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import Bot, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.photo_requests import JsonScalar, PhotoRequest

log = logging.getLogger(__name__)

BotProvider = Callable[[], Awaitable[Bot]]


@dataclass(frozen=True)
class Target:
    """Where a Telegram answer goes (the adapter's `bot.photo_requests.ReplyTarget`).

    The chat, the message it replies to, the forum topic if any, the album it belongs to, and how
    the photo came (`source`: "photo" when Telegram compressed it, "document" for a file).
    """

    chat_id: int
    message_id: int
    thread_id: int | None = None
    album: str | None = None
    private: bool = True
    source: str | None = None

    @property
    def reply(self) -> ReplyParameters:
        """Reply to the user's message, and still answer if they deleted it meanwhile."""
        return ReplyParameters(message_id=self.message_id, allow_sending_without_reply=True)

    @property
    def album_key(self) -> tuple[int, str] | None:
        return None if self.album is None else (self.chat_id, self.album)

    @property
    def compressed(self) -> bool:
        """Telegram recompressed the photo (sent as a photo, not a file): its EXIF is gone."""
        return self.source == "photo"

    def to_reply_to(self) -> dict[str, JsonScalar]:
        """The `PhotoRequest.reply_to` mapping (stored in the queue, read back by `from_request`).

        `private` is not stored here: the request carries it for every platform.
        """
        return {
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "thread_id": self.thread_id,
            "album": self.album,
            "source": self.source,
        }

    @classmethod
    def from_request(cls, request: PhotoRequest) -> Target:
        """Read the target back; older payloads may lack keys, so the request's own ids fill in."""
        reply_to = request.reply_to
        chat = reply_to.get("chat_id")
        message = reply_to.get("message_id")
        thread = reply_to.get("thread_id")
        album = reply_to.get("album")
        source = reply_to.get("source")
        return cls(
            chat_id=int(chat) if chat is not None else int(request.chat_id),
            message_id=int(message) if message is not None else int(request.message_id),
            thread_id=int(thread) if thread is not None else None,
            album=str(album) if album is not None else None,
            private=request.private,
            source=str(source) if source is not None else None,
        )


class ChatActivity:
    """Shows "sending photo..." in a private chat while its photos are accepted but not answered yet.

    Telegram shows a chat action for 5 seconds, so it is repeated every `interval_s` until the
    reply to each photo has started (`reply_started`, asked of the queue, so it also stops when a
    worker in another process answers), at most `max_s`. A chat action the Bot API refuses or
    fails ends the repetition for that chat: it is decoration, and during an outage repeating it
    for every waiting chat only adds load to a platform that is already failing (a 10-minute soak
    outage saw 1,700 of them).
    """

    def __init__(
        self,
        bot: BotProvider,
        reply_started: Callable[[str], Awaitable[bool]] | None = None,
        *,
        interval_s: float = 4.5,
        max_s: float = 120.0,
    ) -> None:
        self.bot = bot
        self.reply_started = reply_started
        self.interval_s = interval_s
        self.max_s = max_s
        self._pending: dict[int, dict[str, str]] = {}  # chat -> request key -> job id
        self._tasks: set[asyncio.Task[None]] = set()

    def begin(self, target: Target, key: str, job_id: str) -> None:
        """A photo of this chat was accepted as job `job_id`; `key` is its request's idempotency key."""
        jobs = self._pending.setdefault(target.chat_id, {})
        first = not jobs
        jobs[key] = job_id
        if first:
            task = asyncio.create_task(self._show(target))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def end(self, chat_id: int, key: str) -> None:
        """The reply to this request is going out from this process."""
        jobs = self._pending.get(chat_id)
        if jobs is not None:
            jobs.pop(key, None)

    async def stop(self) -> None:
        """Stop showing actions (shutdown); nothing is lost, they are decoration."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _still_waiting(self, chat_id: int) -> bool:
        jobs = self._pending.get(chat_id, {})
        if self.reply_started is not None:
            for key, job_id in list(jobs.items()):
                try:
                    if await self.reply_started(job_id):
                        jobs.pop(key, None)
                except Exception as error:  # the queue is unreachable: keep showing, up to max_s
                    log.debug("reply_started(%s) failed: %s", job_id, error)
        return bool(jobs)

    async def _show(self, target: Target) -> None:
        deadline = time.monotonic() + self.max_s
        try:
            while True:
                if not await send_action(self.bot, target, ChatAction.UPLOAD_PHOTO):
                    return
                await asyncio.sleep(self.interval_s)
                if not await self._still_waiting(target.chat_id) or time.monotonic() > deadline:
                    return
        finally:
            self._pending.pop(target.chat_id, None)


async def send_action(bot: BotProvider, target: Target, action: str) -> bool:
    """Send a chat action; it is decoration, so a failure is only logged (and returns False)."""
    try:
        await (await bot()).send_chat_action(
            chat_id=target.chat_id, action=action, message_thread_id=target.thread_id
        )
    except TelegramError as error:
        log.debug("chat action in %s failed: %s", target.chat_id, error)
        return False
    return True


class Feedback:
    """Short replies sent in the background, at most once per album and kind."""

    def __init__(
        self,
        bot: BotProvider,
        reply_started: Callable[[str], Awaitable[bool]] | None = None,
        *,
        album_window_s: float = 120.0,
    ) -> None:
        self.bot = bot
        self.album_window_s = album_window_s
        self.tasks: set[asyncio.Task[object]] = set()
        self.activity = ChatActivity(bot, reply_started)
        self._said: dict[tuple[int, str, str], float] = {}

    def spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("feedback message failed: %r", task.exception())

    def first_in_album(self, target: Target, kind: str) -> bool:
        """True unless this album already got a message of this kind (always True outside albums)."""
        if target.album is None:
            return True
        now = time.monotonic()
        for key in [k for k, at in self._said.items() if now - at > self.album_window_s]:
            del self._said[key]
        key = (target.chat_id, target.album, kind)
        if key in self._said:
            return False
        self._said[key] = now
        return True

    def working(self, target: Target, key: str, job_id: str, note: str | None) -> None:
        """A photo was accepted: show the chat action and, when it has to wait, say so once.

        In groups the action is shown once per album and not repeated: chat actions there
        would add to a busy group's traffic for little.
        """
        if target.private:
            self.activity.begin(target, key, job_id)
        elif self.first_in_album(target, "action"):
            self.spawn(send_action(self.bot, target, ChatAction.UPLOAD_PHOTO))
        if note and self.first_in_album(target, "queued"):
            self.say(target, note)

    def refuse(self, target: Target, reason: str, message: str) -> None:
        """A photo was not accepted: say why, once per album and reason."""
        if self.first_in_album(target, f"refused:{reason}"):
            self.say(target, message)

    def say(self, target: Target, message: str) -> None:
        self.spawn(self._say(target, message))

    async def _say(self, target: Target, message: str) -> None:
        try:
            await (await self.bot()).send_message(
                chat_id=target.chat_id,
                text=message,
                reply_parameters=target.reply,
                message_thread_id=target.thread_id,
            )
        except TelegramError as error:
            log.warning("could not tell chat %s: %s", target.chat_id, error)

    async def drain(self, timeout_s: float) -> None:
        """Let messages already on their way go out (at shutdown), then cancel what remains."""
        await self.activity.stop()
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=timeout_s)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
