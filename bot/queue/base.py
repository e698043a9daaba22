"""The durable job queue's interface, its typed errors, and the rules both backends share.

The semantics are written here once so the SQLite and Redis backends can be checked against one
description and one contract test module (tests/contract/test_queue_contract.py).

Life of a job::

    enqueue ──> queued ──claim──> leased ──complete──> done
                  ^                 │ │
                  │ release         │ └──fail (not retryable, or attempts used up)──> dead
                  │ fail (retry,    │
                  │  after backoff) │ lease expired (worker died): claimable again, counts an attempt;
                  └─────────────────┘ with its attempts used up it is handed out ONCE more as an
                                      `exhausted` lease (to be answered and dead-lettered, not
                                      retried); if that lease expires too, it goes to dead at the
                                      next claim

- Order: jobs are claimed in enqueue order (FIFO). A job that is retried, released or whose lease
  expired keeps its original place, so it goes before jobs enqueued after it.
- Idempotency: `enqueue` with a key already known returns the existing job (`created=False`) and
  adds nothing, whatever state the job is in, for as long as the job is retained (`retention_s`
  after it finished; a queued or leased job is always retained).
- Attempts: each claim counts one attempt, except that `release` gives it back. `fail` retries
  while `attempt < max_attempts` and the error is retryable, waiting `retry_delay_s(attempt)`;
  otherwise the job becomes a dead letter. A lease that expires counts as a failed attempt: the
  job is handed to the next claimer with `attempt + 1`.
- Exhaustion (a photo that kills its worker every time must neither loop forever nor vanish
  unanswered): when the expired lease had used up the attempts (`attempt >= max_attempts`), the
  next claim hands the job out one last time with `Lease.exhausted` True. Its holder does not try
  the job again: it dead-letters it (`fail(..., retryable=False)`), sends the user one failure
  answer through the reply marker and refunds the quota (bot/worker.py). The job stays marked
  exhausted for good: `release` gives it back still exhausted (the next claim hands it out
  exhausted again), and when an exhausted lease expires too, the next claim dead-letters the job
  with `EXPIRED_ERROR` without handing it out again, so a job is handed out at most
  `max_attempts + 1` times (not counting releases). That last, bounded case (the holder of the
  exhausted lease died too, during a few short calls that do not touch the photo) and a holder
  dying between its `fail` and its answer are the only ways a job ends with no answer and no
  refund (the user's concurrency slot still frees itself). None of this applies once its reply
  started (see `JobQueue.mark_reply_started`): such a job is always handed out, to be completed.
- Leases: only the holder of the current token may extend, complete, fail or release. A stale
  lease gets `False` / `None` / `FailOutcome.LEASE_LOST` and changes nothing. Completing twice
  with the same lease returns True both times (a client that lost the answer may safely repeat).
- Delivery retries (an answer ready, its platform down): `defer` puts a leased job back with its
  finished answer stored in the queue (opaque text, `bot.stored_answers`), to be claimed again
  after `delay_s`. It does not count an attempt, keeps the job's place in line, counts a delivery
  try, remembers when the first one failed (`Lease.answer_since`) and clears the reply marker: the
  attempt that deferred says the user has seen nothing. A job holding an answer is never
  exhausted or dead-lettered by expiring leases (it will not be analysed again, so it cannot kill
  a worker the way a photo can); the worker ends it at its delivery horizon instead. The stored
  answer is dropped when the job is done or dead, so retained jobs stay small.
- Errors: a backend that cannot be reached raises `QueueUnavailable` quickly and recovers by itself.
"""

from __future__ import annotations

import math
import secrets
import uuid
from typing import Any, Protocol

from bot.queue.models import DeadLetter, EnqueueResult, FailOutcome, Lease, QueueStats

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RETRY_BACKOFF_S = 2.0
MAX_RETRY_DELAY_S = 300.0
DEFAULT_RETENTION_S = 7 * 24 * 3600.0
MAX_VISIBILITY_TIMEOUT_S = 24 * 3600.0
MAX_ERROR_CHARS = 2000
#: The longest a deferred delivery waits before it is claimable again (a platform's retry_after
#: beyond this is not honoured to the letter; the worker's horizon is normally shorter anyway).
MAX_DEFER_DELAY_S = 24 * 3600.0

EXPIRED_ERROR = (
    "the lease expired %d times without the job finishing; the worker probably crashed or was killed"
)
"""Why a job whose leases kept expiring is dead (a %-format with the count of expired leases).

Stored by `claim` when an exhausted lease expired too; the worker that holds an exhausted lease
uses it as the error it passes to `fail`.
"""


class QueueError(Exception):
    """Base class of the errors the job queue raises on purpose."""


class QueueUnavailable(QueueError):
    """The queue's storage cannot be reached (Redis down or too slow, SQLite locked or unwritable).

    The message is safe to show in a chat ("try again shortly"); `detail` is for the logs. Nothing
    needs reopening: the next call after the backend is back works.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("Photo jobs cannot be queued right now; please try again shortly.")
        self.detail = detail


class QueueClosed(QueueError):
    """The queue object was closed; a programming error in the caller's shutdown order."""


class JobNotFound(QueueError):
    """No job with that id is retained (never existed, or pruned after `retention_s`)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} in the queue")
        self.job_id = job_id


class JobQueue(Protocol):
    """A durable FIFO of photo jobs with leases, retries, dead letters and a reply marker.

    All methods are coroutines; `now` is UNIX seconds. Implementations: `SqliteJobQueue` (default,
    one file in the data directory) and `RedisJobQueue` (Redis Streams, for several processes or
    containers). Several processes may share one queue; each job is leased to one worker at a time.

    The worker loop the queue is designed for (the reply marker is what prevents double answers)::

        lease = await queue.claim(worker_id, time.time(), VISIBILITY_TIMEOUT_S)
        if lease is not None:
            if await queue.reply_started(lease.job_id):   # an earlier attempt already answered
                await queue.complete(lease)
            elif lease.exhausted:                          # it killed its workers: don't retry
                if await queue.fail(lease, why, now, retryable=False) is FailOutcome.DEAD:
                    if await queue.mark_reply_started(lease.job_id):
                        await send_reply("could not be analysed; not charged")
                    refund_quota()
            else:
                result = lease.answer or await analyse(lease.payload)  # extend() meanwhile
                if await queue.mark_reply_started(lease.job_id):
                    if not await send_reply(result):       # the platform is down for now
                        await queue.defer(lease, result, why, now, backoff)
                        return
                await queue.complete(lease)
    """

    async def enqueue(
        self, idempotency_key: str, user: str, payload: dict[str, Any], now: float
    ) -> EnqueueResult:
        """Add a job unless one with `idempotency_key` (platform:chat:message) is already retained.

        The key makes a platform's redelivery of the same message (webhook retries, a restarted
        poller) harmless: the existing job comes back with `created=False` and nothing is added.
        `payload` must be JSON-serialisable (TypeError/ValueError otherwise); the queue never reads it.
        """
        ...

    async def claim(self, worker_id: str, now: float, visibility_timeout_s: float) -> Lease | None:
        """Lease the oldest claimable job to `worker_id` for `visibility_timeout_s`, or None if none is.

        Claimable: queued and past any retry backoff, or leased with an expired lease (its worker
        died or stalled). Atomic across processes: two claimers never get the same job while its
        lease is valid.

        An expired lease that had used up the attempts makes the job come back with
        `Lease.exhausted` True (once; see "Exhaustion" in the module docstring): the caller must
        answer and dead-letter it instead of trying again. An expired lease that was itself
        exhausted is dead-lettered here (error `EXPIRED_ERROR`) and the claim moves on to the next
        job. A job whose reply started is handed out regardless, to be completed.
        """
        ...

    async def extend(self, lease: Lease, now: float, visibility_timeout_s: float) -> Lease | None:
        """Heartbeat: push the lease's deadline to `now + visibility_timeout_s`.

        Returns the updated lease, or None when the lease is stale (the worker should stop: another
        worker owns the job now). A late heartbeat on an expired lease nobody reclaimed still works.
        """
        ...

    async def complete(self, lease: Lease, now: float | None = None) -> bool:
        """Mark the job done; False (and no change) when the lease is stale.

        `now` (default: the wall clock) stamps when it finished, which starts its retention period.
        """
        ...

    async def fail(self, lease: Lease, error: str, now: float, retryable: bool) -> FailOutcome:
        """Record a failed attempt: retry after a backoff, or dead-letter the job.

        Dead-lettered when `retryable` is False (the user's input is at fault, retrying cannot help,
        or the lease is `exhausted`) or when `lease.attempt >= max_attempts`. `error` is stored
        (clipped) for the dead letter.
        """
        ...

    async def defer(
        self, lease: Lease, answer: str | None, error: str, now: float, delay_s: float
    ) -> FailOutcome:
        """Put the job back with its finished answer, to be delivered by a later claim after `delay_s`.

        For an answer the platform did not take for a transient reason (see "Delivery retries" in
        the module docstring). `answer` is stored, replacing any earlier one; None keeps the one
        stored (a retry of a retry need not write the image again). `error` (clipped) says why, for
        the logs and a later dead letter. `delay_s` is clipped to [0, MAX_DEFER_DELAY_S].
        The attempt is not counted, `delivery_tries` grows by one, `answer_since` is set to `now`
        on the first deferral and kept after, and the reply marker is cleared.
        Returns `FailOutcome.RETRY`, or `LEASE_LOST` (and no change) for a stale lease.
        """
        ...

    async def release(self, lease: Lease) -> bool:
        """Give the job back at once without counting the attempt (graceful shutdown).

        It keeps its place at the front of the line, and stays exhausted if the lease was: the next
        claim hands it out exhausted again. False (and no change) when the lease is stale.
        """
        ...

    async def mark_reply_started(
        self, job_id: str, attempt: int, now: float | None = None, takeover_after_s: float = 0.0
    ) -> bool:
        """Atomically record that `attempt` of this job is about to send its reply; False if it must not.

        Call it right before sending the reply and send only on True; call `mark_reply_sent` once
        the platform accepted it. True when no reply was begun, or when an earlier attempt began
        one at least `takeover_after_s` before `now` (default: the current time) and never recorded
        it sent: that attempt's worker died mid-send (its lease ran out, so this later attempt
        exists), and the user has most likely received nothing. The delay keeps a live worker that
        merely stalled past its lease, and is still sending, from being answered over: the worker
        passes its visibility timeout and, while refused, waits for the reply to be recorded sent.
        False when the reply was sent, when this attempt or a later one began it, or when an
        earlier one began it too recently. Raises `JobNotFound` for an unknown job. An error answer
        ("that photo could not be analysed") is a reply too and goes through the same markers.

        Exact semantics (the remaining window). The queue cannot make "send a chat message" and
        "record it" one atomic step, so for a job that is eventually completed:

        - The worker dies before `mark_reply_started`: nothing was sent. After the visibility
          timeout the job is reclaimed (attempt + 1) and the next worker answers. One reply.
        - The worker dies during the send (between the two marks, before the platform accepted
          the message): the job is reclaimed, analysed again, and the new attempt's mark succeeds
          once the dead one's is `takeover_after_s` old (the new attempt waits for that), so it
          answers. One reply (and, with Rekognition, a second recognizer call; the user's
          quota is charged once). The expired lease counts as a failed attempt, so a photo whose
          reply keeps killing the worker is dead-lettered like any other.
        - The worker dies after `mark_reply_sent`, before `complete`: the reclaiming worker sees
          `reply_sent()` True, sends nothing and completes. One reply; that expiry does not count
          as an attempt.
        - The worker dies in the few milliseconds after the platform accepted the message and
          before `mark_reply_sent` was stored: the next attempt answers again. Two replies. This
          is the only window left, the time of one HTTP response and one store write; the earlier
          design (no second mark) instead lost the answer whenever a worker died mid-upload, a
          window as long as the send itself, and a lost answer is a photo the user never hears of.
        - Two live workers on one job (the first stalled past its lease): the first to mark sends;
          the later attempt waits for its "sent" and completes, taking over only when that mark is
          older than `takeover_after_s` (a sender that has gone quiet for that long is dead). An
          earlier attempt never overrides a later one.
        - The markers are as durable as the backend: SQLite commits them before returning; Redis
          keeps them under its persistence settings, so a Redis that loses acknowledged writes (no
          AOF, or failover to a lagging replica) can forget them and allow a second reply.
        """
        ...

    async def mark_reply_sent(self, job_id: str) -> None:
        """Record that the reply begun by `mark_reply_started` was accepted by the platform.

        From then on no attempt answers again. Raises `JobNotFound` for an unknown job.
        """
        ...

    async def reply_started(self, job_id: str) -> bool:
        """Whether a reply to this job was begun (False for unknown jobs): chat actions stop then."""
        ...

    async def reply_sent(self, job_id: str) -> bool:
        """Whether this job's reply was accepted by the platform (False for unknown jobs)."""
        ...

    async def position(self, job_id: str) -> int | None:
        """How many queued jobs are ahead of this one, or None when it is not queued (leased, done,
        dead or unknown)."""
        ...

    async def stats(self, now: float) -> QueueStats:
        """Counts for /status and metrics (see `QueueStats`)."""
        ...

    async def dead_letters(self, limit: int = 20) -> list[DeadLetter]:
        """The most recent dead letters, newest first, at most `limit`."""
        ...

    async def close(self) -> None:
        """Release connections and threads; later calls raise `QueueClosed`. Safe to call twice."""
        ...


def new_job_id() -> str:
    """A random id: no coordination between processes is needed to make it unique."""
    return uuid.uuid4().hex


def new_token() -> str:
    """A lease token, unguessable so a confused worker cannot forge another's lease by accident."""
    return secrets.token_hex(16)


def retry_delay_s(attempt: int, base_s: float) -> float:
    """Exponential backoff after failed attempt number `attempt` (1-based): base, 2x base, 4x base...

    Short on purpose: retries are for a recognizer hiccup, not an outage (that is the circuit
    breaker's job), and the user is waiting.
    """
    return min(base_s * 2.0 ** max(attempt - 1, 0), MAX_RETRY_DELAY_S)


def clip_delay(delay_s: float) -> float:
    """A deferral's wait, kept finite and within `MAX_DEFER_DELAY_S`."""
    if not math.isfinite(delay_s):
        return MAX_DEFER_DELAY_S if delay_s > 0 else 0.0
    return min(max(delay_s, 0.0), MAX_DEFER_DELAY_S)


def clip_error(error: str) -> str:
    """Keep stored errors small: a traceback pasted into a dead letter must not bloat the queue."""
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


def check_settings(max_attempts: int, retry_backoff_s: float, retention_s: float) -> None:
    """Reject constructor values that would make jobs loop forever or vanish at once."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    if not (math.isfinite(retry_backoff_s) and retry_backoff_s >= 0):
        raise ValueError("retry_backoff_s must be a finite number >= 0")
    if not (math.isfinite(retention_s) and retention_s > 0):
        raise ValueError("retention_s must be a finite number > 0")


def check_now(now: float) -> None:
    """A NaN or infinite clock would corrupt ordering and deadlines silently."""
    if not math.isfinite(now):
        raise ValueError("now must be a finite number of UNIX seconds")


def check_visibility_timeout(visibility_timeout_s: float) -> None:
    """A zero timeout would hand the same job to every claimer; a huge one would strand it."""
    if not (math.isfinite(visibility_timeout_s) and 0 < visibility_timeout_s <= MAX_VISIBILITY_TIMEOUT_S):
        raise ValueError(f"visibility_timeout_s must be in (0, {MAX_VISIBILITY_TIMEOUT_S:g}]")


def check_enqueue_args(idempotency_key: str, user: str, now: float) -> None:
    """Empty keys would make unrelated messages collide."""
    if not idempotency_key:
        raise ValueError("idempotency_key must not be empty")
    if not user:
        raise ValueError("user must not be empty")
    check_now(now)


def check_worker_id(worker_id: str) -> None:
    """Worker ids name the lease owner in diagnostics (and the Redis consumer)."""
    if not worker_id:
        raise ValueError("worker_id must not be empty")


def check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError("limit must be >= 0")
