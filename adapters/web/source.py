"""The web page's photo source: the upload stored by the intake, read back by the worker.

The intake keeps the uploaded bytes in the result store (not in the queue's payload), so a job
survives a restart and any replica's worker can fetch it. Fetching also marks the result as
being analysed, which the page shows.
"""

from __future__ import annotations

from dataclasses import replace

from adapters.web.replies import WebTarget
from adapters.web.store import WebStore
from bot.notices import file_too_large
from bot.photo_requests import FileRef, PhotoRequest
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
        data = await self.store.blob(target.result_id, "upload")
        if data is None:
            raise PhotoRejected("file_gone", GONE)
        if len(data) > max_bytes:
            raise file_too_large(len(data), max_bytes)
        result = await self.store.result(target.result_id)
        if result is not None and result.status == "queued":
            await self.store.update(replace(result, status="analysing"))
        return data
