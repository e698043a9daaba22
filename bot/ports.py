"""The two things each platform adapter provides to the application: fetching photos and replying.

They are ports in the Cosmic Python sense: the application depends on these protocols, each
adapter implements them, and tests use fakes that record what a user would see.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.photo_requests import FileRef, Outcome, PhotoRequest


class FetchFailed(Exception):
    """The platform could not give us the photo right now (network, 5xx); worth retrying later."""


class PhotoSource(Protocol):
    async def fetch(self, request: PhotoRequest, ref: FileRef, max_bytes: int) -> bytes:
        """Download the photo, refusing (core.errors.TooLarge) past `max_bytes` before or while reading.

        Raises core.errors.PhotoRejected when the file itself is the problem and FetchFailed when
        the platform is; the worker refunds and retries only the latter.
        """
        ...


#: Called by a `ReplyPort` once the platform holds the first message of an answer.
Accepted = Callable[[], Awaitable[None]]


class ReplyPort(Protocol):
    async def deliver(self, outcome: Outcome, accepted: Accepted) -> None:
        """Show the user the result (annotated image and summary) or the friendly failure message.

        Await `accepted()` as soon as the platform has accepted the answer's first message (the
        annotated photo), before any follow-up messages: from then on the job must never answer
        again, even if this worker dies while the rest goes out (see `JobQueue.mark_reply_started`).
        It never raises; a port that does not call it is treated as accepted once `deliver` returns.
        """
        ...
