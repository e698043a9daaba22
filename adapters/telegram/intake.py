"""Turning Telegram messages into photo requests for the application, and nothing more.

Which photos are analysed: every photo or image file in a private chat; in a group, a photo whose
caption mentions the bot (or starts with /analyze), a photo someone replies /analyze to, and every
photo when the group's admins turned that on (/auto). Whatever is refused before it reaches the
service (not an image, over Telegram's 20 MB download cap) costs no quota.

`take` returns only after `PhotoService.submit` has answered, so the update that carried the
photo is confirmed to Telegram after its job is stored (see `adapters.telegram.polling`); the
messages the user sees meanwhile go out in the background (`adapters.telegram.feedback`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from adapters.telegram.albums import AskedAlbums, ReplyOrder
from adapters.telegram.feedback import Feedback, Target
from adapters.telegram.limits import MAX_DOWNLOAD_BYTES
from adapters.telegram.source import too_large
from bot.photo_requests import FileRef, PhotoRequest
from bot.service import Accepted, PhotoService

log = logging.getLogger(__name__)

PLATFORM = "telegram"

NOT_AN_IMAGE = "That file doesn't look like a photo. Send a JPEG, PNG, WebP, HEIC, TIFF, BMP or GIF image."
ANALYZE_HOW = "Reply /analyze to a photo (or to an image sent as a file) and I'll analyse it."

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff", ".bmp", ".gif", ".avif"}
)


def user_key(user_id: int | str) -> str:
    """The quota identity of a Telegram user; the same as `PhotoRequest.user_key` builds."""
    return f"{PLATFORM}:{user_id}"


def chat_key(chat_id: int | str) -> str:
    return f"{PLATFORM}:{chat_id}"


@dataclass(frozen=True)
class Media:
    """The file a message carries: a compressed photo, or a document that may or may not be an image."""

    ref: FileRef
    source: str  # "photo" | "document"
    is_image: bool


def looks_like_image(mime_type: str | None, file_name: str | None) -> bool:
    """Judge a document by its MIME type, or its name when the client sent a generic type.

    This only spares a download of what is clearly not a photo (a PDF, a ZIP); the worker
    still checks the bytes themselves.
    """
    if mime_type and mime_type.lower().startswith("image/"):
        return True
    if mime_type and mime_type.lower() not in ("application/octet-stream", "binary/octet-stream"):
        return False
    return bool(file_name) and PurePosixPath(str(file_name).lower()).suffix in IMAGE_SUFFIXES


def media_of(message: Message) -> Media | None:
    """The largest size of a photo, or the document, of a message (None when it carries neither)."""
    if message.photo:
        best = message.photo[-1]
        return Media(
            FileRef(
                file_id=best.file_id,
                size=best.file_size,
                name=f"photo-{message.message_id}.jpg",
                mime_type="image/jpeg",
            ),
            "photo",
            True,
        )
    document = message.document
    if document is not None:
        return Media(
            FileRef(
                file_id=document.file_id,
                size=document.file_size,
                name=document.file_name or f"file-{message.message_id}",
                mime_type=document.mime_type,
            ),
            "document",
            looks_like_image(document.mime_type, document.file_name),
        )
    return None


def sender_id(message: Message) -> int | None:
    """Who sent the message: the user, or the chat for anonymous group admins and channels."""
    if message.sender_chat is not None:
        return message.sender_chat.id
    return message.from_user.id if message.from_user is not None else None


def mentions_bot(message: Message, username: str, bot_id: int) -> bool:
    """Whether the caption (or text) names the bot: "@username", or a mention by name."""
    wanted = f"@{username}".casefold()
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = {**message.parse_caption_entities(kinds), **message.parse_entities(kinds)}
    for entity, value in found.items():
        if entity.type == MessageEntity.MENTION and value.casefold() == wanted:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot_id:
            return True
    return False


def caption_asks(message: Message, username: str) -> bool:
    """A caption that starts with /analyze (or /analyze@thisbot) asks for the analysis too."""
    caption = (message.caption or "").strip()
    if not caption.startswith("/"):
        return False
    command = caption.split(maxsplit=1)[0][1:]
    name, _, bot = command.partition("@")
    return name.casefold() == "analyze" and (not bot or bot.casefold() == username.casefold())


class PhotoIntake:
    """Handlers for photos, image files and /analyze."""

    def __init__(
        self, service: PhotoService, feedback: Feedback, order: ReplyOrder, albums: AskedAlbums[Message]
    ) -> None:
        self.service = service
        self.feedback = feedback
        self.order = order
        self.albums = albums

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo or a file arrived: analyse it in a private chat, in a group only when asked."""
        message = update.message
        if message is None or (message.from_user is not None and message.from_user.is_bot):
            return
        media = media_of(message)
        if media is None:
            return
        chat = message.chat
        if chat.type == ChatType.PRIVATE:
            await self.take(message, media, requester=message, explicit=True)
            return
        bot = context.bot
        asked = mentions_bot(message, bot.username, bot.id) or caption_asks(message, bot.username)
        every = not asked and bool(await self.service.analyses_every_photo(chat_key(chat.id)))
        if message.media_group_id is None:
            ready = [message] if asked or every else []
        else:
            # One mention covers the album; its photos may come before or after the captioned one.
            ready = self.albums.observe(
                (chat.id, message.media_group_id), message.message_id, message, asked=asked or every
            )
        for photo in ready:
            found = media_of(photo)
            if found is not None:
                await self.take(photo, found, requester=photo, explicit=asked)

    async def on_analyze(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/analyze in reply to a photo: analyse that photo for whoever asked."""
        message = update.message
        if message is None:
            return
        photo = message.reply_to_message
        media = media_of(photo) if photo is not None else None
        if photo is None or media is None:
            target = Target(message.chat_id, message.message_id, _thread(message))
            self.feedback.say(target, ANALYZE_HOW)
            return
        await self.take(photo, media, requester=message, explicit=True, album=False)

    async def take(
        self, photo: Message, media: Media, *, requester: Message, explicit: bool, album: bool = True
    ) -> None:
        """Submit one photo, and tell the user what happens next (in the background).

        `requester` is the message that asked (the photo itself, or an /analyze reply to it): its
        chat and id name the request, so a redelivered update makes no second job, and the answer
        replies to it. `explicit`: the user asked for this photo, so a non-image is worth a reply.
        """
        chat = requester.chat
        private = chat.type == ChatType.PRIVATE
        target = Target(
            chat_id=chat.id,
            message_id=requester.message_id,
            thread_id=_thread(requester),
            album=photo.media_group_id if album else None,
            private=private,
        )
        if not media.is_image:
            if explicit:
                self.feedback.refuse(target, "not_image", NOT_AN_IMAGE)
            return
        if media.ref.size is not None and media.ref.size > MAX_DOWNLOAD_BYTES:
            refusal = too_large(media.ref.size, MAX_DOWNLOAD_BYTES)
            self.feedback.refuse(target, refusal.reason, str(refusal))
            return
        sender = sender_id(requester)
        if sender is None:
            return
        request = PhotoRequest(
            platform=PLATFORM,
            user_id=str(sender),
            chat_id=str(chat.id),
            message_id=str(requester.message_id),
            file=media.ref,
            features=await self.service.features_for(user_key(sender)),
            reply_to=replace(target, source=media.source).to_reply_to(),
            private=private,
        )
        verdict = await self.service.submit(request)
        if isinstance(verdict, Accepted):
            if target.album_key is not None:
                self.order.expect(target.album_key, target.message_id)
            if not verdict.duplicate:
                note = verdict.message if verdict.ahead else None
                self.feedback.working(target, request.idempotency_key, verdict.job_id, note)
            log.info("chat %s message %s: job %s", chat.id, requester.message_id, verdict.job_id)
        else:
            self.feedback.refuse(target, verdict.reason, verdict.message)
            log.info("chat %s message %s: refused (%s)", chat.id, requester.message_id, verdict.reason)


def _thread(message: Message) -> int | None:
    """The forum topic to answer in (None outside topics)."""
    return message.message_thread_id if message.is_topic_message else None
