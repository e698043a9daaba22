"""The Bolt listeners: Slack events, `/photodetective` and the "Analyze photo" shortcut.

They only translate: a Slack payload becomes `Ask`s for `Intake` (and so `PhotoService.submit`),
or a quick answer from the service (quota, features, admin actions). See `adapters.slack.intake`
for when Slack is acknowledged and why.

Which shared images are analysed:
- direct messages with the app: every image (unless the user turned it off with `auto off`);
- channels: images in a message that mentions the app, unless the channel chose `auto on`
  (then every image; the message event is ignored when it mentions the app, because the
  `app_mention` event for the same message handles it, so one message is one job);
- a mention without an image inside a thread: the image of the thread's first message;
- the message shortcut, `/photodetective last` and `/photodetective <file link>`: on request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.commands import (
    ADMIN_HELP,
    ADMIN_SUBCOMMANDS,
    CANT_SEE_CONVERSATION,
    COMMAND,
    FILE_NOT_HERE,
    HELP,
    MAX_GRANT,
    MENTION_HINT,
    NO_IMAGE_IN_MESSAGE,
    NO_RECENT_IMAGE,
    NOT_ADMIN,
    SHORTCUT_CALLBACK_ID,
    auto_announcement,
    auto_status,
    features_text,
    grant_text,
    split_user,
    stats_text,
    usage_text,
)
from adapters.slack.files import SlackFile, image_files, parse_file_link, share_in
from adapters.slack.intake import (
    Ask,
    Intake,
    RecentEvents,
    Reporter,
    Say,
    chat_key,
    is_direct,
    refusal_for,
    user_key,
)
from adapters.slack.questions import SlackQuestions
from adapters.slack.render import escape, escape_lines
from adapters.slack.source import SlackPhotoSource
from bot.ports import FetchFailed
from bot.preferences import PreferencesUnavailable
from bot.quota.base import QuotaStoreError
from bot.service import TRY_AGAIN_SHORTLY, PhotoService
from bot.settings import parse_features
from core.errors import PhotoRejected

log = logging.getLogger(__name__)

HISTORY_LIMIT = 50
_SHARED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
_CANT_SEE_ERRORS = frozenset({"not_in_channel", "channel_not_found", "missing_scope"})
_AUTO_CHOICES: Mapping[str, bool | None] = {"on": True, "off": False, "default": None}

Payload = Mapping[str, Any]


class SlackListeners:
    """Every Bolt listener of the app; `register` attaches them to an AsyncApp."""

    def __init__(
        self,
        *,
        service: PhotoService,
        client: AsyncWebClient,
        intake: Intake,
        source: SlackPhotoSource,
        asking: SlackQuestions | None = None,
    ) -> None:
        self.service = service
        self.client = client
        self.intake = intake
        self.source = source
        self.asking = asking  # questions about answered photos, when a describer is configured
        self.recent = RecentEvents()

    def register(self, app: AsyncApp) -> None:
        app.event("message")(self.on_message)
        app.event("app_mention")(self.on_mention)
        app.command(COMMAND)(self.on_command)
        app.shortcut(SHORTCUT_CALLBACK_ID)(self.on_shortcut)

    # -- events ------------------------------------------------------------------------------

    async def on_message(self, body: Payload, event: Payload, context: AsyncBoltContext) -> None:
        """A message with files: analysed in DMs, and in channels that chose every image."""
        if event.get("subtype") not in _SHARED_SUBTYPES or event.get("bot_id") or not event.get("user"):
            return
        files: Sequence[SlackFile] = event.get("files") or ()
        if not files:
            await self._question_in_direct_thread(body, event, context)
            return
        channel = str(event["channel"])
        direct = is_direct(channel, event.get("channel_type"))
        bot_user = context.bot_user_id
        if not direct and bot_user and f"<@{bot_user}>" in str(event.get("text") or ""):
            return  # the app_mention event of this message asks for it
        every = await self.service.analyses_every_photo(chat_key(channel))
        if not (direct if every is None else every):
            return
        await self._submit_event(body, event, context, files, explicit=direct, direct=direct)

    async def on_mention(self, body: Payload, event: Payload, context: AsyncBoltContext) -> None:
        """The app was mentioned: analyse the message's images, or the thread's first image."""
        user = event.get("user")
        if not user or event.get("bot_id"):
            return
        channel = str(event["channel"])
        direct = is_direct(channel, event.get("channel_type"))
        files: Sequence[SlackFile] = event.get("files") or ()
        if files:
            await self._submit_event(body, event, context, files, explicit=True, direct=direct)
            return
        event_id = body.get("event_id")
        if event_id and not self.recent.add(str(event_id)):
            return
        team = _team(body, context)
        thread = event.get("thread_ts")
        if thread and thread != event.get("ts") and await self._is_question(team, channel, str(thread)):
            self._answer_later(team, str(user), channel, str(thread), event)
        elif thread and thread != event.get("ts"):
            self.intake.spawn(self._analyse_thread_start(team, str(user), channel, str(thread), direct))
        else:
            self.intake.spawn(self._post_ephemeral(channel, str(user), None, MENTION_HINT))

    async def _question_in_direct_thread(
        self, body: Payload, event: Payload, context: AsyncBoltContext
    ) -> None:
        """A plain message in a thread of a direct message with us, under an answered photo: a question."""
        channel, thread, user = str(event.get("channel", "")), event.get("thread_ts"), event.get("user")
        if event.get("subtype") is not None or not thread or thread == event.get("ts") or not user:
            return
        if not is_direct(channel, event.get("channel_type")):
            return  # in a channel a question mentions us (app_mention), so talk in threads stays talk
        event_id = body.get("event_id")
        if event_id and not self.recent.add(str(event_id)):
            return
        team = _team(body, context)
        if await self._is_question(team, channel, str(thread)):
            self._answer_later(team, str(user), channel, str(thread), event)

    async def _is_question(self, team: str, channel: str, thread: str) -> bool:
        if self.asking is None:
            return False
        try:
            return await self.asking.about_a_kept_photo(team, channel, thread)
        except Exception as error:  # the kept photos cannot be read: not a question we can answer
            log.warning("kept photos unavailable: %s", type(error).__name__)
            return False

    def _answer_later(self, team: str, user: str, channel: str, thread: str, event: Payload) -> None:
        """Answer after the ack: a model takes longer than Slack waits for it."""
        assert self.asking is not None
        text, ts = str(event.get("text") or ""), str(event.get("ts") or "")
        self.intake.spawn(self.asking.answer(team, user, channel, thread, ts, text))

    async def _submit_event(
        self,
        body: Payload,
        event: Payload,
        context: AsyncBoltContext,
        files: Sequence[SlackFile],
        *,
        explicit: bool,
        direct: bool,
    ) -> None:
        """Submit an event's images before Bolt acknowledges it (see `Intake`)."""
        event_id = str(body.get("event_id") or "")
        if event_id and not self.recent.add(event_id):
            log.info("dropping redelivered Slack event %s", event_id)
            return
        try:
            channel, user, ts = str(event["channel"]), str(event["user"]), str(event["ts"])
            in_thread = event.get("thread_ts")
            say = self._ephemeral_say(channel, user, str(in_thread) if in_thread else None)
            if explicit and (refusal := refusal_for(files)):
                self.intake.spawn(say(refusal))
                return
            asks = [
                Ask(
                    team_id=_team(body, context),
                    user_id=user,
                    channel_id=channel,
                    file=file,
                    message_ts=ts,
                    thread_ts=str(in_thread or ts),
                    private=direct,
                    explicit=explicit,
                )
                for file in image_files(files, include_unknown=explicit)
            ]
            if asks:
                await self.intake.submit_within_budget(asks, Reporter(say))
        except BaseException:
            if event_id:
                self.recent.discard(event_id)  # let Slack's retry try again
            raise

    async def _analyse_thread_start(
        self, team: str, user: str, channel: str, thread_ts: str, direct: bool
    ) -> None:
        say = self._ephemeral_say(channel, user, thread_ts)
        try:
            replies = await self.client.conversations_replies(channel=channel, ts=thread_ts, limit=1)
        except SlackApiError as exc:
            log.info("conversations.replies failed: %s", exc.response.get("error"))
            await self._post_ephemeral(channel, user, thread_ts, CANT_SEE_CONVERSATION)
            return
        messages = replies.get("messages") or []
        first = messages[0] if messages else {}
        files = first.get("files") or []
        if not files:
            await self._post_ephemeral(channel, user, thread_ts, f"{NO_IMAGE_IN_MESSAGE} {MENTION_HINT}")
            return
        if refusal := refusal_for(files):
            await say(refusal)
            return
        asks = [
            Ask(team, user, channel, file, str(first["ts"]), thread_ts, private=direct)
            for file in image_files(files, include_unknown=True)
        ]
        await self.intake.submit(asks, Reporter(say))

    # -- the slash command -------------------------------------------------------------------

    async def on_command(
        self, ack: AsyncAck, command: Payload, context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        """`/photodetective <subcommand>`: quick answers in the ack, lookups after it."""
        text = str(command.get("text") or "").strip()
        word, _, rest = text.partition(" ")
        word, rest = word.lower(), rest.strip()
        team = str(command.get("team_id") or context.team_id or "")
        user = str(command["user_id"])
        channel = str(command["channel_id"])
        direct = is_direct(channel) or command.get("channel_name") == "directmessage"
        key = user_key(team, user)
        try:
            if word in ("", "help"):
                admin = self.service.access.is_admin(key)
                await ack(text=HELP + (f"\n\n{ADMIN_HELP}" if admin else ""))
            elif word == "quota":
                await ack(
                    text=usage_text(
                        await self.service.usage(key),
                        self.service.clock(),
                        self.service.policy.zone,
                        self.service.access.is_admin(key),
                    )
                )
            elif word == "features":
                await ack(text=await self._features(key, rest))
            elif word == "auto":
                await self._auto(ack, channel, user, rest, direct)
            elif word in ADMIN_SUBCOMMANDS:
                await ack(text=await self._admin(word, rest, team, key))
            elif word == "last":
                await ack()
                bot_user = context.bot_user_id
                self.intake.spawn(self._last(team, user, channel, direct, bot_user, respond))
            elif (file_id := parse_file_link(text)) is not None:
                await ack()
                self.intake.spawn(self._link(team, user, channel, direct, file_id, respond))
            else:
                await ack(text=f"I don't know “{escape(word[:40])}”.\n\n{HELP}")
        except (QuotaStoreError, PreferencesUnavailable) as exc:
            log.warning("%s %s failed: %s", COMMAND, word, exc)
            await ack(text=TRY_AGAIN_SHORTLY)

    async def _features(self, key: str, rest: str) -> str:
        capabilities = self.service.capabilities
        if not rest:
            return features_text(await self.service.features_for(key), capabilities)
        if rest.lower() == "default":
            await self.service.set_features(key, None)
        else:
            try:
                chosen = parse_features(re.sub(r"[\s,]+", ",", rest))
            except ValueError as exc:
                return escape(str(exc))
            await self.service.set_features(key, chosen)
        return "Saved. " + features_text(await self.service.features_for(key), capabilities)

    async def _auto(self, ack: AsyncAck, channel: str, user: str, rest: str, direct: bool) -> None:
        """Show or set whether every image here is analysed; a change is announced to the channel."""
        key = chat_key(channel)
        choice_word = rest.lower()
        if not choice_word:
            await ack(text=auto_status(await self.service.analyses_every_photo(key), direct))
            return
        if choice_word not in _AUTO_CHOICES:
            await ack(text=f"Use `{COMMAND} auto on`, `{COMMAND} auto off` or `{COMMAND} auto default`.")
            return
        choice = _AUTO_CHOICES[choice_word]
        await self.service.set_analyses_every_photo(key, choice)
        log.info("%s set auto-analysis of %s to %s", user, channel, choice)
        await ack(
            text=auto_announcement(user, choice, direct),
            response_type="ephemeral" if direct else "in_channel",
        )

    async def _admin(self, word: str, rest: str, team: str, key: str) -> str:
        if not self.service.access.is_admin(key):
            return NOT_ADMIN
        if word == "stats":
            return stats_text(await self.service.stats(), team)
        target_id, amount = split_user(rest)
        if target_id is None:
            return f"Name a user by mentioning them, e.g. `{COMMAND} {word} @someone`."
        target_key = user_key(team, target_id)
        if word == "grant":
            try:
                extra = int(amount.strip() or "0")
            except ValueError:
                extra = 0
            if not 1 <= extra <= MAX_GRANT:
                return f"Say how many photos to add (1 to {MAX_GRANT}), e.g. `{COMMAND} grant @someone 5`."
            return grant_text(target_id, await self.service.grant(target_key, extra))
        if word == "block":
            changed = await self.service.block(target_key)
            return f"<@{target_id}> is {'now' if changed else 'already'} blocked."
        changed = await self.service.unblock(target_key)
        return f"<@{target_id}> is {'no longer' if changed else 'not'} blocked."

    async def _last(
        self, team: str, user: str, channel: str, direct: bool, bot_user: str | None, respond: AsyncRespond
    ) -> None:
        """Analyse the newest image among the latest messages of the conversation."""
        try:
            history = await self.client.conversations_history(channel=channel, limit=HISTORY_LIMIT)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.info("conversations.history failed: %s", error)
            await _respond(respond, CANT_SEE_CONVERSATION if error in _CANT_SEE_ERRORS else TRY_AGAIN_SHORTLY)
            return
        for message in history.get("messages") or []:
            if message.get("bot_id") or (bot_user and message.get("user") == bot_user):
                continue  # our own annotated images are not what the user means
            images = image_files(message.get("files") or [], include_unknown=False)
            if images:
                ts = str(message["ts"])
                ask = Ask(team, user, channel, images[-1], ts, str(message.get("thread_ts") or ts), direct)
                await self.intake.submit([ask], Reporter(_responder(respond), confirm=True))
                return
        await _respond(respond, NO_RECENT_IMAGE.format(count=HISTORY_LIMIT))

    async def _link(
        self, team: str, user: str, channel: str, direct: bool, file_id: str, respond: AsyncRespond
    ) -> None:
        """Analyse a linked file, if it was shared here or belongs to the user.

        files.info answers for any file the *app* can see; without this check, anyone could have a
        file from a private channel they are not in posted into theirs.
        """
        say = _responder(respond)
        if not await self._can_use(channel):
            await _respond(respond, CANT_SEE_CONVERSATION)
            return
        try:
            info = await self.source.file_info(file_id)
        except PhotoRejected as exc:
            await say(str(exc))
            return
        except FetchFailed:
            await say(TRY_AGAIN_SHORTLY)
            return
        share = share_in(info, channel)
        if share is None and info.get("user") != user:
            await say(FILE_NOT_HERE)
            return
        if refusal := refusal_for([info]):
            await say(refusal)
            return
        message_ts, thread_ts = (share[0], share[1] or share[0]) if share else (None, None)
        ask = Ask(team, user, channel, info, message_ts, thread_ts, direct)
        await self.intake.submit([ask], Reporter(say, confirm=True))

    # -- the message shortcut ----------------------------------------------------------------

    async def on_shortcut(
        self, ack: AsyncAck, shortcut: Payload, context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        """ "Analyze photo" on a message: acknowledged at once (Slack never retries shortcuts)."""
        await ack()
        message: Payload = shortcut.get("message") or {}
        channel = str((shortcut.get("channel") or {}).get("id") or context.channel_id or "")
        user = str((shortcut.get("user") or {}).get("id") or context.user_id or "")
        team = str((shortcut.get("team") or {}).get("id") or context.team_id or "")
        self.intake.spawn(self._shortcut(team, user, channel, message, respond))

    async def _shortcut(
        self, team: str, user: str, channel: str, message: Payload, respond: AsyncRespond
    ) -> None:
        say = _responder(respond)
        files: Sequence[SlackFile] = message.get("files") or ()
        if not files or not message.get("ts"):
            await _respond(respond, NO_IMAGE_IN_MESSAGE)
            return
        if refusal := refusal_for(files):
            await say(refusal)
            return
        if not await self._can_use(channel):
            await _respond(respond, CANT_SEE_CONVERSATION)
            return
        ts = str(message["ts"])
        thread_ts = str(message.get("thread_ts") or ts)
        asks = [
            Ask(team, user, channel, file, ts, thread_ts, is_direct(channel))
            for file in image_files(files, include_unknown=True)
        ]
        await self.intake.submit(asks, Reporter(say, confirm=True))

    # -- helpers -----------------------------------------------------------------------------

    async def _can_use(self, channel: str) -> bool:
        """Whether the app is in the conversation, so its answer can be posted there."""
        try:
            await self.client.conversations_history(channel=channel, limit=1)
        except SlackApiError as exc:
            return exc.response.get("error") not in _CANT_SEE_ERRORS
        except SlackClientError:
            return True  # not a membership problem; let the upload say more
        return True

    def _ephemeral_say(self, channel: str, user: str, thread_ts: str | None) -> Say:
        async def say(text: str) -> None:
            await self._post_ephemeral(channel, user, thread_ts, escape_lines(text))

        return say

    async def _post_ephemeral(self, channel: str, user: str, thread_ts: str | None, mrkdwn: str) -> None:
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=mrkdwn, thread_ts=thread_ts)
        except SlackClientError as exc:
            log.warning("chat.postEphemeral failed: %s", exc)


def _team(body: Payload, context: AsyncBoltContext) -> str:
    return str(context.team_id or body.get("team_id") or "")


def _responder(respond: AsyncRespond) -> Say:
    """A `Say` through the command's or shortcut's response_url (works even where the app isn't)."""

    async def say(text: str) -> None:
        await _respond(respond, escape_lines(text))

    return say


async def _respond(respond: AsyncRespond, mrkdwn: str) -> None:
    try:
        await respond(text=mrkdwn, response_type="ephemeral")
    except Exception as exc:  # the webhook client raises aiohttp and SDK errors alike
        log.warning("responding through response_url failed: %s", exc)
