"""Questions about a photo already answered: "what is on the wall?", asked in its thread or reply.

The adapters route a question here with the key of the photo it is about (`photo_key`: the
conversation and the message the photo came in); the service checks, charges, asks and answers:

1. access (the same allow and block lists as photos) and the question's text (one short line);
2. the per-user question rate (`PHOTODETECTIVE_DESCRIBE_QUESTIONS_PER_HOUR`), kept in the quota
   store's sliding window under the user's `ask:` name, so every replica sees the same count;
3. the user's daily quota and the global cost cap: a question is charged like a photo (one of the
   day's photos; one billed unit when the describer is hosted), keyed by the question's message so
   a redelivered question is not charged twice;
4. the kept photo (`bot.kept_photos`): gone after the retention period, then the user is told to
   send it again;
5. the describer's answer within the timeout. A question that got no answer is refunded unless
   the provider billed it anyway; the answer is untrusted text, cleaned in `core.describe.prompt`,
   and every adapter escapes it like a caption.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from io import BytesIO

from PIL import Image

from bot.access import AccessPolicy
from bot.kept_photos import KeptPhotos
from bot.photo_requests import FileRef, PhotoRequest
from bot.quota.base import QuotaStore, QuotaStoreUnavailable
from bot.quota.models import QuotaPolicy
from bot.service import TRY_AGAIN_SHORTLY, refusal_message
from core.analysis_types import ExifData, Feature, PreparedPhoto
from core.describe import prompt
from core.describe.base import Describer
from core.describe.errors import DescribeFailed

log = logging.getLogger(__name__)

NOT_KEPT = "I no longer have that photo (photos are kept for {period} for questions). Send it again to ask."
EMPTY_QUESTION = "Ask a question about the photo in words, e.g. “what is on the wall?”."
NO_ANSWER = "Sorry, the describer could not answer that question ({reason}). You were not charged."
NOT_ALLOWED = "This bot is not enabled here."


def period(seconds: float) -> str:
    """ "24 h", "90 min" or "30 s": the retention in the unit a person would use."""
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def privacy_lines(capabilities: frozenset[Feature], questions: QuestionService | None) -> list[str]:
    """What the describer changes in a platform's privacy text: where else the photo goes, what is kept."""
    if Feature.DESCRIBE not in capabilities:
        return []
    if questions is None:
        where = "a language model chosen by the operator"
    elif questions.describer.hosted:
        where = f"a hosted language model ({questions.describer.name}, {questions.describer.model})"
    else:
        where = f"a language model on this bot's own servers ({questions.describer.model})"
    lines = [
        f"For a caption, the same downsized copy without camera or location data is sent to {where}, "
        "with the labels found; never your name, the chat or the photo's camera data."
    ]
    if questions is not None and questions.retention_s > 0:
        lines.append(
            f"For {period(questions.retention_s)}: that copy of each answered photo, so you can ask about it "
            "by replying to the answer; then it is deleted."
        )
    return lines


def photo_key(platform: str, workspace_id: str, chat_id: str, message_id: str) -> str:
    """The key a photo is kept under: its conversation and the message it came in (hashed)."""
    raw = "\x1f".join([platform, workspace_id, chat_id, message_id])
    return f"{platform}:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class Question:
    """A question as an adapter hands it over: who asks, where, about which photo, in which message."""

    platform: str
    user_id: str
    chat_id: str
    message_id: str  # the question's own message, for idempotency
    photo: str  # `photo_key` of the photo asked about
    text: str
    workspace_id: str = ""

    def as_request(self) -> PhotoRequest:
        """The question as a request, for the access rule and the quota identity photos use."""
        return PhotoRequest(
            self.platform,
            self.user_id,
            self.chat_id,
            self.message_id,
            FileRef(f"question:{self.photo}"),
            frozenset(),
            workspace_id=self.workspace_id,
        )


@dataclass(frozen=True)
class QuestionReply:
    """What to tell the asker; `answered` is False for a refusal or a failure (then `text` says why)."""

    text: str
    answered: bool
    charged: bool


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class QuestionService:
    """Checks, charges and answers questions; one per process, shared by the adapters."""

    def __init__(
        self,
        *,
        describer: Describer,
        kept: KeptPhotos,
        quota: QuotaStore,
        policy: QuotaPolicy,
        access: AccessPolicy,
        questions_per_hour: int,
        retention_s: float,
        timeout_s: float,
        clock: Clock = utc_now,
    ) -> None:
        self.describer = describer
        self.kept = kept
        self.quota = quota
        self.policy = policy
        self.access = access
        self.retention_s = retention_s
        self.timeout_s = timeout_s
        self.clock = clock
        # The question rate as a second quota identity: its burst window is the hour.
        self.rate_policy = replace(
            policy,
            daily_limit=max(questions_per_hour, 1) * 24,
            max_concurrent=max(questions_per_hour, 1),
            burst_limit=max(questions_per_hour, 1),
            burst_window_s=3600.0,
            global_daily_calls=None,
        )
        self.questions_per_hour = questions_per_hour

    async def keep(self, key: str, jpeg: bytes) -> None:
        """Keep a prepared photo for questions (the worker calls this once the photo is analysed)."""
        if self.retention_s > 0:
            await self.kept.keep(key, jpeg, self.clock().timestamp(), self.retention_s)

    async def has_photo(self, key: str) -> bool:
        """Whether a photo is kept under `key`: lets an adapter tell a question from other talk."""
        return await self.kept.get(key, self.clock().timestamp()) is not None

    async def ask(self, question: Question, photo: bytes | None = None) -> QuestionReply:
        """Answer one question, or say plainly why not; never raises for the user's input.

        `photo` is the prepared JPEG when the adapter keeps it itself (the web page keeps it with
        its result); otherwise it is looked up in the kept photos under `question.photo`.
        """
        request = question.as_request()
        if not self.access.permits(request):
            return QuestionReply(NOT_ALLOWED, answered=False, charged=False)
        text = prompt.clean_question(question.text)
        if text is None:
            return QuestionReply(EMPTY_QUESTION, answered=False, charged=False)
        if self.questions_per_hour <= 0 or (photo is None and self.retention_s <= 0):
            return QuestionReply("Questions about photos are turned off here.", answered=False, charged=False)
        now = self.clock()
        if photo is None:
            await self._purge(now)
        jpeg = photo if photo is not None else await self.kept.get(question.photo, now.timestamp())
        if jpeg is None:
            return QuestionReply(
                NOT_KEPT.format(period=period(self.retention_s)), answered=False, charged=False
            )
        refused = await self._charge(request, now)
        if refused is not None:
            return QuestionReply(refused, answered=False, charged=False)
        try:
            answer = await asyncio.wait_for(self.describer.ask(_photo(jpeg), text), self.timeout_s)
        except (TimeoutError, DescribeFailed) as failure:
            billed = isinstance(failure, DescribeFailed) and failure.billed
            reason = "it took too long" if isinstance(failure, TimeoutError) else str(failure).rstrip(".")
            await self._settle(request, refund=not billed)
            if billed:
                return QuestionReply(f"Sorry, no answer: {reason}.", answered=False, charged=True)
            return QuestionReply(NO_ANSWER.format(reason=reason), answered=False, charged=False)
        await self._settle(request, refund=False)
        return QuestionReply(answer.text, answered=True, charged=True)

    async def _purge(self, now: datetime) -> None:
        """Delete expired photos (the SQLite store also does at every keep; Redis expires them itself)."""
        try:
            await self.kept.purge(now.timestamp())
        except Exception as error:  # a store hiccup costs nothing here: expired photos are never read
            log.warning("could not purge expired photos: %s", type(error).__name__)

    async def _charge(self, request: PhotoRequest, now: datetime) -> str | None:
        """Charge the question rate, then the quota; the refusal's words, or None when both granted."""
        admin = self.access.is_admin(request.user_key)
        calls = 1 if self.describer.hosted else 0
        rate_key, quota_key = _keys(request)
        try:
            rate = await self.quota.try_charge(
                f"ask:{request.user_key}", rate_key, 0, now, self.rate_policy, admin
            )
            if not rate.granted:
                wait = rate.retry_after or 60
                return (
                    f"You can ask at most {self.questions_per_hour} questions per hour. "
                    f"Try again in {wait} s."
                )
            charge = await self.quota.try_charge(request.user_key, quota_key, calls, now, self.policy, admin)
        except QuotaStoreUnavailable:
            return TRY_AGAIN_SHORTLY
        if not charge.granted:
            await self._finish(rate_key, refund=True)  # this question was not asked after all
            return refusal_message(charge, self.policy, now)
        return None

    async def _settle(self, request: PhotoRequest, *, refund: bool) -> None:
        """Finish both charges of a question: its place in the hour's rate and its quota charge."""
        rate_key, quota_key = _keys(request)
        await self._finish(rate_key, refund=refund)
        await self._finish(quota_key, refund=refund)

    async def _finish(self, key: str, *, refund: bool) -> None:
        try:
            await self.quota.finish(key, refund=refund)
        except QuotaStoreUnavailable as error:
            log.warning("could not settle question %s: %s", key, error.detail)


def _keys(request: PhotoRequest) -> tuple[str, str]:
    """The question's two charge ids (rate and quota), from its message: a redelivery finds them."""
    return f"askrate:{request.idempotency_key}", f"ask:{request.idempotency_key}"


def _photo(jpeg: bytes) -> PreparedPhoto:
    """The kept JPEG as the describer takes it: it only reads the JPEG's bytes."""
    with Image.open(BytesIO(jpeg)) as image:
        image.load()
        return PreparedPhoto(
            image=image.copy(),
            jpeg=jpeg,
            source_format="JPEG",
            original_width=image.width,
            original_height=image.height,
            orientation=1,
            exif=ExifData(),
        )
