"""Getting a finished answer to the user: once, and through a platform outage of up to a day.

The worker hands every answer (an analysis, or a failure notice) to a `Courier`. It sends through
the platform's `ReplyPort` under the queue's reply marker, so two attempts never both answer
(`JobQueue.mark_reply_started`). When the port says the platform failed for a transient reason
(`DeliveryFailed` with `permanent` False: 5xx, 429, a timeout, no connection), the answer is
written into the job (`bot.stored_answers`) and the job goes back to the queue (`JobQueue.defer`)
to be sent again after a backoff: exponential from `backoff_s`, capped at `backoff_max_s` so the
answer goes out within about that long after the platform recovers, with jitter so a recovering
platform is not hit by every waiting answer at once, and never sooner than a `retry_after` the
platform asked for. Meanwhile the photo is neither analysed nor charged again, and a worker may
stop or die: the answer is in the queue, not in memory.

Past the delivery horizon (`horizon_s`, counted from the first failed delivery) the answer is
stale: the user's charge is refunded and the answer replaced by one apology, which waits for the
platform like any answer; once it is delivered (or refused, or a second horizon passed) the job
is dead-lettered with why. A permanent refusal (the bot blocked, the chat
gone, a bad request) ends the job at once, refunded, as a dead letter.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.metrics import Metrics
from bot.photo_requests import FailureReply, Outcome
from bot.ports import DeliveryFailed, ReplyPort, uses_prepared_image
from bot.queue.base import JobQueue, QueueError
from bot.queue.models import FailOutcome, Lease
from bot.stored_answers import StoredAnswer, dump_answer

log = logging.getLogger(__name__)

REPLY_POLL_S = 0.25  # how often an attempt waiting on another attempt's reply looks again
#: How long a delivery already in flight when the worker is cancelled may still finish: about one
#: HTTP request. Past it the send is cut and the answer goes back to the queue.
CANCEL_WAIT_S = 1.0

APOLOGY = (
    "Sorry, I analysed your photo but could not send you the answer: {platform} was unavailable "
    "for too long. Please send the photo again. You were not charged."
)


#: The failure reason of the apology (`Courier.apology`).
UNDELIVERED = "undelivered"


def is_apology(outcome: Outcome) -> bool:
    """Whether `outcome` is the apology for an answer that went stale (see `Courier.apology`)."""
    return isinstance(outcome, FailureReply) and outcome.reason == UNDELIVERED


@dataclass(frozen=True)
class DeliveryPolicy:
    """How long and how often an undelivered answer is tried again (settings in bot.settings)."""

    backoff_s: float = 2.0
    backoff_max_s: float = 60.0
    horizon_s: float = 24 * 3600.0

    def delay_s(
        self,
        failed_tries: int,
        retry_after_s: float | None,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> float:
        """The wait before the next try after `failed_tries` failures (1 after the first).

        "Equal jitter": half the exponential step for sure, the other half random, so waits stay
        spread out yet never collapse to zero; never less than the platform's `retry_after_s`.
        """
        step = min(self.backoff_max_s, self.backoff_s * 2.0 ** max(failed_tries - 1, 0))
        delay = step / 2 + uniform(0.0, step / 2)
        if retry_after_s is not None and retry_after_s > delay:
            delay = retry_after_s + uniform(0.0, min(1.0, retry_after_s / 10))
        return delay


class Sent(enum.Enum):
    """What became of one delivery."""

    SENT = "sent"  # the platform took the answer (at least its first message)
    ANSWERED_ELSEWHERE = "answered_elsewhere"  # another attempt answered: nothing to do here
    REFUSED = "refused"  # refused for good (or no port, or a bug in it): the user got nothing
    DEFERRED = "deferred"  # back in the queue with the answer, to be tried again later
    LOST = "lost"  # neither sent nor deferred: this attempt lost its lease (another holds the job)


@dataclass(frozen=True)
class Delivery:
    result: Sent
    reason: str = ""


class Interrupted(Exception):
    """The worker was cancelled while delivering; `delivery` is how it was left (sent or deferred)."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__(delivery.result.value)
        self.delivery = delivery


class Courier:
    """Sends answers for the worker: at most once, deferring them through platform outages."""

    def __init__(
        self,
        *,
        queue: JobQueue,
        replies: Mapping[str, ReplyPort],
        policy: DeliveryPolicy,
        takeover_after_s: float,
        clock: Callable[[], float],
        metrics: Metrics,
    ) -> None:
        self.queue = queue
        self.replies = replies
        self.policy = policy
        self.takeover_after_s = takeover_after_s
        self.clock = clock
        self.metrics = metrics

    def expired(self, lease: Lease) -> bool:
        """Whether the stored answer of `lease` has waited past the delivery horizon."""
        since = lease.answer_since
        return since is not None and self.clock() - since >= self.policy.horizon_s

    def apology(self, outcome: Outcome) -> FailureReply:
        """The one message a user gets instead of an answer that could not be delivered in time."""
        platform = outcome.request.platform.capitalize()
        return FailureReply(outcome.request, UNDELIVERED, APOLOGY.format(platform=platform), False)

    async def send(self, lease: Lease, answer: StoredAnswer, *, fresh: bool = True) -> Delivery:
        """Deliver `answer` once; on a transient failure put it back in the queue.

        `fresh`: the answer is not the one the lease carries (a new analysis, or an apology in
        place of a stale answer), so a deferral stores it; otherwise the stored one is kept.

        Raises `Interrupted` when cancelled, after the send finished within `CANCEL_WAIT_S` or
        was cut and the answer deferred, so the caller can settle what happened and re-raise.
        """
        outcome = answer.outcome
        port = self.replies.get(outcome.request.platform)
        if port is None:
            log.error(
                "no reply port for platform %r; job %s unanswered", outcome.request.platform, lease.job_id
            )
            return Delivery(Sent.REFUSED, f"no reply port for platform {outcome.request.platform!r}")
        if not await self._may_reply(lease):
            return Delivery(Sent.ANSWERED_ELSEWHERE)
        recorded = False

        async def accepted() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            try:
                await self.queue.mark_reply_sent(lease.job_id)
            except QueueError as exc:
                # The answer is out; if the job is reclaimed before it ends, it may go twice.
                log.warning("job %s: could not record its reply as sent: %s", lease.job_id, exc)

        sending = asyncio.ensure_future(port.deliver(outcome, accepted))
        try:
            await asyncio.shield(sending)
        except asyncio.CancelledError:
            if not sending.done():  # the worker is stopping: let the send finish or cut it
                finished, _ = await asyncio.wait({sending}, timeout=CANCEL_WAIT_S)
                if not finished:
                    sending.cancel()
                    await asyncio.wait({sending})
                if recorded or _failure_of(sending) is None:
                    await accepted()
                    raise Interrupted(Delivery(Sent.SENT)) from None
                deferred = await self._defer(lease, answer, port, "stopped while delivering", None, fresh)
                raise Interrupted(deferred) from None
        except Exception:  # noqa: S110 - read below, from the finished send
            pass
        failure = _failure_of(sending)
        if recorded:
            if failure is not None:  # its first message went out; only a follow-up failed
                log.warning(
                    "reply for job %s was cut short after its first message: %s", lease.job_id, failure
                )
            return Delivery(Sent.SENT)
        if failure is None:
            await accepted()
            return Delivery(Sent.SENT)
        if isinstance(failure, DeliveryFailed) and not failure.permanent:
            return await self._defer(lease, answer, port, failure.reason, failure.retry_after_s, fresh)
        if not isinstance(failure, DeliveryFailed):
            log.error(
                "reply port for %s raised %s; ending job %s",
                outcome.request.platform,
                type(failure).__name__,
                lease.job_id,
                exc_info=failure,
            )
        reason = failure.reason if isinstance(failure, DeliveryFailed) else type(failure).__name__
        log.warning("reply for job %s not delivered, for good: %s", lease.job_id, reason)
        return Delivery(Sent.REFUSED, reason)

    async def _defer(
        self,
        lease: Lease,
        answer: StoredAnswer,
        port: ReplyPort,
        reason: str,
        retry_after_s: float | None,
        fresh: bool,
    ) -> Delivery:
        """Put the answer back in the queue to be tried after a backoff (the lease ends here)."""
        delay = self.policy.delay_s(lease.delivery_tries + 1, retry_after_s)
        # A stored answer is not written again on each retry: the image is the bulk of it.
        text = dump_answer(answer, keep_prepared=uses_prepared_image(port)) if fresh else None
        try:
            verdict = await self.queue.defer(lease, text, f"not delivered: {reason}", self.clock(), delay)
        except QueueError as exc:
            # The lease runs out and the job is analysed and answered again: late, but not lost.
            log.warning("job %s: could not keep its answer for later (%s): %s", lease.job_id, reason, exc)
            return Delivery(Sent.LOST, reason)
        if verdict is FailOutcome.LEASE_LOST:
            log.info("job %s: another worker holds it now; it answers", lease.job_id)
            return Delivery(Sent.LOST, reason)
        self.metrics.delivery_retries.labels(platform=answer.outcome.request.platform).inc()
        log.info(
            "job %s: %s unavailable (%s); answer kept, next try in %.1f s (try %d)",
            lease.job_id,
            answer.outcome.request.platform,
            reason,
            delay,
            lease.delivery_tries + 1,
        )
        return Delivery(Sent.DEFERRED, reason)

    async def _may_reply(self, lease: Lease) -> bool:
        """Mark this attempt's reply as begun; while another attempt is sending, wait for it.

        A refusal means the reply was sent, or another attempt began it. If that one is alive it
        records "sent" within moments, and this attempt only completes the job; if it died
        mid-send, its mark becomes old enough to take over (`takeover_after_s`) and this
        attempt answers. Past that wait, the other attempt is a later one: it answers.
        """
        timeout = self.takeover_after_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout + REPLY_POLL_S
        while not await self.queue.mark_reply_started(lease.job_id, lease.attempt, self.clock(), timeout):
            if await self.queue.reply_sent(lease.job_id) or loop.time() > deadline:
                return False
            await asyncio.sleep(REPLY_POLL_S)
        return True


def _failure_of(sending: asyncio.Future[None]) -> BaseException | None:
    """What a finished send raised (a `DeliveryFailed`, a bug, or its cut at shutdown), or None."""
    if sending.cancelled():
        return DeliveryFailed("the send was cut at shutdown", permanent=False)
    return sending.exception()
