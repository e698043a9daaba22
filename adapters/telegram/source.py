"""Fetching a photo from Telegram: getFile, then a download from the file server.

Telegram lets bots download at most 20 MB, and says how big a file is in the update and again in
getFile's answer; both are checked before a byte is downloaded. (The Bot API's download is one
plain GET that python-telegram-bot reads whole, which is why the checks come first; the length is
checked once more after reading.)
"""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import BadRequest, Forbidden, TelegramError

from adapters.telegram.feedback import BotProvider
from adapters.telegram.limits import MAX_DOWNLOAD_BYTES
from bot.notices import TOO_LARGE, file_too_large, megabytes
from bot.photo_requests import FileRef, PhotoRequest
from bot.ports import FetchFailed
from core.errors import PhotoRejected, TooLarge

log = logging.getLogger(__name__)

GONE = "Telegram no longer has that file, so I couldn't analyse it. Please send it again."


def too_large(size: int, limit: int) -> TooLarge:
    """The refusal for a file over `limit` bytes, naming Telegram's own cap when that is the one hit."""
    if limit >= MAX_DOWNLOAD_BYTES:
        return TooLarge(
            TOO_LARGE,
            f"That file is {megabytes(size)} MB, but Telegram lets bots download at most 20 MB. "
            "Please send a smaller version.",
        )
    return file_too_large(size, limit)


class TelegramSource:
    """`bot.ports.PhotoSource` for Telegram: refuses oversize files before downloading them."""

    def __init__(self, bot: BotProvider) -> None:
        self._bot = bot

    async def fetch(self, request: PhotoRequest, ref: FileRef, max_bytes: int) -> bytes:
        limit = min(max_bytes, MAX_DOWNLOAD_BYTES)
        if ref.size is not None and ref.size > limit:
            raise too_large(ref.size, limit)
        try:
            bot: Bot = await self._bot()
            file = await bot.get_file(ref.file_id)
        except BadRequest as error:
            if "too big" in str(error).lower():
                raise too_large(ref.size or limit + 1, limit) from error
            log.info("getFile refused %s: %s", ref.file_id, error)
            raise PhotoRejected("file_gone", GONE) from error
        except Forbidden as error:
            raise PhotoRejected("file_gone", GONE) from error
        except TelegramError as error:  # network, timeouts, 429 after retries, 5xx
            raise FetchFailed(f"getFile: {error}") from error
        if file.file_size is not None and file.file_size > limit:
            raise too_large(file.file_size, limit)
        try:
            data = bytes(await file.download_as_bytearray())
        except TelegramError as error:
            raise FetchFailed(f"download: {error}") from error
        if len(data) > limit:
            raise too_large(len(data), limit)
        return data
