"""The two things each platform adapter provides to the application: fetching photos and replying.

They are ports in the Cosmic Python sense: the application depends on these protocols, each
adapter implements them, and tests use fakes that record what a user would see.
"""

from __future__ import annotations

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


class ReplyPort(Protocol):
    async def deliver(self, outcome: Outcome) -> None:
        """Show the user the result (annotated image and summary) or the friendly failure message."""
        ...
