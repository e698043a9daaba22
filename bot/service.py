"""The service layer adapters call: submit a photo, ask about quota, and the admin functions.

`submit` answers at once with a verdict the adapter can show ("queued, 2 ahead of you" or why
not); the work itself happens later in `bot.worker`. The order inside `submit` is what keeps
"nothing lost, charged twice or answered twice": the charge and the job are both keyed by the
platform message, so a redelivered message finds the same charge and the same job. A charge that
was refunded no longer stands: a redelivery is charged again, unless its job already exists, in
which case that new charge is given back at once (see `PhotoService._submit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.access import AccessPolicy
from bot.metrics import Metrics
from bot.notices import TOO_LARGE, blocked_text, describe_reset, photos, too_large_message
from bot.photo_requests import PhotoRequest
from bot.preferences import PreferencesStore, PreferencesUnavailable
from bot.queue.base import JobQueue, QueueError
from bot.quota.base import QuotaStore, QuotaStoreUnavailable
from bot.quota.models import ChargeResult, QuotaPolicy, Refusal, Stats, Usage
from core.analysis_types import Feature

if TYPE_CHECKING:
    from bot.questions import QuestionService

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
FIRST_WAIT_S = 0.25
LONGEST_WAIT_S = 4.0

TRY_AGAIN_SHORTLY = "The bot is busy right now; please try again shortly."


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Accepted:
    """The photo is stored and will be answered; `duplicate` when this message was already accepted."""

    job_id: str
    ahead: int
    duplicate: bool
    remaining: int

    @property
    def message(self) -> str:
        """The quick acknowledgement an adapter may show while the photo waits."""
        if self.ahead:
            return f"Got it: queued, {self.ahead} ahead of you."
        return "Got it: analysing your photo."


@dataclass(frozen=True)
class Refused:
    """Not accepted, and not charged; `message` is friendly and says when to try again if it can."""

    reason: str
    message: str
    retry_after: int | None = None


Verdict = Accepted | Refused


def billed_calls(features: frozenset[Feature], capabilities: frozenset[Feature]) -> int:
    """Billed units one photo costs: one per feature the recognizer runs (0 offline).

    Labels and image properties share one DetectLabels request, but AWS bills Image Properties
    per image on top of the labels, so each counts (docs/recognizers/rekognition-costs.md).
    """
    return len(features & capabilities)


def refusal_message(charge: ChargeResult, policy: QuotaPolicy, now: datetime) -> str:
    """The sentence shown for a quota refusal: what limit was hit and when it lifts.

    The reset time is shown in the quota's own zone (`policy.timezone`), whatever zone the store
    handed back, because that is the midnight the limit is counted to.
    """
    reset = describe_reset(charge.resets_at.astimezone(policy.zone), now)
    match charge.reason:
        case Refusal.BLOCKED:
            return blocked_text("this bot")
        case Refusal.DAILY_LIMIT:
            return f"You have used all {photos(charge.limit)} for today. Your quota resets {reset}."
        case Refusal.GLOBAL_CAP:
            return f"The bot has reached its analysis budget for today. It resets {reset}."
        case Refusal.CONCURRENCY:
            return (
                f"You already have {photos(policy.max_concurrent)} being analysed. "
                "Send this one again when they are done."
            )
        case Refusal.RATE:
            return (
                f"Slow down a little: at most {photos(policy.burst_limit)} per "
                f"{policy.burst_window_s:g} s. Try again in {charge.retry_after or 1} s."
            )
    return TRY_AGAIN_SHORTLY


class PhotoService:
    """Submission and quota questions, for every adapter; holds no per-platform knowledge."""

    def __init__(
        self,
        *,
        queue: JobQueue,
        quota: QuotaStore,
        policy: QuotaPolicy,
        access: AccessPolicy,
        capabilities: frozenset[Feature],
        max_bytes: int,
        preferences: PreferencesStore,
        default_features: frozenset[Feature],
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
        backend: str = "none",
        outage_patience_s: float = 0.0,
        sleep: Sleep = asyncio.sleep,
        questions: QuestionService | None = None,
        unbilled: frozenset[Feature] = frozenset(),
    ) -> None:
        self.queue = queue
        self.quota = quota
        self.policy = policy
        self.access = access
        self.capabilities = capabilities
        self.max_bytes = max_bytes
        self.preferences = preferences
        self.default_features = default_features
        self.clock = clock
        self.metrics = metrics or Metrics()
        # The recognizer's name ("rekognition", "local", "none"), for /help and privacy texts.
        self.backend = backend
        # How long `submit` waits out a queue or quota store that cannot be reached (see there).
        self.outage_patience_s = outage_patience_s
        # Questions about answered photos (bot.questions), when a describer is configured.
        self.questions = questions
        # Features that run but cost nothing (a describer on the operator's own machines): no unit
        # of the daily cost cap is counted for them.
        self.unbilled = unbilled
        self._sleep = sleep

    async def submit(self, request: PhotoRequest) -> Verdict:
        """Check access, size and quota, charge, and store the job; all before the adapter acks.

        Counted in the metrics: every photo received, and accepted or refused by reason.
        """
        self.metrics.received.labels(platform=request.platform).inc()
        verdict = await self._submit_patiently(request)
        if isinstance(verdict, Accepted):
            if not verdict.duplicate:
                self.metrics.accepted.labels(platform=request.platform).inc()
        else:
            self.metrics.refused.labels(reason=verdict.reason).inc()
        return verdict

    async def _submit_patiently(self, request: PhotoRequest) -> Verdict:
        """`_submit`, tried again while the stores cannot be reached, for up to `outage_patience_s`.

        A Redis restart or a failover takes a second or two. Telling everyone who sent a photo in
        that moment to send it again is worse than making them wait: the charge and the job are
        keyed by the message, so trying again is safe, and a store that is back within the
        patience turns the outage into a short delay. Past it the user is told to try again.
        The waits double from `FIRST_WAIT_S` up to `LONGEST_WAIT_S`, and their sum stays within
        the patience (0: no second try); each try adds its own time, at most the store's timeout
        (2 s for Redis), so an unreachable host holds a photo for about twice the patience.
        """
        waited, wait = 0.0, FIRST_WAIT_S
        while True:
            verdict = await self._submit(request)
            if not isinstance(verdict, Refused) or verdict.reason != UNAVAILABLE:
                return verdict
            wait = min(wait, self.outage_patience_s - waited)
            if wait <= 0:
                log.warning(
                    "the stores stayed unreachable for %.1f s; refusing %s", waited, request.idempotency_key
                )
                return verdict
            log.info("the stores are unreachable; trying %s again in %.2f s", request.idempotency_key, wait)
            await self._sleep(wait)
            waited += wait
            wait = min(2 * wait, LONGEST_WAIT_S)

    async def _submit(self, request: PhotoRequest) -> Verdict:
        """The checks and the charge behind `submit`.

        The charge comes first and is keyed by the message, so a crash between charging and
        storing is healed by the platform's redelivery (same key: no second charge); a store
        failure after charging refunds at once.

        A refunded charge does not stand (see `QuotaStore`, Idempotency), so the redelivery of a
        message refunded here because the queue failed is charged again, and the limits apply to
        it. But a fresh charge for a job the queue already holds (`created` False: the job ran,
        failed on our side and was refunded, and the platform redelivers the message later) pays
        for nothing, since no new work is queued: it is refunded at once, and the verdict is the
        usual duplicate one.
        """
        if not self.access.permits(request):
            return Refused("not_allowed", "This bot is not enabled here.")
        if request.file.size is not None and request.file.size > self.max_bytes:
            return Refused(TOO_LARGE, too_large_message(request.file.size, self.max_bytes))
        now = self.clock()
        key = request.idempotency_key
        try:
            charge = await self.quota.try_charge(
                request.user_key,
                key,
                billed_calls(request.features, self.capabilities - self.unbilled),
                now,
                self.policy,
                admin=self.access.is_admin(request.user_key),
            )
        except QuotaStoreUnavailable:
            return Refused(UNAVAILABLE, TRY_AGAIN_SHORTLY)
        if not charge.granted:
            return Refused(
                str(charge.reason).lower(), refusal_message(charge, self.policy, now), charge.retry_after
            )
        try:
            stored = await self.queue.enqueue(key, request.user_key, request.to_json(), now.timestamp())
        except QueueError:
            if not charge.duplicate:
                await self._refund_quietly(key)
            return Refused(UNAVAILABLE, TRY_AGAIN_SHORTLY)
        except Exception:
            # Not stored (a payload the queue refuses, a bug): the charge must not outlive the job.
            # A cancellation is not caught: the job may have been stored after all, and a
            # redelivery of the message finds the same charge and the same job.
            if not charge.duplicate:
                await self._refund_quietly(key)
            raise
        remaining = charge.remaining
        if not charge.duplicate and not stored.created and await self._refund_quietly(key):
            # The photo just charged is given back (an admin already past the limit really has 0).
            remaining = min(charge.remaining + 1, charge.limit)
        return Accepted(
            job_id=stored.job_id,
            ahead=stored.ahead,
            duplicate=charge.duplicate or not stored.created,
            remaining=remaining,
        )

    async def _refund_quietly(self, key: str) -> bool:
        """Give a charge back, returning whether it was; a store outage is not the user's problem.

        If even this fails, the slot's lease (policy.max_job_s) frees it; the day's charge stays.
        """
        with contextlib.suppress(QuotaStoreUnavailable):
            return await self.quota.finish(key, refund=True)
        return False

    async def usage(self, user_key: str) -> Usage:
        """What `/quota` shows: used, left, and when it resets."""
        return await self.quota.usage(user_key, self.clock(), self.policy)

    async def grant(self, user_key: str, extra: int) -> Usage:
        """Give a user `extra` photos for today (an admin's action)."""
        return await self.quota.grant(user_key, extra, self.clock(), self.policy)

    async def block(self, user_key: str) -> bool:
        return await self.quota.block(user_key)

    async def unblock(self, user_key: str) -> bool:
        return await self.quota.unblock(user_key)

    async def stats(self) -> Stats:
        """Today's usage statistics for admins."""
        return await self.quota.stats(self.clock(), self.policy)

    async def features_for(self, user_key: str) -> frozenset[Feature]:
        """The analyses this user chose with /features, or the deployment's default."""
        try:
            stored = await self.preferences.get("features", user_key)
        except PreferencesUnavailable:
            return self.default_features
        if stored is None:
            return self.default_features
        return frozenset(Feature(name) for name in stored.split(",") if name in Feature.__members__.values())

    async def set_features(self, user_key: str, features: frozenset[Feature] | None) -> None:
        """Remember a user's choice of analyses; None goes back to the default."""
        value = None if features is None else ",".join(sorted(f.value for f in features))
        await self.preferences.set("features", user_key, value)

    async def analyses_every_photo(self, chat_key: str) -> bool | None:
        """Whether a group chose to have every photo analysed (None: not chosen, the adapter's default)."""
        try:
            stored = await self.preferences.get("auto", chat_key)
        except PreferencesUnavailable:
            return None
        return None if stored is None else stored == "1"

    async def set_analyses_every_photo(self, chat_key: str, enabled: bool | None) -> None:
        """A group admin's choice: analyse every photo, only when asked, or back to the default."""
        await self.preferences.set("auto", chat_key, None if enabled is None else ("1" if enabled else "0"))
