"""Delivering a finished analysis (or failure) to Telegram: the annotated image and the summary.

The image goes as a photo when Telegram accepts one (10 MB, width + height <= 10000), else as a
document; the summary rides as its caption, and what does not fit the caption's 1024 characters
follows in messages of up to 4096, each a reply to the photo. Should Telegram still refuse the
markup (a bug of ours), the plain-text rendering goes instead, so the user gets an answer.

A failed send raises `bot.ports.DeliveryFailed` (see `limits.delivery_failure`): the user most
likely saw nothing, and the worker keeps the answer for a later try or, when Telegram refused it
for good, ends the job with a refund. Once the image is out, a failed follow-up message is
logged, not raised: the user has the answer.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import Bot, InputFile, Message
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError

from adapters.telegram.albums import ReplyOrder
from adapters.telegram.feedback import BotProvider, ChatActivity, Target, send_action
from adapters.telegram.limits import delivery_failure, fits_as_photo
from adapters.telegram.questions import keep_photo
from adapters.telegram.render import CAPTION_LIMIT, MESSAGE_LIMIT, render_answer, split_plain
from bot.photo_requests import AnalysisReply, Outcome
from bot.ports import Accepted
from bot.presentation import Notice, PhotoAnswer, present
from bot.questions import QuestionService
from core.summary_text import render_text

log = logging.getLogger(__name__)

FILE_NAME = "photodetective.jpg"
_PHOTO_REFUSALS = ("photo_invalid_dimensions", "photo_too_big", "image_process_failed", "too big")


def wants_file_tip(answer: PhotoAnswer, target: Target) -> bool:
    """A compressed photo with no EXIF left: tell the user a file would keep camera and location."""
    return target.compressed and answer.exif_empty


class TelegramReplies:
    """`bot.ports.ReplyPort` for Telegram."""

    def __init__(
        self,
        bot: BotProvider,
        order: ReplyOrder,
        activity: ChatActivity,
        questions: QuestionService | None = None,
    ) -> None:
        self._bot = bot
        self.order = order
        self.activity = activity
        self.questions = questions  # keeps each answered photo for questions in reply to it
        # An answer waiting for the platform keeps the prepared image too, so its photo can be kept
        # for questions when it is finally delivered (see bot.ports.uses_prepared_image).
        self.USES_PREPARED_IMAGE = questions is not None

    async def deliver(self, outcome: Outcome, accepted: Accepted) -> None:
        target = Target.from_request(outcome.request)
        try:
            async with self.order.turn(target.album_key, target.message_id):
                reply = present(outcome)
                if isinstance(reply, PhotoAnswer):
                    prepared = outcome.prepared if isinstance(outcome, AnalysisReply) else None
                    await self._analysis(reply, target, accepted, prepared.jpeg if prepared else None)
                else:
                    await self._failure(reply, target, accepted)
        except TelegramError as error:
            raise delivery_failure(error) from error
        finally:
            self.activity.end(target.chat_id, outcome.request.idempotency_key)

    async def _failure(self, notice: Notice, target: Target, accepted: Accepted) -> None:
        bot = await self._bot()
        for chunk in split_plain(notice.text):
            await bot.send_message(
                chat_id=target.chat_id,
                text=chunk,
                reply_parameters=target.reply,
                message_thread_id=target.thread_id,
            )
            await accepted()

    async def _analysis(
        self, reply: PhotoAnswer, target: Target, accepted: Accepted, keep: bytes | None = None
    ) -> None:
        bot = await self._bot()
        chunks = render_answer(reply, compressed_tip=wants_file_tip(reply, target))
        image = reply.image
        as_photo = fits_as_photo(len(image.jpeg), image.width, image.height)
        await send_action(
            self._bot, target, ChatAction.UPLOAD_PHOTO if as_photo else ChatAction.UPLOAD_DOCUMENT
        )
        parse_mode: str | None = ParseMode.HTML
        try:
            sent = await self._image(bot, reply, target, chunks[0], parse_mode, as_photo)
        except BadRequest as error:
            if "can't parse entities" not in str(error).lower():
                raise
            log.error("Telegram refused our HTML (%s); sending the plain-text summary instead", error)
            chunks = split_plain(render_text(reply.summary), CAPTION_LIMIT, MESSAGE_LIMIT)
            parse_mode = None
            sent = await self._image(bot, reply, target, chunks[0], parse_mode, as_photo)
        await accepted()  # the photo is out: a worker dying during the follow-ups must not resend it
        await keep_photo(self.questions, keep, target.chat_id, sent.message_id)
        follow_up = replace(target, message_id=sent.message_id)
        for chunk in chunks[1:]:
            try:
                await bot.send_message(
                    chat_id=target.chat_id,
                    text=chunk,
                    parse_mode=parse_mode,
                    reply_parameters=follow_up.reply,
                    message_thread_id=target.thread_id,
                )
            except TelegramError as error:
                log.warning("rest of the summary for chat %s not sent: %s", target.chat_id, error)
                return

    async def _image(
        self,
        bot: Bot,
        reply: PhotoAnswer,
        target: Target,
        caption: str,
        parse_mode: str | None,
        as_photo: bool,
    ) -> Message:
        """Send the annotated image as a photo, falling back to a document when Telegram refuses the photo."""
        if as_photo:
            try:
                return await bot.send_photo(
                    chat_id=target.chat_id,
                    photo=InputFile(reply.image.jpeg, filename=FILE_NAME),
                    caption=caption,
                    parse_mode=parse_mode,
                    reply_parameters=target.reply,
                    message_thread_id=target.thread_id,
                )
            except BadRequest as error:
                if not any(word in str(error).lower() for word in _PHOTO_REFUSALS):
                    raise
                log.info("Telegram refused the image as a photo (%s); sending it as a file", error)
        return await bot.send_document(
            chat_id=target.chat_id,
            document=InputFile(reply.image.jpeg, filename=FILE_NAME),
            caption=caption,
            parse_mode=parse_mode,
            reply_parameters=target.reply,
            message_thread_id=target.thread_id,
        )
