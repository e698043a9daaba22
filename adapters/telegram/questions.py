"""Questions about an answered photo in Telegram: the user replies to the bot's answer with a question.

The answer's image message is where the photo is kept (`keep_photo`, called by the replies once
Telegram holds it): a reply to that message is a question about that photo. Telegram hands a bot
replies to its own messages even in groups where it sees nothing else (privacy mode), so the
question works there too. The answer is a reply to the question: the model's words escaped and
shown as code, like the caption, so nothing in them becomes a link or a mention.
"""

from __future__ import annotations

import contextlib
import html
import logging

from telegram import Message, ReplyParameters, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes, filters

from bot.questions import Question, QuestionService, photo_key

log = logging.getLogger(__name__)

PLATFORM = "telegram"


def bot_id_of(token: str) -> int:
    """The bot's own user id: the number before the colon of its token (Telegram's token format)."""
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else 0


def telegram_photo_key(chat_id: int, message_id: int) -> str:
    """The key a photo is kept under: the chat and the bot's answer message showing it."""
    return photo_key(PLATFORM, "", str(chat_id), str(message_id))


async def keep_photo(
    questions: QuestionService | None, jpeg: bytes | None, chat_id: int, message_id: int
) -> None:
    """Keep the prepared photo for questions in reply to `message_id`; a failure only costs questions."""
    if questions is None or jpeg is None:
        return
    try:
        await questions.keep(telegram_photo_key(chat_id, message_id), jpeg)
    except Exception as error:  # the answer is out; a store hiccup must not turn it into a failure
        log.warning("photo not kept for questions in chat %s: %s", chat_id, type(error).__name__)


class RepliesToBot(filters.MessageFilter):
    """Text messages (not commands) replying to an image this bot sent: an answer's annotated photo.

    Replies to the bot's text messages (/help, a notice) are left to the other handlers.
    """

    def __init__(self, bot_id: int) -> None:
        super().__init__(name="RepliesToBot")
        self.bot_id = bot_id

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        return bool(
            message.text
            and not message.text.startswith("/")
            and replied is not None
            and replied.from_user is not None
            and replied.from_user.id == self.bot_id
            and bool(replied.photo or replied.document)
        )


class QuestionIntake:
    """The handler for questions: asks the service and replies to the question."""

    def __init__(self, questions: QuestionService) -> None:
        self.questions = questions

    async def on_question(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None or message.reply_to_message is None or not message.text:
            return
        chat_id = message.chat_id
        question = Question(
            platform=PLATFORM,
            user_id=str(user.id),
            chat_id=str(chat_id),
            message_id=str(message.message_id),
            photo=telegram_photo_key(chat_id, message.reply_to_message.message_id),
            text=message.text,
        )
        with contextlib.suppress(TelegramError):  # "typing..." is only a courtesy
            await context.bot.send_chat_action(
                chat_id, ChatAction.TYPING, message_thread_id=message.message_thread_id
            )
        reply = await self.questions.ask(question)
        text = f"<code>{html.escape(reply.text)}</code>" if reply.answered else html.escape(reply.text)
        await context.bot.send_message(
            chat_id,
            text,
            parse_mode=ParseMode.HTML,
            reply_parameters=ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True),
            message_thread_id=message.message_thread_id,
        )
