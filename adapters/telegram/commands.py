"""The bot's commands: help, quota, privacy, per-user analyses, the group switch and admin tools.

Every answer is short, and every value that did not come from us (a user's argument) is escaped
before it goes into HTML. The admin commands only call the application layer (`PhotoService`), the
same functions the `photodetective quota` CLI uses, and their texts come from `bot.notices`.
"""

from __future__ import annotations

import html
import logging
import time

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from adapters.telegram.config import TelegramConfig
from adapters.telegram.intake import chat_key, sender_id, user_key
from bot.notices import photos, plain_text, queue_report, quota_report, stats_report, usage_line
from bot.questions import privacy_lines
from bot.queue.base import DEFAULT_RETENTION_S
from bot.service import PhotoService
from bot.settings import parse_features
from core.analysis_types import Feature
from core.summary import feature_name

log = logging.getLogger(__name__)

ADMINS_ONLY = "That command is for the bot's admins."
GROUP_ADMINS_ONLY = "Only the group's admins can change this."
FEATURES_PREFIX = "features:"

PUBLIC_COMMANDS = (
    BotCommand("help", "What this bot does"),
    BotCommand("analyze", "Reply to a photo to analyse it"),
    BotCommand("features", "Choose the analyses run on your photos"),
    BotCommand("quota", "Photos left today"),
    BotCommand("privacy", "What is kept, and for how long"),
    BotCommand("auto", "Groups: analyse every photo (admins)"),
)


def ordered(features: frozenset[Feature]) -> list[Feature]:
    return [f for f in Feature if f in features]


def names(features: frozenset[Feature]) -> str:
    return ", ".join(feature_name(f) for f in ordered(features)) or "none (only camera data)"


def parse_target(argument: str) -> str | None:
    """A user for the admin commands: a Telegram id ("123"), or a full key ("telegram:123", "slack:T1:U2")."""
    argument = argument.strip()
    if ":" in argument and all(argument.split(":")):
        return argument
    if argument.lstrip("-").isdigit():
        return user_key(argument)
    return None


class Commands:
    """Command and button handlers; they read and change state only through `PhotoService`."""

    def __init__(self, service: PhotoService, config: TelegramConfig) -> None:
        self.service = service
        self.config = config

    # -- everyone ------------------------------------------------------------------------

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None:
            return
        username = html.escape(context.bot.username)
        policy = self.service.policy
        default = self.service.default_features & self.service.capabilities
        lines = [
            "<b>PhotoDetective</b> looks at a photo and answers with the photo annotated "
            "(boxes around faces, objects and text) and a short summary: what it shows, any text, "
            "content warnings, and the camera data (EXIF).",
            "",
            "<b>How to use it</b>",
            "• Here: send a photo. Send it as a file (📎 → File) to keep camera and location data.",
            f"• In groups: mention @{username} in the caption, or reply /analyze to a photo. "
            "Group admins can use /auto to have every photo analysed.",
            *(
                ["• Ask about a photo: reply to my answer with a question (it counts as a photo)."]
                if self.service.questions is not None
                else []
            ),
            "",
            f"<b>Recognizer:</b> {html.escape(self.config.backend)}",
            f"<b>Analyses:</b> {html.escape(names(default))} (choose yours with /features)",
            f"<b>Quota:</b> {photos(policy.daily_limit)} a day per person (/quota)",
            "<b>Privacy:</b> photos are not kept after the answer; see /privacy."
            if not privacy_lines(self.service.capabilities, self.service.questions)
            else "<b>Privacy:</b> see /privacy (a caption is written by a language model).",
        ]
        await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)

    async def quota(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        sender = sender_id(message) if message is not None else None
        if message is None or sender is None:
            return
        key = user_key(sender)
        usage = await self.service.usage(key)
        report = quota_report(
            usage,
            self.service.clock(),
            zone=self.service.policy.zone,
            admin=self.service.access.is_admin(key),
        )
        await message.reply_text(plain_text(report))

    async def privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None:
            return
        days = round(DEFAULT_RETENTION_S / 86_400)
        recognizer = self.config.backend
        described = privacy_lines(self.service.capabilities, self.service.questions)
        recognizes = self.service.capabilities - {Feature.DESCRIBE}
        if not recognizes:
            sent_to = "No recognition service is used: only the camera data (EXIF) is read."
        elif self.config.backend_is_cloud:
            sent_to = (
                f"To analyse it, a downsized copy without camera data is sent to {html.escape(recognizer)}."
            )
        elif described:
            sent_to = "Its labels, faces and text are found on this server."
        else:
            sent_to = "It is analysed on this server; it is not sent to any other service."
        in_private = "shown as a map link" if self.config.location_in_private else "not shown"
        in_groups = "shown as a map link" if self.config.location_in_groups else "not shown, only mentioned"
        lines = [
            "<b>What happens to your photo</b>",
            "It is downloaded from Telegram for the analysis and not stored after the answer"
            + (" (except as said under What is kept). " if len(described) > 1 else ". ")
            + sent_to,
            "The annotated image sent back carries no camera or location data.",
            *(html.escape(line) for line in described[:1]),
            "",
            "<b>Location</b>",
            f"A GPS position in a photo is {in_private} in private chats and {in_groups} in groups. "
            "Telegram removes it from compressed photos anyway; it stays in photos sent as files.",
            "",
            "<b>What is kept</b>",
            f"• For about {days} days: a record of each request (your user id, the chat, the message "
            "and Telegram's file id, the analyses chosen), so a photo is never answered twice.",
            f"• For about {days} days: how many photos you sent each day, for the daily quota.",
            "• Until you change it: your choice of analyses (/features).",
            *(f"• {html.escape(line)}" for line in described[1:]),
        ]
        await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)

    async def features(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/features shows your analyses with buttons; /features labels,faces or /features default sets."""
        message = update.message
        sender = sender_id(message) if message is not None else None
        if message is None or sender is None:
            return
        available = self.service.capabilities
        if not available:
            await message.reply_text(
                "This bot has no recognizer configured, so it only reads camera data (EXIF): "
                "there are no analyses to choose."
            )
            return
        key = user_key(sender)
        choice = " ".join(context.args or []).strip().replace(" ", ",")
        if choice:
            if choice.lower() in ("default", "reset"):
                await self.service.set_features(key, None)
            else:
                try:
                    wanted = parse_features(choice)
                except ValueError as error:
                    await message.reply_text(f"{error}.")
                    return
                missing = wanted - available
                if missing:
                    await message.reply_text(f"Not available with this recognizer: {names(missing)}.")
                    return
                await self.service.set_features(key, wanted)
        current = await self.service.features_for(key)
        await message.reply_text(
            self._features_text(current, changed=bool(choice)),
            parse_mode=ParseMode.HTML,
            reply_markup=self._features_keyboard(sender, current),
        )

    def _features_text(self, current: frozenset[Feature], *, changed: bool) -> str:
        head = "Saved. " if changed else ""
        return (
            f"{head}<b>Analyses run on your photos:</b> "
            f"{html.escape(names(current & self.service.capabilities))}"
            "\nTap to switch one on or off, or send e.g. <code>/features labels,faces</code>; "
            "<code>/features default</code> goes back to the default."
        )

    def _features_keyboard(self, owner: int, current: frozenset[Feature]) -> InlineKeyboardMarkup:
        buttons = [
            InlineKeyboardButton(
                f"{'✅' if f in current else '⬜'} {feature_name(f)}",
                callback_data=f"{FEATURES_PREFIX}{owner}:{f.value}",
            )
            for f in ordered(self.service.capabilities)
        ]
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
        rows.append([InlineKeyboardButton("Default", callback_data=f"{FEATURES_PREFIX}{owner}:default")])
        return InlineKeyboardMarkup(rows)

    async def features_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap on a /features button: toggle that analysis for the person the buttons belong to."""
        query = update.callback_query
        if query is None or query.data is None:
            return
        owner, _, value = query.data.removeprefix(FEATURES_PREFIX).partition(":")
        if str(query.from_user.id) != owner:
            await query.answer(
                "These buttons belong to someone else: send /features for yours.", show_alert=True
            )
            return
        key = user_key(owner)
        if value == "default":
            await self.service.set_features(key, None)
        elif value in {f.value for f in self.service.capabilities}:
            current = await self.service.features_for(key)
            await self.service.set_features(key, current ^ {Feature(value)})
        current = await self.service.features_for(key)
        await query.answer("Saved")
        if isinstance(query.message, Message):
            try:
                await query.edit_message_text(
                    self._features_text(current, changed=True),
                    parse_mode=ParseMode.HTML,
                    reply_markup=self._features_keyboard(query.from_user.id, current),
                )
            except TelegramError as error:  # "message is not modified" after a double tap
                log.debug("features message not updated: %s", error)

    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message is not None:
            await update.message.reply_text("I don't know that command; /help lists what I can do.")

    async def chatter(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message is not None:
            await update.message.reply_text(
                "Send me a photo, or an image as a file to keep its camera data, and I'll analyse it. /help"
            )

    # -- groups ---------------------------------------------------------------------------

    async def auto(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/auto on|off: a group's admins choose whether every photo is analysed (off by default)."""
        message = update.message
        if message is None:
            return
        chat = message.chat
        if chat.type == ChatType.PRIVATE:
            await message.reply_text("This setting is for groups: here every photo you send is analysed.")
            return
        key = chat_key(chat.id)
        choice = (context.args or [""])[0].lower()
        if choice not in ("on", "off"):
            state = "on" if await self.service.analyses_every_photo(key) else "off"
            await message.reply_text(
                f"Analysing every photo in this group: {state}. "
                "Group admins can change it with /auto on or /auto off."
            )
            return
        if not await self._group_admin(message, context):
            await message.reply_text(GROUP_ADMINS_ONLY)
            return
        await self.service.set_analyses_every_photo(key, choice == "on")
        if choice == "off":
            await message.reply_text("I'll only analyse photos I'm asked about (a mention or /analyze).")
            return
        text = "From now on I analyse every photo sent here."
        if not context.bot.bot.can_read_all_group_messages:
            text += (
                " To see photos nobody mentions me in, I need privacy mode off "
                "(@BotFather → /setprivacy → Disable) or to be an admin of this group."
            )
        await message.reply_text(text)

    async def _group_admin(self, message: Message, context: ContextTypes.DEFAULT_TYPE) -> bool:
        """The group's creator or an administrator (anonymous admins post as the group itself)."""
        if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
            return True
        if message.from_user is None:
            return False
        if self.service.access.is_admin(user_key(message.from_user.id)):
            return True
        try:
            member = await context.bot.get_chat_member(message.chat.id, message.from_user.id)
        except TelegramError as error:
            log.warning("getChatMember in %s failed: %s", message.chat.id, error)
            return False
        return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)

    # -- bot admins -----------------------------------------------------------------------

    def _is_admin(self, message: Message) -> bool:
        return message.from_user is not None and self.service.access.is_admin(user_key(message.from_user.id))

    async def _admin_message(self, update: Update) -> Message | None:
        """The command's message when a bot admin sent it; anyone else is told it is for admins only."""
        message = update.message
        if message is None:
            return None
        if not self._is_admin(message):
            await message.reply_text(ADMINS_ONLY)
            return None
        return message

    async def stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = await self._admin_message(update)
        if message is None:
            return
        quota = plain_text(stats_report(await self.service.stats()))
        queue = queue_report(await self.service.queue.stats(time.time()))
        await message.reply_text(f"{quota}\nqueue: {queue}")

    def _target(self, message: Message, args: list[str]) -> tuple[str | None, list[str]]:
        """The user an admin command is about: the author of the replied-to message, or the first argument."""
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
            return user_key(replied.from_user.id), args
        if not args:
            return None, args
        return parse_target(args[0]), args[1:]

    async def grant(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/grant <user> <photos> (or in reply to the user's message: /grant <photos>)."""
        message = await self._admin_message(update)
        if message is None:
            return
        target, rest = self._target(message, list(context.args or []))
        extra = int(rest[0]) if rest and rest[0].isdigit() else 0
        if target is None or not 0 < extra <= 100_000:
            await message.reply_text(
                "Usage: /grant <telegram user id> <photos>, or reply /grant <photos> to them."
            )
            return
        usage = await self.service.grant(target, extra)
        await message.reply_text(f"Granted {photos(extra)} for today.\n{usage_line(usage)}")

    async def block(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._blocking(update, context, block=True)

    async def unblock(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._blocking(update, context, block=False)

    async def _blocking(self, update: Update, context: ContextTypes.DEFAULT_TYPE, *, block: bool) -> None:
        message = await self._admin_message(update)
        if message is None:
            return
        target, _ = self._target(message, list(context.args or []))
        verb = "block" if block else "unblock"
        if target is None:
            await message.reply_text(f"Usage: /{verb} <telegram user id>, or reply /{verb} to them.")
            return
        changed = await (self.service.block(target) if block else self.service.unblock(target))
        if block:
            text = f"Blocked {target}." if changed else f"{target} was already blocked."
        else:
            text = f"Unblocked {target}." if changed else f"{target} was not blocked."
        await message.reply_text(text)
