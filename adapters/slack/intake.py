"""From "a Slack user wants this file analysed" to a stored job, and telling them how it went.

When to acknowledge Slack: the Events API retries an event that is not acknowledged within 3 s,
and never again once it is. So events are acknowledged *after* `PhotoService.submit` has charged
the quota and stored the job (Bolt's `process_before_response`): if the process dies before
that, Slack's retry brings the photo back, and the idempotency key (channel, message ts, file
id) makes the retry find the same charge and job instead of a second one. Submitting is a few
local store writes; should it ever take longer than `ack_budget_s` (a locked SQLite file, a slow
Redis), the adapter acknowledges anyway and the submit finishes in the background, trading the
restart guarantee for not being retried into a pile-up. Everything the user sees (the :mag:
reaction, ephemeral refusals) is sent after the acknowledgement, off the 3-second path.

Slash commands and shortcuts are never retried by Slack: they are acknowledged first, and the
lookups they need (conversations.history, files.info) run afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.slack.files import SlackFile, describe_type, file_ref, is_available, is_image
from adapters.slack.replies import REACTION_WORKING, Reactions, ReplyTarget
from bot.photo_requests import PhotoRequest
from bot.queue.base import QueueError
from bot.service import TRY_AGAIN_SHORTLY, Accepted, PhotoService, Refused, Verdict
from core.analysis_types import Feature
from core.errors import UnsupportedFormat

log = logging.getLogger(__name__)

PLATFORM = "slack"
ACK_BUDGET_S = 2.0
ALREADY = "That photo has already been analysed (or is being analysed): the answer is in its thread."
NOT_AVAILABLE = "That file is no longer available to me (deleted, or hidden by the workspace's plan)."

Say = Callable[[str], Coroutine[Any, Any, None]]


def user_key(team_id: str, user_id: str) -> str:
    """The quota identity, as `PhotoRequest.user_key` builds it (and as admins are listed)."""
    return f"{PLATFORM}:{team_id}:{user_id}" if team_id else f"{PLATFORM}:{user_id}"


def chat_key(channel_id: str) -> str:
    """The conversation's key, as `PhotoRequest.chat_key` builds it."""
    return f"{PLATFORM}:{channel_id}"


def is_direct(channel_id: str, channel_type: str | None = None) -> bool:
    """A one-to-one conversation with the app (channel type "im"; ids starting with D)."""
    return channel_type == "im" or (channel_type is None and channel_id.startswith("D"))


@dataclass(frozen=True)
class Ask:
    """One file someone asked us to analyse (or that the channel's setting asks us to).

    `message_ts` is the message that carried the file: it names the job (with the channel and
    file id), so a redelivered event, a mention and a shortcut on the same message all make one
    job. `explicit` is False only for photos analysed because of a channel's every-photo setting.
    """

    team_id: str
    user_id: str
    channel_id: str
    file: SlackFile
    message_ts: str | None
    thread_ts: str | None
    private: bool
    explicit: bool = True

    @property
    def user_key(self) -> str:
        return user_key(self.team_id, self.user_id)

    def request(self, features: frozenset[Feature]) -> PhotoRequest:
        target = ReplyTarget(
            channel=self.channel_id, user=self.user_id, thread_ts=self.thread_ts, message_ts=self.message_ts
        )
        return PhotoRequest(
            platform=PLATFORM,
            user_id=self.user_id,
            chat_id=self.channel_id,
            message_id=self.message_ts or "link",
            file=file_ref(self.file),
            features=features,
            reply_to=target.to_reply_to(),
            workspace_id=self.team_id,
            private=self.private,
        )


def refusal_for(files: Sequence[SlackFile]) -> str | None:
    """Why none of `files` can be analysed (None when at least one might be an image)."""
    available = [f for f in files if is_available(f)]
    if not available:
        return NOT_AVAILABLE
    if any(is_image(f) is not False for f in available):
        return None
    return str(UnsupportedFormat(describe_type(available[0])))


@dataclass(frozen=True)
class Reporter:
    """How to talk to the person who asked: `say` reaches only them; `confirm` also acknowledges
    accepted photos in words (commands and shortcuts), where events only get the reaction."""

    say: Say
    confirm: bool = False


class RecentEvents:
    """Event ids seen lately, so a retried delivery of an event already handled is dropped at once.

    Only a fast path: after a restart the set is empty and the service's idempotency key is what
    prevents a second job. Slack retries within minutes, so an hour is plenty.
    """

    def __init__(self, ttl_s: float = 3600.0, max_size: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """Remember `event_id`; False when it was already there (a retry or a duplicate)."""
        now = time.monotonic()
        while self._seen and (
            len(self._seen) >= self.max_size or next(iter(self._seen.values())) < now - self.ttl_s
        ):
            self._seen.popitem(last=False)
        if event_id in self._seen:
            return False
        self._seen[event_id] = now
        return True

    def discard(self, event_id: str) -> None:
        """Forget an event whose handling failed, so Slack's retry is handled again."""
        self._seen.pop(event_id, None)


class Intake:
    """Submits asks to the service and reports back; owns the background tasks it starts."""

    def __init__(self, service: PhotoService, reactions: Reactions, *, ack_budget_s: float = ACK_BUDGET_S):
        self.service = service
        self.reactions = reactions
        self.ack_budget_s = ack_budget_s
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str = "slack-task") -> asyncio.Task[Any]:
        """Run `work` after the acknowledgement; kept here so shutdown can wait for it."""
        task = asyncio.create_task(self._logged(work), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, Any]) -> Any:
        try:
            return await work
        except Exception:
            log.exception("Slack background task failed")
            return None

    async def submit_within_budget(self, asks: Sequence[Ask], reporter: Reporter) -> None:
        """Submit, wait at most `ack_budget_s` for it (then the caller acks), and report afterwards."""
        submitting = asyncio.create_task(self._submit_all(asks), name="slack-submit")
        self._tasks.add(submitting)
        submitting.add_done_callback(self._tasks.discard)
        done, _ = await asyncio.wait({submitting}, timeout=self.ack_budget_s)
        if not done:
            log.warning(
                "submitting took over %.1f s; acknowledging Slack before it finished", self.ack_budget_s
            )
        self.spawn(self._report_when_done(submitting, asks, reporter), name="slack-report")

    async def submit(self, asks: Sequence[Ask], reporter: Reporter) -> None:
        """Submit and report, for paths Slack does not retry (already acknowledged)."""
        try:
            verdicts = await self._submit_all(asks)
        except Exception:
            log.exception("submitting a Slack photo failed")
            await reporter.say(TRY_AGAIN_SHORTLY)
            return
        await self._report(asks, verdicts, reporter)

    async def _submit_all(self, asks: Sequence[Ask]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for ask in asks:
            features = await self.service.features_for(ask.user_key)
            verdicts.append(await self.service.submit(ask.request(features)))
        return verdicts

    async def _report_when_done(
        self, submitting: asyncio.Task[list[Verdict]], asks: Sequence[Ask], reporter: Reporter
    ) -> None:
        try:
            verdicts = await submitting
        except Exception:
            log.exception("submitting a Slack photo failed")
            await reporter.say(TRY_AGAIN_SHORTLY)
            return
        await self._report(asks, verdicts, reporter)

    async def _report(self, asks: Sequence[Ask], verdicts: Sequence[Verdict], reporter: Reporter) -> None:
        """React on accepted photos, and tell the asker (only them) what was refused, once per reason."""
        notes: list[str] = []
        for ask, verdict in zip(asks, verdicts, strict=True):
            match verdict:
                case Accepted(duplicate=False, job_id=job_id):
                    if ask.message_ts:
                        await self._mark_working(ask.channel_id, ask.message_ts, job_id)
                    if reporter.confirm:
                        notes.append(verdict.message)
                case Accepted(duplicate=True):
                    if reporter.confirm:
                        notes.append(ALREADY)
                case Refused(reason=reason, message=message):
                    if ask.explicit or reason != "not_allowed":
                        notes.append(message)
        unique = list(dict.fromkeys(notes))
        if unique:
            await reporter.say("\n".join(unique))

    async def _mark_working(self, channel: str, ts: str, job_id: str) -> None:
        """Add :mag:, unless the answer was faster than us.

        A quick worker can post the answer, and swap :mag: for the final reaction, before this
        report runs. Checking the job's reply marker *after* adding :mag: closes that race: if the
        reply had started by then, its swap may have missed our :mag:, so we take it away again.
        """
        await self.reactions.add(channel, ts, REACTION_WORKING)
        try:
            answered = await self.service.queue.reply_started(job_id)
        except QueueError:
            return
        if answered:
            await self.reactions.remove(channel, ts, REACTION_WORKING)

    async def drain(self, timeout_s: float) -> None:
        """Let reports and submits in flight finish (they are short), cancelling stragglers."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)
