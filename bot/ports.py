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


class DeliveryFailed(Exception):
    """A reply port could not hand the answer to the platform; `permanent` says whether to try again.

    Transient (`permanent` False): the platform is down, slow or rate-limiting (5xx, 429, a
    timeout, a refused or dropped connection). The worker keeps the finished answer in the queue
    and tries again later, after `retry_after_s` when the platform named a wait. Permanent: the
    platform refused this answer for good (the bot was blocked or removed, the chat is gone, the
    request itself is bad); the job ends at once with a refund. `reason` is short and safe to log
    and to keep in a dead letter: a platform error code or an exception's class, never content.
    """

    def __init__(self, reason: str, *, permanent: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after_s = retry_after_s


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
        A port that does not call it is treated as accepted once `deliver` returns.

        Raises `DeliveryFailed` when the platform did not take the answer, saying whether trying
        again later may help. Any other exception is a bug and ends the job like a permanent refusal.
        """
        ...


def uses_prepared_image(port: ReplyPort) -> bool:
    """Whether `port` shows `AnalysisReply.prepared` (the web page does; chats only send the drawing).

    An answer waiting in the queue for a platform to come back keeps only what its port shows:
    the prepared JPEG doubles the stored size, so it is dropped for ports that never read it.
    """
    return bool(getattr(port, "USES_PREPARED_IMAGE", False))
