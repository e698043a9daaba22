"""Answering in Slack: the annotated image and summary in the photo's thread, and the reaction swap.

An answer is one files_upload_v2 call: the annotated JPEG uploaded into the thread with the
summary as its comment, so the user sees image and text together (and the worker's "reply at most
once" covers a single Slack message). If Slack refuses the upload itself (uploads disabled, a
file error) the summary still goes out as a message, with a note that the image is missing.

Failures are private where Slack allows it: an ephemeral message to the person who asked in
channels, a normal reply in a direct message. The :mag: reaction on the photo's message becomes
:white_check_mark: or :x:, so everyone in the channel sees that the photo was handled.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import answer_blocks, answer_mrkdwn, escape
from bot.photo_requests import JsonScalar, Outcome, ReplyTo
from bot.ports import Accepted
from bot.presentation import Notice, PhotoAnswer, present

log = logging.getLogger(__name__)

REACTION_WORKING = "mag"
REACTION_DONE = "white_check_mark"
REACTION_FAILED = "x"

ANNOTATED_FILENAME = "photodetective.jpg"
ANNOTATED_TITLE = "Annotated photo"
ANNOTATED_ALT = "The photo with boxes around what PhotoDetective found"

_HARMLESS_REACTION_ERRORS = frozenset({"already_reacted", "no_reaction", "message_not_found"})
_NO_ACCESS_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "invalid_auth"})


@dataclass(frozen=True)
class ReplyTarget:
    """Where a Slack answer goes (the adapter's `bot.photo_requests.ReplyTarget`), survives a restart.

    `thread_ts` is the thread to answer in (None: a new message in the channel), `message_ts`
    the message whose reaction shows progress (None when no message carried the photo).
    """

    channel: str
    user: str
    thread_ts: str | None = None
    message_ts: str | None = None

    def to_reply_to(self) -> dict[str, JsonScalar]:
        return {
            "channel": self.channel,
            "user": self.user,
            "thread_ts": self.thread_ts,
            "message_ts": self.message_ts,
        }

    @classmethod
    def from_reply_to(cls, data: ReplyTo | Mapping[str, object]) -> ReplyTarget:
        def text(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value else None

        return cls(
            channel=str(data["channel"]),
            user=str(data.get("user") or ""),
            thread_ts=text("thread_ts"),
            message_ts=text("message_ts"),
        )


class Reactions:
    """Adding and removing our reactions; a reaction that fails is logged, never fatal."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def add(self, channel: str, ts: str, name: str) -> None:
        await self._react("add", name, self.client.reactions_add(channel=channel, timestamp=ts, name=name))

    async def remove(self, channel: str, ts: str, name: str) -> None:
        await self._react(
            "remove", name, self.client.reactions_remove(channel=channel, timestamp=ts, name=name)
        )

    async def swap(self, channel: str, ts: str, old: str, new: str) -> None:
        await self.remove(channel, ts, old)
        await self.add(channel, ts, new)

    @staticmethod
    async def _react(action: str, name: str, call: Awaitable[object]) -> None:
        """Await one reactions.* call; a reaction is decoration, so its failure is logged, never raised.

        The errors in `_HARMLESS_REACTION_ERRORS` (already so, or the message is gone) are not logged.
        """
        try:
            await call
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error not in _HARMLESS_REACTION_ERRORS:
                log.warning("reactions.%s %s failed: %s", action, name, error)
        except SlackClientError as exc:
            log.warning("reactions.%s %s failed: %s", action, name, exc)


class SlackReplies:
    """`bot.ports.ReplyPort` for Slack."""

    def __init__(self, client: AsyncWebClient, reactions: Reactions) -> None:
        self.client = client
        self.reactions = reactions

    async def deliver(self, outcome: Outcome, accepted: Accepted) -> None:
        """Answer in the photo's thread; raises when the user could not be told anything.

        One call carries the whole answer (an upload with its comment, or one message), so the
        answer is accepted once it returns, before the reaction swap.
        """
        target = ReplyTarget.from_reply_to(outcome.request.reply_to)
        final = REACTION_FAILED
        try:
            reply = present(outcome)
            if isinstance(reply, PhotoAnswer):
                await self._analysis(target, reply)
                final = REACTION_DONE
            else:
                await self._failure(target, reply)
            await accepted()
        finally:  # even when nothing could be posted, the photo must not look "in progress" forever
            if target.message_ts:
                await self.reactions.swap(target.channel, target.message_ts, REACTION_WORKING, final)

    async def _analysis(self, target: ReplyTarget, answer: PhotoAnswer) -> None:
        text = answer_mrkdwn(answer.blocks)
        try:
            await self.client.files_upload_v2(
                channel=target.channel,
                thread_ts=target.thread_ts,
                file=answer.image.jpeg,
                filename=ANNOTATED_FILENAME,
                title=ANNOTATED_TITLE,
                alt_txt=ANNOTATED_ALT,
                initial_comment=text,
            )
            return
        except SlackApiError as exc:
            reason = str(exc.response.get("error") or exc.response.status_code)
            if reason in _NO_ACCESS_ERRORS:
                raise  # a message would be refused just the same
        except SlackClientError as exc:
            reason = type(exc).__name__
        log.warning("uploading the annotated image failed (%s); sending the summary alone", reason)
        note = "I couldn't attach the annotated image this time."
        blocks = [
            *answer_blocks(answer.blocks),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]},
        ]
        await self.client.chat_postMessage(
            channel=target.channel, thread_ts=target.thread_ts, text=f"{text}\n{note}", blocks=blocks
        )

    async def _failure(self, target: ReplyTarget, notice: Notice) -> None:
        text = escape(notice.text)
        if not notice.request.private and target.user:
            try:
                await self.client.chat_postEphemeral(
                    channel=target.channel, user=target.user, text=text, thread_ts=target.thread_ts
                )
                return
            except SlackApiError as exc:
                log.info(
                    "ephemeral failure notice refused (%s); replying in the thread", exc.response.get("error")
                )
        await self.client.chat_postMessage(channel=target.channel, thread_ts=target.thread_ts, text=text)
