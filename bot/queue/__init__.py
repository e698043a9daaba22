"""The durable job queue between the chat adapters (producers) and the analysis workers (consumers).

`SqliteJobQueue` is the default (one file in the data directory); `RedisJobQueue` lets several
processes or containers share the work. Both implement `JobQueue`, whose docstrings hold the
semantics: FIFO, idempotent enqueue, leases with a visibility timeout, retries, dead letters and
the reply marker that keeps a redelivered job from answering twice.
"""

from bot.queue.base import JobNotFound, JobQueue, QueueClosed, QueueError, QueueUnavailable
from bot.queue.models import DeadLetter, EnqueueResult, FailOutcome, Lease, QueueStats
from bot.queue.redis import RedisJobQueue
from bot.queue.sqlite import SqliteJobQueue

__all__ = [
    "DeadLetter",
    "EnqueueResult",
    "FailOutcome",
    "JobNotFound",
    "JobQueue",
    "Lease",
    "QueueClosed",
    "QueueError",
    "QueueStats",
    "QueueUnavailable",
    "RedisJobQueue",
    "SqliteJobQueue",
]
