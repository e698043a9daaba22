"""The web page's photo source: the upload stored by the intake, read back by the worker.

The intake keeps the uploaded bytes in the result store (not in the queue's payload), so a job
survives a restart and any replica's worker can fetch it. Fetching also marks the result as
being analysed, which the page shows.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import replace

from redis.exceptions import RedisError

from adapters.web.replies import WebTarget
from adapters.web.store import WebStore
from bot.notices import file_too_large
from bot.photo_requests import FileRef, PhotoRequest
from bot.ports import FetchFailed
from core.errors import PhotoRejected

GONE = "That photo was deleted before it could be analysed."


class WebPhotoSource:
    """`bot.ports.PhotoSource` for the web page."""

    def __init__(self, store: WebStore) -> None:
        self.store = store

    async def fetch(self, request: PhotoRequest, ref: FileRef, max_bytes: int) -> bytes:
        if ref.size is not None and ref.size > max_bytes:
            raise file_too_large(ref.size, max_bytes)
        target = WebTarget.from_reply_to(request.reply_to)
        try:
            data = await self.store.blob(target.result_id, "upload")
        except (sqlite3.Error, RedisError, OSError) as exc:
            raise FetchFailed(f"web store: {type(exc).__name__}: {exc}") from exc
        if data is None:
            raise PhotoRejected("file_gone", GONE)
        if len(data) > max_bytes:
            raise file_too_large(len(data), max_bytes)
        with contextlib.suppress(sqlite3.Error, RedisError, OSError):  # only the page's status word
            result = await self.store.result(target.result_id)
            if result is not None and result.status == "queued":
                await self.store.update(replace(result, status="analysing"))
        return data
