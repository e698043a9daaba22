"""Workers: take jobs from the durable queue, analyse the photo, reply once, settle the quota.

CPU-heavy steps (decode and downsize, drawing) run in a process pool sized to the cores so one
large photo does not stall the event loop; fetching, recognition and replying stay concurrent.
Each job has a timeout and a lease that a heartbeat keeps alive; a worker that dies (even with
kill -9) simply stops extending it, and another worker takes the job over when it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from bot.ports import FetchFailed, PhotoSource, ReplyPort
from bot.queue.base import JobQueue, QueueError
from bot.queue.models import FailOutcome, Lease
from bot.quota.base import QuotaStore, QuotaStoreError
from bot.requests import AnalysisReply, FailureReply, Outcome, PhotoRequest
from core.errors import PhotoRejected, RecognizerError
from core.limits import ImageLimits
from core.models import Photo
from core.pipeline import render
from core.prepare import prepare_photo
from core.recognizers.base import Recognizer

log = logging.getLogger(__name__)

T = TypeVar("T")

RECOGNIZER_DOWN = (
    "Sorry, I couldn't analyse that photo: the recognizer is not answering. You were not charged."
)
INTERNAL_ERROR = "Sorry, something went wrong while analysing that photo. You were not charged."


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker process behaves; filled from settings in the composition root."""

    worker_id: str
    concurrency: int = 2
    visibility_timeout_s: float = 60.0
    job_timeout_s: float = 120.0
    poll_interval_s: float = 0.5
    grace_period_s: float = 20.0
    charge_user_errors: bool = False


class _TransientFailure(Exception):
    """The job failed for a reason that is not the user's; the queue decides retry or dead letter."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class Worker:
    """Runs jobs until told to stop; several workers (processes or hosts) can share one queue."""

    def __init__(
        self,
        *,
        queue: JobQueue,
        quota: QuotaStore,
        recognizer: Recognizer,
        sources: Mapping[str, PhotoSource],
        replies: Mapping[str, ReplyPort],
        limits: ImageLimits,
        config: WorkerConfig,
        show_location: Callable[[PhotoRequest], bool],
        pool: Executor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.quota = quota
        self.recognizer = recognizer
        self.sources = sources
        self.replies = replies
        self.limits = limits
        self.config = config
        self.show_location = show_location
        self.pool = pool
        self.clock = clock
        self.in_flight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and process jobs until `stop` is set, then drain within the grace period.

        In-flight jobs get `grace_period_s` to finish; the rest are cancelled and their leases
        released, so another worker takes them at once instead of after the visibility timeout.
        """
        while not stop.is_set():
            if len(self.in_flight) >= self.config.concurrency:
                await self._wait_any(stop)
                continue
            lease = await self._claim()
            if lease is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.poll_interval_s)
                continue
            task = asyncio.create_task(self.process(lease), name=f"job-{lease.job_id}")
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        await self._drain()

    async def _wait_any(self, stop: asyncio.Event) -> None:
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({*self.in_flight, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()

    async def _claim(self) -> Lease | None:
        try:
            return await self.queue.claim(
                self.config.worker_id, self.clock(), self.config.visibility_timeout_s
            )
        except QueueError as exc:
            log.warning("queue unavailable, waiting: %s", exc)
            return None

    async def _drain(self) -> None:
        if not self.in_flight:
            return
        _, pending = await asyncio.wait(set(self.in_flight), timeout=self.config.grace_period_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def process(self, lease: Lease) -> None:
        """Do one job: analyse, reply at most once, complete, and settle the user's quota."""
        key = lease.idempotency_key
        try:
            request = PhotoRequest.from_json(lease.payload)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("job %s has an unreadable payload; dead-lettering: %s", lease.job_id, exc)
            await self.queue.fail(lease, f"unreadable payload: {exc}", self.clock(), retryable=False)
            await self._settle(key, refund=True)
            return
        if await self.queue.reply_started(lease.job_id):
            # An earlier attempt already answered (and died before completing): don't answer again.
            await self.queue.complete(lease)
            await self._settle(key, refund=False)
            return
        heartbeat = asyncio.create_task(self._heartbeat(lease))
        try:
            outcome: Outcome = await asyncio.wait_for(self._analyse(request), self.config.job_timeout_s)
        except asyncio.CancelledError:
            await self._release(lease)
            raise
        except PhotoRejected as exc:
            outcome = FailureReply(request, exc.reason, str(exc), user_fault=True)
        except _TransientFailure as exc:
            if await self._retry_or_dead(lease, exc.detail):
                return
            outcome = FailureReply(request, "unavailable", str(exc), user_fault=False)
        except TimeoutError:
            if await self._retry_or_dead(lease, f"timed out after {self.config.job_timeout_s:g} s"):
                return
            outcome = FailureReply(request, "timeout", RECOGNIZER_DOWN, user_fault=False)
        finally:
            heartbeat.cancel()
        await self._reply(lease, outcome)
        if not await self.queue.complete(lease):
            return  # another worker holds the job now and settles it
        refund = isinstance(outcome, FailureReply) and (
            not outcome.user_fault or not self.config.charge_user_errors
        )
        await self._settle(key, refund=refund)

    async def _analyse(self, request: PhotoRequest) -> AnalysisReply:
        source = self.sources.get(request.platform)
        if source is None:
            raise _TransientFailure(INTERNAL_ERROR, f"no photo source for platform {request.platform!r}")
        try:
            data = await source.fetch(request, request.file, self.limits.max_bytes)
            prepared = await self._cpu(prepare_photo, Photo(data=data, name=request.file.name), self.limits)
            analysis = await self.recognizer.analyze(
                prepared, request.features & self.recognizer.capabilities
            )
            annotated = await self._cpu(render, prepared, analysis, self.limits.jpeg_quality)
        except FetchFailed as exc:
            raise _TransientFailure(
                "Sorry, I couldn't download that photo. You were not charged.", f"fetch failed: {exc}"
            ) from exc
        except RecognizerError as exc:
            raise _TransientFailure(
                f"Sorry, I couldn't analyse that photo: {exc}", f"recognizer: {exc}"
            ) from exc
        except PhotoRejected:
            raise
        except Exception as exc:
            log.exception("job for %s failed unexpectedly", request.idempotency_key)
            raise _TransientFailure(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}") from exc
        return AnalysisReply(
            request=request,
            analysis=analysis,
            exif=prepared.exif,
            annotated_jpeg=annotated,
            width=prepared.width,
            height=prepared.height,
            capabilities=self.recognizer.capabilities,
            show_location=self.show_location(request),
        )

    async def _cpu(self, function: Callable[..., T], *args: object) -> T:
        """Run CPU-bound work in the process pool (or a thread when no pool is configured)."""
        if self.pool is None:
            return await asyncio.to_thread(function, *args)
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    async def _heartbeat(self, lease: Lease) -> None:
        interval = self.config.visibility_timeout_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.queue.extend(lease, self.clock(), self.config.visibility_timeout_s) is None:
                    log.warning("lost the lease on job %s; another worker has it", lease.job_id)
                    return
            except QueueError as exc:
                log.warning("could not extend the lease on job %s: %s", lease.job_id, exc)

    async def _retry_or_dead(self, lease: Lease, detail: str) -> bool:
        """Record the failed attempt; True when the job will be retried (so no reply now)."""
        outcome = await self.queue.fail(lease, detail, self.clock(), retryable=True)
        log.warning("job %s attempt %d failed (%s): %s", lease.job_id, lease.attempt, outcome, detail)
        return outcome != FailOutcome.DEAD

    async def _reply(self, lease: Lease, outcome: Outcome) -> None:
        port = self.replies.get(outcome.request.platform)
        if port is None:
            log.error(
                "no reply port for platform %r; job %s unanswered", outcome.request.platform, lease.job_id
            )
            return
        if not await self.queue.mark_reply_started(lease.job_id):
            return
        try:
            await port.deliver(outcome)
        except Exception:
            # At most once: the marker is set, so no retry answers again (see JobQueue.mark_reply_started).
            log.exception("reply for job %s could not be delivered", lease.job_id)

    async def _release(self, lease: Lease) -> None:
        with contextlib.suppress(QueueError):
            await asyncio.shield(self.queue.release(lease))

    async def _settle(self, key: str, *, refund: bool) -> None:
        try:
            await self.quota.finish(key, refund=refund)
        except QuotaStoreError as exc:
            log.warning("could not settle quota for %s (refund=%s): %s", key, refund, exc)
