"""Answering in Slack: the annotated image and summary in the photo's thread, and the reaction swap.

An answer is one files_upload_v2 call: the annotated JPEG uploaded into the thread with the
summary as its comment, so the user sees image and text together (and the worker's "reply at most
once" covers a single Slack message). If Slack refuses the upload itself (uploads disabled, a
file error) the summary still goes out as a message, with a note that the image is missing.

Failures are private where Slack allows it: an ephemeral message to the person who asked in
channels, a normal reply in a direct message. The :mag: reaction on the photo's message becomes
:white_check_mark: or :x:, so everyone in the channel sees that the photo was handled.

When Slack cannot take the answer now (429 past the client's own retries, 5xx, a timeout, no
connection), `deliver` raises a transient `bot.ports.DeliveryFailed` and leaves :mag: in place:
the worker keeps the answer, image included, and sends it when Slack is back. Slack refusing this
conversation for good (`not_in_channel`, `channel_not_found`, an uninstalled app...) is permanent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.questions import keep_photo
from adapters.slack.render import answer_blocks, answer_mrkdwn, escape
from bot.photo_requests import AnalysisReply, JsonScalar, Outcome, ReplyTo
from bot.ports import Accepted, DeliveryFailed
from bot.presentation import Notice, PhotoAnswer, present
from bot.questions import QuestionService

log = logging.getLogger(__name__)

REACTION_WORKING = "mag"
REACTION_DONE = "white_check_mark"
REACTION_FAILED = "x"

ANNOTATED_FILENAME = "photodetective.jpg"
ANNOTATED_TITLE = "Annotated photo"
ANNOTATED_ALT = "The photo with boxes around what PhotoDetective found"

_HARMLESS_REACTION_ERRORS = frozenset({"already_reacted", "no_reaction", "message_not_found"})
_NO_ACCESS_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "invalid_auth"})
#: Error codes Slack documents as "try again later" (with HTTP 200 or 5xx).
_PASSING_ERRORS = frozenset(
    {"ratelimited", "service_unavailable", "fatal_error", "internal_error", "request_timeout"}
)
_UPLOAD_STATUS = re.compile(r"status: (\d{3})")
#: What a failed call raised that says nothing about the request itself: the network or a timeout.
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, SlackClientError, OSError)


def delivery_failure(error: Exception) -> DeliveryFailed:
    """What a failed Slack call means for the answer (see the module docstring).

    The reason is Slack's error code, the HTTP status or the exception's class: never a body.
    """
    if isinstance(error, SlackApiError):
        status = int(error.response.status_code or 0)
        code = str(error.response.get("error") or "")
        reason = f"{code or 'error'} (HTTP {status})"
        if status == 429 or code == "ratelimited":
            return DeliveryFailed(reason, permanent=False, retry_after_s=_retry_after(error))
        if status >= 500 or code in _PASSING_ERRORS or (not code and status < 400):
            return DeliveryFailed(reason, permanent=False)
        return DeliveryFailed(reason, permanent=True)
    if isinstance(error, SlackRequestError):  # the raw upload step answered other than 200
        found = _UPLOAD_STATUS.search(str(error))
        return DeliveryFailed(f"upload step: HTTP {found.group(1) if found else '?'}", permanent=False)
    return DeliveryFailed(type(error).__name__, permanent=False)


def _retry_after(error: SlackApiError) -> float | None:
    headers = error.response.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


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

    def __init__(
        self, client: AsyncWebClient, reactions: Reactions, questions: QuestionService | None = None
    ) -> None:
        self.client = client
        self.reactions = reactions
        self.questions = questions  # keeps each answered photo for questions in its thread
        # An answer waiting for the platform keeps the prepared image too, so its photo can be kept
        # for questions when it is finally delivered (see bot.ports.uses_prepared_image).
        self.USES_PREPARED_IMAGE = questions is not None

    async def deliver(self, outcome: Outcome, accepted: Accepted) -> None:
        """Answer in the photo's thread; raises when the user could not be told anything.

        One call carries the whole answer (an upload with its comment, or one message), so the
        answer is accepted once it returns, before the reaction swap.
        """
        target = ReplyTarget.from_reply_to(outcome.request.reply_to)
        final: str | None = REACTION_FAILED
        try:
            reply = present(outcome)
            if isinstance(reply, PhotoAnswer):
                prepared = outcome.prepared if isinstance(outcome, AnalysisReply) else None
                await keep_photo(  # before the answer: a question may follow it at once
                    self.questions,
                    prepared.jpeg if prepared else None,
                    outcome.request.workspace_id,
                    target.channel,
                    target.thread_ts,
                )
                await self._analysis(target, reply)
                final = REACTION_DONE
            else:
                await self._failure(target, reply)
            await accepted()
        except (SlackApiError, *TRANSPORT_ERRORS) as error:
            failure = delivery_failure(error)
            if not failure.permanent:
                final = None  # the answer comes later: the photo is still "in progress"
            raise failure from error
        finally:  # refused for good, the photo must not look "in progress" forever
            if target.message_ts and final is not None:
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
            if reason in _NO_ACCESS_ERRORS or not delivery_failure(exc).permanent:
                raise  # refused just the same as a message, or Slack is down: the whole answer later
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
