"""Albums: Telegram sends each photo of an album as its own message sharing a `media_group_id`.

Two things follow. In a group, the caption that mentions the bot sits on one photo only (the
first), yet the user means the whole album: `AskedAlbums` remembers which albums the bot was
asked about, and keeps the album's other photos for a short while in case the mention comes
later. And the replies must come in the album's order even though workers finish photos in any
order: `ReplyOrder` holds a reply back until the replies to the album's earlier photos are out.

Both live in memory, in the process that receives the updates and (with `photodetective run`)
also works on the jobs. With workers in other processes the order is best effort: a reply waits
at most `wait_s` for its predecessors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

M = TypeVar("M")

AlbumKey = tuple[int, str]


@dataclass
class _Asked(Generic[M]):
    seen_at: float
    asked: bool = False
    waiting: list[tuple[int, M]] = field(default_factory=list)


class AskedAlbums(Generic[M]):
    """Which group albums the bot was asked to analyse, and their photos seen before the ask."""

    def __init__(
        self, window_s: float = 120.0, max_waiting: int = 10, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.max_waiting = max_waiting
        self.clock = clock
        self._albums: dict[AlbumKey, _Asked[M]] = {}

    def observe(self, key: AlbumKey, message_id: int, message: M, *, asked: bool) -> list[M]:
        """The album's messages to analyse now, in album order (none when nobody asked yet).

        Synchronous on purpose: handlers of one album's photos may interleave at any await, and
        a photo must be either kept or handed out, never lost in between.
        """
        now = self.clock()
        self._forget_older_than(now - self.window_s)
        album = self._albums.setdefault(key, _Asked[M](now))
        if album.asked:
            return [message]
        if not asked:
            if len(album.waiting) < self.max_waiting:
                album.waiting.append((message_id, message))
            return []
        album.asked = True
        ready = sorted([*album.waiting, (message_id, message)], key=lambda pair: pair[0])
        album.waiting.clear()
        return [m for _, m in ready]

    def _forget_older_than(self, limit: float) -> None:
        for key in [k for k, a in self._albums.items() if a.seen_at < limit]:
            del self._albums[key]


@dataclass
class _Pending:
    created: float
    ids: set[int] = field(default_factory=set)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


class ReplyOrder:
    """Replies to one album go out in message order: a reply waits for the album's earlier photos.

    `expect` is called when a photo of an album is accepted; `turn` wraps the delivery of its
    reply (analysis or failure alike). A reply whose predecessors are not answered within
    `wait_s` (their job is retried, or answered by another process) goes out anyway.
    """

    def __init__(self, wait_s: float = 20.0, forget_s: float = 600.0) -> None:
        self.wait_s = wait_s
        self.forget_s = forget_s
        self._albums: dict[AlbumKey, _Pending] = {}

    def expect(self, key: AlbumKey, message_id: int) -> None:
        now = time.monotonic()
        for old in [k for k, p in self._albums.items() if now - p.created > self.forget_s]:
            del self._albums[old]
        self._albums.setdefault(key, _Pending(now)).ids.add(message_id)

    @contextlib.asynccontextmanager
    async def turn(self, key: AlbumKey | None, message_id: int) -> AsyncIterator[None]:
        pending = self._albums.get(key) if key is not None else None
        if pending is None or key is None:
            yield
            return
        async with pending.changed:
            try:
                await asyncio.wait_for(
                    pending.changed.wait_for(lambda: not any(i < message_id for i in pending.ids)),
                    self.wait_s,
                )
            except TimeoutError:
                log.info("album %s: replying to %d before earlier photos were answered", key, message_id)
        try:
            yield
        finally:
            async with pending.changed:
                pending.ids.discard(message_id)
                pending.changed.notify_all()
            if not pending.ids and self._albums.get(key) is pending:
                del self._albums[key]
