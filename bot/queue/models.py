"""Immutable values the job queue hands out; the same for every backend.

Times are UNIX seconds (`time.time()` floats) supplied by the caller as `now`, so tests can move the
clock and every process stamping a shared SQLite file agrees on what "now" is. The payload is opaque
to the queue: whatever JSON-serialisable dict the application enqueued comes back unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """What `enqueue` did: the job (new or the one already queued for that key) and its place in line.

    `ahead` is how many queued jobs will be claimed before this one ("queued, 2 ahead of you"); it is
    0 when the job is not waiting any more (in flight, done or dead), which only happens when
    `created` is False.
    """

    job_id: str
    created: bool
    ahead: int


@dataclass(frozen=True, slots=True)
class Lease:
    """A claimed job, owned by one worker until `deadline` unless extended.

    `token` identifies this particular claim: completing, failing, extending or releasing with a
    lease whose token is no longer the job's current one is refused, so a worker that lost its
    lease (it stalled past the visibility timeout and another worker took the job) cannot finish a
    job twice. `attempt` is 1 for the first claim and grows by one for each claim that did not end
    in `release` (a failure, or a lease that expired because the worker died).
    `deadline` is `now + visibility_timeout_s` in the caller's clock; the Redis backend measures
    the timeout itself with the server's clock, so it is informative there.

    `exhausted` is True on the final hand-out of a job whose attempts were all used up by leases
    that expired (its worker died every time, e.g. a photo that crashes or OOM-kills the process).
    The holder must NOT try the job again: it dead-letters it (`fail(..., retryable=False)`),
    answers the user once through the reply marker, and refunds the quota. Its `attempt` counts
    on as for any claim (normally `max_attempts + 1`); if this lease expires too, the job is
    dead-lettered at the next claim without being handed out again (see `JobQueue.claim`).

    `final` is True when this is the last attempt: a `fail` with it dead-letters the job.
    `answer` is the finished answer an earlier attempt stored with `JobQueue.defer` because the
    platform was down (None when there is none: analyse the photo), `answer_since` when the first
    delivery of it failed, and `delivery_tries` how many deliveries failed so far.
    """

    job_id: str
    idempotency_key: str
    user: str
    payload: dict[str, Any]
    created_at: float
    attempt: int
    token: str
    worker_id: str
    deadline: float
    exhausted: bool = False
    final: bool = False
    answer: str | None = None
    answer_since: float | None = None
    delivery_tries: int = 0


class FailOutcome(enum.StrEnum):
    """What `fail` did with the job."""

    RETRY = "retry"
    """Queued again; claimable after a short backoff, keeping its original place in line."""

    DEAD = "dead"
    """Moved to the dead letters (attempts used up, or the error was not retryable)."""

    LEASE_LOST = "lease_lost"
    """Nothing changed: the lease is stale (the job was reclaimed by another worker or finished)."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A health snapshot for /status and metrics.

    `queued` counts jobs waiting to be claimed, including jobs waiting out a retry backoff;
    `in_flight` counts leased jobs, including leases that expired and were not reclaimed yet;
    `dead` counts the dead letters still retained; `done` is the total ever completed.
    `oldest_queued_age_s` is None when nothing is queued.
    `delivering` counts the queued or leased jobs that hold a finished answer waiting for their
    platform (`JobQueue.defer`). `apologised` is the total ever of dead letters whose user was
    told (a failure notice or an apology reached them): `done` counts answered jobs, `apologised`
    the dead ones the user heard about, `dead` the dead letters retained (told or not).
    """

    queued: int
    in_flight: int
    dead: int
    done: int
    oldest_queued_age_s: float | None
    delivering: int = 0
    apologised: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job that will not be retried, kept with its payload so an operator can inspect or resubmit it."""

    job_id: str
    idempotency_key: str
    user: str
    error: str
    attempts: int
    payload: dict[str, Any]
    created_at: float
    died_at: float
