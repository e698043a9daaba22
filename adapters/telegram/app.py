"""The Telegram adapter: python-telegram-bot wired to the application layer.

Building it starts nothing and calls nobody: a worker-only process uses `source` and `replies`,
which connect (getMe) on first use. `start` begins receiving, by long polling (default) or by
webhook on the shared HTTP server (`routes`). python-telegram-bot's `Application` is used for what
it does well (parsing updates, routing commands, the HTTP client, flood control hooks) but not its
`Updater`, whose polling confirms updates before they are handled (see `adapters.telegram.polling`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiohttp import web
from telegram import Bot, Message, Update
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import (
    Application,
    BaseRateLimiter,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram.albums import AskedAlbums, ReplyOrder
from adapters.telegram.commands import FEATURES_PREFIX, PUBLIC_COMMANDS, Commands
from adapters.telegram.config import WEBHOOK_PATH, TelegramConfig
from adapters.telegram.feedback import Feedback
from adapters.telegram.intake import PLATFORM, PhotoIntake
from adapters.telegram.limits import FloodControl
from adapters.telegram.polling import Poller
from adapters.telegram.questions import QuestionIntake, RepliesToBot, bot_id_of
from adapters.telegram.replies import TelegramReplies
from adapters.telegram.source import TelegramSource
from adapters.telegram.webhook import WebhookReceiver
from bot.service import PhotoService
from bot.settings import ENV_PREFIX, SettingsError
from bot.startup import StartupFailed, without

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ("message", "callback_query")
DRAIN_S = 5.0


def build_application(config: TelegramConfig, rate_limiter: BaseRateLimiter[int]) -> Application:  # type: ignore[type-arg]
    """The python-telegram-bot application, without its Updater (we poll ourselves)."""
    return (
        Application.builder()
        .token(config.token)
        .base_url(config.base_url)
        .base_file_url(config.base_file_url)
        .updater(None)
        .rate_limiter(rate_limiter)
        .connect_timeout(10)
        .read_timeout(30)
        .write_timeout(60)
        .media_write_timeout(60)
        .get_updates_read_timeout(10)
        .build()
    )


class TelegramAdapter:
    """`bot.platforms.PlatformAdapter` for Telegram."""

    name = PLATFORM

    def __init__(
        self,
        config: TelegramConfig,
        service: PhotoService,
        *,
        rate_limiter: BaseRateLimiter[int] | None = None,
    ) -> None:
        self.config = config
        self.service = service
        self.application = build_application(config, rate_limiter or FloodControl())
        self._ready_lock = asyncio.Lock()
        self._ready = False
        self.receiving = False
        self.feedback = Feedback(self.bot, service.queue.reply_started)
        self.order = ReplyOrder()
        self.source = TelegramSource(self.bot)
        self.replies = TelegramReplies(self.bot, self.order, self.feedback.activity, service.questions)
        self.intake = PhotoIntake(service, self.feedback, self.order, AskedAlbums[Message]())
        self.commands = Commands(service, config)
        self._poller: Poller | None = None
        self._webhook = (
            WebhookReceiver(config.webhook_secret, self.bot, self.process, lambda: self.receiving)
            if config.mode == "webhook" and config.webhook_secret
            else None
        )
        self._register_handlers()

    # -- PlatformAdapter -------------------------------------------------------------------

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        """POST /telegram/webhook in webhook mode; nothing when polling."""
        if self._webhook is None:
            return []
        return [web.post(WEBHOOK_PATH, self._webhook.handle)]

    async def start(self) -> None:
        """Connect (getMe), then receive; a refusal or an unreachable API is one clear error.

        A wrong token or webhook URL raises `SettingsError`, an API that does not answer raises
        `StartupFailed` (see `bot.startup`); neither message carries the token, which every Bot
        API URL, and so python-telegram-bot's own messages, contain.
        """
        try:
            await self._start()
        except InvalidToken:
            raise SettingsError(
                f"Telegram refused the bot token: check {ENV_PREFIX}TELEGRAM_TOKEN (from @BotFather)"
            ) from None
        except BadRequest as error:
            if self.config.mode != "webhook":
                raise StartupFailed(self._unsaid(f"Telegram refused a start-up request: {error}")) from None
            raise SettingsError(
                self._unsaid(
                    f"Telegram refused the webhook: {error} (check {ENV_PREFIX}TELEGRAM_WEBHOOK_URL)"
                )
            ) from None
        except TelegramError as error:
            raise StartupFailed(
                self._unsaid(
                    f"The Telegram Bot API at {self.config.api_url} did not answer ({type(error).__name__}: "
                    f"{error}); check the network or {ENV_PREFIX}TELEGRAM_API_URL"
                )
            ) from None

    def _unsaid(self, text: str) -> str:
        """`text` without the token or the webhook secret (a library message may quote either)."""
        return without(self.config.webhook_secret or "", without(self.config.token, text))

    async def _start(self) -> None:
        bot = await self.bot()
        try:
            await bot.set_my_commands(list(PUBLIC_COMMANDS))
        except TelegramError as error:
            log.warning("could not set the command menu: %s", self._unsaid(str(error)))
        if self.config.mode == "webhook":
            await bot.set_webhook(
                url=self.config.webhook_url or "",
                secret_token=self.config.webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=False,
            )
            self.receiving = True
            log.info("Telegram: receiving updates by webhook at %s", self.config.webhook_url)
        else:
            self._poller = Poller(
                bot, self.process, timeout_s=self.config.poll_timeout_s, allowed_updates=ALLOWED_UPDATES
            )
            await self._poller.start()
            self.receiving = True
            log.info("Telegram: receiving updates by long polling as @%s", bot.username)

    async def stop(self) -> None:
        """Stop receiving: the webhook answers 503 (Telegram retries later), polling confirms and ends."""
        self.receiving = False
        if self._poller is not None:
            await self._poller.stop()
            self._poller = None
        await self.feedback.drain(DRAIN_S)

    async def close(self) -> None:
        if self._poller is not None:
            await self._poller.cancel()
            self._poller = None
        await self.feedback.drain(0)
        if self._ready:
            await self.application.shutdown()
            self._ready = False

    # -- plumbing --------------------------------------------------------------------------

    async def bot(self) -> Bot:
        """The connected bot (getMe done once), for handlers, the photo source and the replies."""
        if not self._ready:
            async with self._ready_lock:
                if not self._ready:
                    await self.application.initialize()
                    self._ready = True
        bot: Bot = self.application.bot
        return bot

    async def process(self, update: Update) -> None:
        """Handle one update to the end (its job stored or refused) before it may be confirmed."""
        await self.bot()
        await self.application.process_update(update)

    def _register_handlers(self) -> None:
        app, commands, intake = self.application, self.commands, self.intake
        messages = filters.UpdateType.MESSAGE
        for name, callback in (
            ("start", commands.help),
            ("help", commands.help),
            ("quota", commands.quota),
            ("privacy", commands.privacy),
            ("features", commands.features),
            ("auto", commands.auto),
            ("analyze", intake.on_analyze),
            ("stats", commands.stats),
            ("grant", commands.grant),
            ("block", commands.block),
            ("unblock", commands.unblock),
        ):
            app.add_handler(CommandHandler(name, callback, filters=messages))
        app.add_handler(CallbackQueryHandler(commands.features_button, pattern=f"^{FEATURES_PREFIX}"))
        app.add_handler(MessageHandler(messages & (filters.PHOTO | filters.Document.ALL), intake.on_media))
        if self.service.questions is not None:  # a reply to one of our answers asks about its photo
            asking = QuestionIntake(self.service.questions)
            to_us = RepliesToBot(bot_id_of(self.config.token))
            app.add_handler(MessageHandler(messages & filters.TEXT & to_us, asking.on_question))
        private = messages & filters.ChatType.PRIVATE
        app.add_handler(MessageHandler(private & filters.COMMAND, commands.unknown))
        app.add_handler(MessageHandler(private & filters.TEXT, commands.chatter))
        app.add_error_handler(self._on_error)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("handling Telegram update %s failed", update_id, exc_info=context.error)
