"""Reading an upload's body: photos one at a time, each capped, and a body that stalls is dropped.

A client decides how fast its body arrives. Without a limit, one that declares 20 MB and sends
nothing holds its request (and the account's and address's upload slots) for as long as it
likes. So every read waits at most `upload_stall_s` for the next bytes, and all reads of one
body together at most `upload_timeout_s`; past either, the request ends with 408 and its slots
are freed. A client that closes the connection mid-body is its own doing, not a fault of ours:
it is logged as such at INFO and never reported as the store being unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from adapters.web.errors import WebError
from adapters.web.security import Session, Signer
from bot.notices import TOO_LARGE, photos, too_large_message
from core.untrusted_text import clean_text

log = logging.getLogger(__name__)

T = TypeVar("T")

UPLOAD_TIMEOUT = "upload_timeout"
UPLOAD_CUT_OFF = "upload_incomplete"
#: The connection went away under us: reset, closed early, or a body shorter than it declared.
CLIENT_GONE = (ConnectionError, HttpProcessingError, asyncio.IncompleteReadError)
CSRF_EXPIRED = "This form has expired; reload the page and try again."


@dataclass(frozen=True)
class Upload:
    """One photo of an upload form: its (cleaned) file name, declared type and bytes."""

    name: str
    mime: str | None
    data: bytes


class BodyClock:
    """The time limits of one request body: `stall_s` without a new byte, `total_s` for all of it.

    Bytes are counted on the connection (`StreamReader.total_bytes`), not per read: a read of a
    part's header lines may wait for several packets, and a client that keeps sending is not
    stalled however slowly one read completes (the overall limit still ends a trickle).
    """

    def __init__(self, request: web.Request, stall_s: float, total_s: float) -> None:
        self.content = request.content
        self.stall_s = stall_s
        self.total_s = total_s
        self._loop = asyncio.get_running_loop()
        self._ends = self._loop.time() + total_s

    async def read(self, reading: Awaitable[T]) -> T:
        """Await one read of the body within the limits; a 408 or a cut-off upload otherwise."""
        task = asyncio.ensure_future(reading)
        try:
            seen = self.content.total_bytes
            while True:
                left = self._ends - self._loop.time()
                done, _ = await asyncio.wait({task}, timeout=max(min(self.stall_s, left), 0.0))
                if done:
                    return task.result()
                if self._ends <= self._loop.time():
                    raise self._timed_out(stalled=False)
                if self.content.total_bytes == seen:
                    raise self._timed_out(stalled=True)
                seen = self.content.total_bytes
        except CLIENT_GONE as exc:
            log.info("the client closed the connection mid-upload (%s)", type(exc).__name__)
            raise WebError(
                400, UPLOAD_CUT_OFF, "The upload was cut off before it finished; please send it again."
            ) from exc
        except asyncio.CancelledError:
            # A server run with handler_cancellation cancels the handler when the client hangs up.
            if isinstance(self.content.exception(), CLIENT_GONE):
                log.info("the client closed the connection mid-upload")
            raise
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, *CLIENT_GONE):
                    await task
            elif not task.cancelled():
                task.exception()  # seen: a failed read is answered above, never "never retrieved"

    def _timed_out(self, stalled: bool) -> WebError:
        if stalled:
            log.info("an upload sent nothing for %g s; dropped", self.stall_s)
            message = (
                f"The upload stopped: nothing arrived for {self.stall_s:g} s. "
                "Please try again on a steadier connection."
            )
        else:
            log.info("an upload took more than %g s; dropped", self.total_s)
            message = (
                f"The upload took longer than {self.total_s:g} s, the most allowed. "
                "Send fewer photos at once, or try again on a faster connection."
            )
        return WebError(408, UPLOAD_TIMEOUT, message)


async def read_form(
    request: web.Request, clock: BodyClock
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """A small form (sign-out, delete) under the same limits as an upload's body."""
    return await clock.read(request.post())


async def read_photos(
    request: web.Request,
    clock: BodyClock,
    signer: Signer,
    session: Session,
    *,
    limit: int,
    max_files: int,
) -> AsyncIterator[Upload]:
    """The form's photos one at a time, each read with a cap; the CSRF token must come first.

    One photo is in memory at a time: it is stored and queued before the next is read. Only
    the page's two fields are accepted, so no other part can make us read an unbounded body.
    """
    token_ok = signer.csrf_ok(session, request.headers.get("X-CSRF-Token"))
    if not request.content_type.startswith("multipart/"):
        raise WebError(400, "bad_form", "Send the photos as a multipart/form-data form.")
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError) as exc:
        raise WebError(400, "bad_form", "That upload could not be read.") from exc
    count = 0
    while True:
        try:
            part = await clock.read(reader.next())
        except ValueError as exc:
            raise WebError(400, "bad_form", "That upload could not be read.") from exc
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or part.name not in ("csrf_token", "photo"):
            raise WebError(400, "bad_form", "That upload holds something other than photos.")
        if part.name == "csrf_token":
            token = (await read_capped(part, clock, 512, field=True)).decode("utf-8", "replace")
            token_ok = token_ok or signer.csrf_ok(session, token)
            continue
        if not token_ok:
            raise WebError(403, "csrf", CSRF_EXPIRED)
        data = await read_capped(part, clock, limit)
        if not data and not part.filename:
            continue  # the browser's empty part when no file was chosen
        count += 1
        if count > max_files:
            raise WebError(400, "too_many_photos", f"At most {photos(max_files)} at once, please.")
        name = clean_text(Path(part.filename or "photo").name, 100) or "photo"
        yield Upload(name, part.headers.get("Content-Type"), data)
    if not token_ok:
        raise WebError(403, "csrf", CSRF_EXPIRED)
    if not count:
        raise WebError(400, "no_photo", "Choose a photo to upload first.")


async def read_capped(part: BodyPartReader, clock: BodyClock, limit: int, *, field: bool = False) -> bytes:
    """A part's bytes, refused as soon as they pass `limit` (the rest is never read)."""
    chunks: list[bytes] = []
    total = 0
    while chunk := await clock.read(part.read_chunk(min(limit + 1, 256 * 1024))):
        total += len(chunk)
        if total > limit:
            if field:
                raise WebError(400, "bad_form", "That upload could not be read.")
            raise WebError(413, TOO_LARGE, too_large_message(total, limit, at_least=True))
        chunks.append(chunk)
    return b"".join(chunks)
