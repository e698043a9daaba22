"""Workers: take jobs from the durable queue, analyse the photo, reply once, settle the quota.

CPU-heavy steps (decode and downsize, drawing) run in a process pool sized to the cores so one
large photo does not stall the event loop; fetching, recognition and replying stay concurrent.
A pool process killed by the OS (the OOM killer on a hostile image, a crash in a decoder) breaks
the whole pool for good, so a worker given a `pool_factory` replaces a broken pool with a fresh
one and counts the attempt as a transient failure: the job is retried, and a photo that keeps
killing the pool ends as a dead letter with one failure reply and a refund.
Each job has a timeout and a lease that a heartbeat keeps alive; a worker that dies (even with
kill -9) simply stops extending it, and another worker takes the job over when it expires.

Who settles the quota: the worker that sends the reply, right after sending it and before
completing the job, because only it knows what the user was told (an analysis keeps the charge,
a failure that is not the user's fault gives it back). Completing is bookkeeping that may fail
(a dead-lettered job cannot be completed, a stalled worker may have lost its lease); the refund
must not depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass, field
from typing import TypeVar

from bot.delivery import Courier, Delivery, DeliveryPolicy, Interrupted, Sent, is_apology
from bot.metrics import Metrics
from bot.notices import reason_code
from bot.photo_requests import AnalysisReply, FailureReply, Outcome, PhotoRequest
from bot.ports import FetchFailed, PhotoSource, ReplyPort
from bot.queue.base import EXPIRED_ERROR, JobQueue, QueueError
from bot.queue.models import FailOutcome, Lease
from bot.quota.base import QuotaStore, QuotaStoreError
from bot.stored_answers import StoredAnswer, UnreadableAnswer, load_answer
from core.analysis_types import Photo
from core.errors import PhotoRejected, RecognizerError
from core.limits import ImageLimits
from core.pipeline import render
from core.prepare import prepare_photo
from core.recognizers.base import Recognizer

log = logging.getLogger(__name__)

T = TypeVar("T")

NOT_CHARGED = "You were not charged."
TIMED_OUT = f"Sorry, analysing that photo took too long, so I gave up. {NOT_CHARGED}"
FETCH_FAILED = f"Sorry, I couldn't download that photo. {NOT_CHARGED}"
INTERNAL_ERROR = f"Sorry, something went wrong while analysing that photo. {NOT_CHARGED}"
POOL_BROKEN = "an image process died (killed by the OS or crashed)"
GAVE_UP = f"Sorry, that photo could not be analysed (it failed several times). {NOT_CHARGED}"


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker process behaves; filled from settings in the composition root.

    `charge_user_errors`: keep the charge when the user's own input was at fault (not a photo,
    too large, damaged). Off by default: the user is refunded and told why.
    `delivery`: how an answer whose platform is down is retried (see bot.delivery).
    `concurrency` is how many photos are analysed at once; `ahead` how many more jobs are taken
    beside them, to be downloaded and prepared while the analyses run, each then waiting for a free
    analysis. Without a job ahead, each analysis slot stood idle while its next job was claimed,
    downloaded and decoded and its answer sent, about a tenth of a photo's time: one process answered
    95% and 90% of its CPU bound without a job ahead, 105% and 107% with one, in turns
    (`bench/throughput.py`, docs/recognizers/embedded-engine.md).
    """

    worker_id: str
    concurrency: int = 2
    ahead: int = 1
    visibility_timeout_s: float = 60.0
    job_timeout_s: float = 120.0
    poll_interval_s: float = 0.5
    grace_period_s: float = 20.0
    charge_user_errors: bool = False
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)


class _TransientFailure(Exception):
    """The job failed for a reason that is not the user's; the queue decides retry or dead letter."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class _Failed:
    """An attempt that failed for a reason not the user's: retried, or answered with `reply` when dead.

    `retryable` False dead-letters the job at once (a job whose attempts ran out by expiry).
    """

    detail: str
    reply: FailureReply
    retryable: bool = True


class Worker:
    """Runs jobs until told to stop; several workers (processes or hosts) can share one queue.

    CPU steps run in `pool` (an executor the caller owns and shuts down), or in a pool the worker
    builds with `pool_factory` and rebuilds when a killed process breaks it (call `close` at the
    end), or, with neither, in a thread.
    """

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
        pool_factory: Callable[[], Executor] | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        if pool is not None and pool_factory is not None:
            raise ValueError("give a Worker either a pool or a pool_factory, not both")
        self.queue = queue
        self.quota = quota
        self.recognizer = recognizer
        self.sources = sources
        self.replies = replies
        self.limits = limits
        self.config = config
        self.show_location = show_location
        self.pool_factory = pool_factory
        self.pool = pool_factory() if pool_factory is not None else pool
        self._pool_lock = threading.Lock()
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.in_flight: set[asyncio.Task[None]] = set()
        self._analysing = asyncio.Semaphore(config.concurrency)
        self._waiting: set[asyncio.Task[object]] = set()  # jobs ahead, waiting for an analysis
        self._stopping = False
        self.courier = Courier(
            queue=queue,
            replies=replies,
            policy=config.delivery,
            takeover_after_s=config.visibility_timeout_s,
            clock=clock,
            metrics=self.metrics,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and process jobs until `stop` is set, then drain within the grace period.

        In-flight jobs get `grace_period_s` to finish; the rest are cancelled and their leases
        released, so another worker takes them at once instead of after the visibility timeout.
        A job already sending its reply is let finish (see `process`), so a shutdown never cuts
        a reply in half.
        """
        while not stop.is_set():
            if len(self.in_flight) >= self.config.concurrency + self.config.ahead:
                await self._wait_any(stop)
                continue
            lease = await self._claim()
            if lease is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.poll_interval_s)
                continue
            task = asyncio.create_task(self._process_logged(lease), name=f"job-{lease.job_id}")
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        await self._drain()

    async def _process_logged(self, lease: Lease) -> None:
        """`process`, with failures of our own machinery logged instead of lost in a dropped task.

        Such a failure (the queue or the quota store unreachable mid-job) leaves the lease to
        expire, and the job is taken again after the visibility timeout.
        """
        try:
            await self.process(lease)
        except Exception:
            log.exception("job %s stopped unexpectedly; retried when its lease expires", lease.job_id)

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
        """Give the jobs in flight the grace to finish; those that have not begun analysing go back now.

        A job taken ahead and still waiting for an analysis would only lengthen the stop: it is
        cancelled at once, and its lease is released like any job cut short (no attempt counted).
        """
        self._stopping = True
        for task in list(self._waiting):
            task.cancel()
        if not self.in_flight:
            return
        _, pending = await asyncio.wait(set(self.in_flight), timeout=self.config.grace_period_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def process(self, lease: Lease) -> None:
        """Do one job: analyse (or take the answer kept from an earlier try), reply once, settle, end.

        Cancelled (shutdown) while analysing, the lease is released without counting an attempt.
        An `exhausted` lease (every earlier attempt's worker died: a photo that crashes or
        OOM-kills the process) is not analysed again, which would likely kill this worker too: it
        is answered with one failure reply, refunded (not the user's fault) and dead-lettered.
        A lease carrying a stored answer (its platform was down, see bot.delivery) goes straight
        to delivery. Cancelled while delivering, a send in flight gets a moment to finish, else
        the answer goes back to the queue; the short bookkeeping after it (settling the quota,
        ending the job) runs to its end even if cancelled, so the user is never answered without
        being settled.
        """
        try:
            request = PhotoRequest.from_json(lease.payload)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("job %s has an unreadable payload; dead-lettering: %s", lease.job_id, exc)
            await self.queue.fail(lease, f"unreadable payload: {exc}", self.clock(), retryable=False)
            await self._settle(lease.idempotency_key, refund=True)
            return
        heartbeat = asyncio.create_task(self._heartbeat(lease))
        try:
            try:
                if await self.queue.reply_sent(lease.job_id):
                    # An earlier attempt already answered (and died before completing): don't
                    # answer again. It settled right after replying, so this normally changes
                    # nothing; if it died just before settling it frees the user's slot.
                    await _to_the_end(self._close_answered(lease))
                    return
                timings: dict[str, float] = {}
                result: Outcome | _Failed | StoredAnswer
                if lease.answer is not None:
                    result = _stored(lease, request)
                elif lease.exhausted:
                    result = _gave_up(lease, request)
                else:
                    result = await self._attempt(request, timings)
            except asyncio.CancelledError:
                await self._release(lease)
                raise
            await self._conclude(lease, result, timings)
        finally:
            heartbeat.cancel()

    async def _attempt(self, request: PhotoRequest, timings: dict[str, float]) -> Outcome | _Failed:
        """One try at the analysis, within the job timeout; whose fault a failure was decides its fate."""
        try:
            return await asyncio.wait_for(self._analyse(request, timings), self.config.job_timeout_s)
        except PhotoRejected as exc:
            return FailureReply(request, reason_code(exc), str(exc), user_fault=True)
        except _TransientFailure as exc:
            return _Failed(exc.detail, FailureReply(request, "unavailable", str(exc), user_fault=False))
        except TimeoutError:
            detail = f"timed out after {self.config.job_timeout_s:g} s"
            return _Failed(detail, FailureReply(request, "timeout", TIMED_OUT, user_fault=False))

    async def _conclude(
        self, lease: Lease, result: Outcome | _Failed | StoredAnswer, timings: dict[str, float]
    ) -> None:
        """Record a failed attempt for a retry, or deliver the job's answer and settle and end it."""
        if isinstance(result, _Failed):
            if result.retryable and not lease.final and not lease.exhausted:
                verdict = await _to_the_end(
                    self.queue.fail(lease, result.detail, self.clock(), retryable=True)
                )
                log.warning(
                    "job %s attempt %d failed (%s): %s", lease.job_id, lease.attempt, verdict, result.detail
                )
                if verdict is not FailOutcome.DEAD:
                    return  # RETRY: a later attempt answers; LEASE_LOST: the job's new holder does
            answer = StoredAnswer(result.reply, dead_error=result.detail)
        elif isinstance(result, StoredAnswer):
            answer = result
        else:
            answer = StoredAnswer(result)
        fresh = lease.answer is None
        if not fresh and self.courier.expired(lease):
            stale = answer
            found = await self._past_the_horizon(lease, stale)
            if found is None:
                return
            answer, fresh = found, found is not stale
        try:
            with self._timed("reply", timings):
                delivery = await self.courier.send(lease, answer, fresh=fresh)
        except Interrupted as stopped:
            await _to_the_end(self._settle_delivery(lease, answer, stopped.delivery, timings))
            raise asyncio.CancelledError from None
        await _to_the_end(self._settle_delivery(lease, answer, delivery, timings))

    async def _settle_delivery(
        self, lease: Lease, answer: StoredAnswer, delivery: Delivery, timings: dict[str, float]
    ) -> None:
        """After a send: charge or refund, and end the job (done, or dead with its reason)."""
        outcome = answer.outcome
        if delivery.result in (Sent.DEFERRED, Sent.LOST):
            return  # the job is back in the queue (or with another worker): nothing is settled yet
        self._record_outcome(lease, outcome, delivery, timings)
        if delivery.result is Sent.SENT:
            await self._settle(lease.idempotency_key, refund=self._refund_for(outcome))
        elif delivery.result is Sent.ANSWERED_ELSEWHERE:
            await self._settle(lease.idempotency_key, refund=False)
        else:  # refused for good: the user got nothing from us
            await self._settle(lease.idempotency_key, refund=True)
            self.metrics.undelivered.labels(platform=outcome.request.platform, reason="refused").inc()
            why = f"{answer.dead_error}; " if answer.dead_error else ""
            await self._end(lease, f"{why}the platform refused the answer for good: {delivery.reason}")
            return
        told = "; the user was told" if is_apology(outcome) and delivery.result is Sent.SENT else ""
        await self._end(lease, None if answer.dead_error is None else answer.dead_error + told)

    async def _past_the_horizon(self, lease: Lease, answer: StoredAnswer) -> StoredAnswer | None:
        """The stored answer is stale: what to send instead, or None when the job ended here.

        The first time: the charge is refunded and counted, and the answer replaced by one apology,
        sent like any answer: now, or once the platform takes it (it waits in the queue). An
        apology still undelivered after a second horizon is given up: the job ends as a dead letter.
        """
        outcome = answer.outcome
        if is_apology(outcome):
            since = lease.answer_since or self.clock()
            if self.clock() - since < 2 * self.config.delivery.horizon_s:
                return answer
            log.warning("job %s: its apology was not delivered either; dead-lettering it", lease.job_id)
            await _to_the_end(self._end(lease, f"{answer.dead_error}; the apology was not delivered either"))
            return None
        hours = self.config.delivery.horizon_s / 3600
        error = f"answer not delivered within {hours:g} h ({lease.delivery_tries} tries)"
        log.warning("job %s: %s; the user gets an apology instead and is refunded", lease.job_id, error)
        self.metrics.undelivered.labels(platform=outcome.request.platform, reason="horizon").inc()
        await _to_the_end(self._settle(lease.idempotency_key, refund=True))
        return StoredAnswer(self.courier.apology(outcome), dead_error=error)

    async def _end(self, lease: Lease, dead_error: str | None) -> None:
        """Complete the job, or dead-letter it with `dead_error` when it ended without its analysis."""
        if dead_error is None:
            if not await self.queue.complete(lease):
                log.info("job %s was taken over by another worker before it completed", lease.job_id)
        elif await self.queue.fail(lease, dead_error, self.clock(), retryable=False) is not FailOutcome.DEAD:
            log.info("job %s was taken over by another worker before it was dead-lettered", lease.job_id)

    def _refund_for(self, outcome: Outcome) -> bool:
        """Refund a failure that is not the user's; theirs only unless `charge_user_errors`."""
        if isinstance(outcome, AnalysisReply):
            return False
        return not outcome.user_fault or not self.config.charge_user_errors

    async def _close_answered(self, lease: Lease) -> None:
        await self.queue.complete(lease)
        await self._settle(lease.idempotency_key, refund=False)

    async def _analyse(self, request: PhotoRequest, timings: dict[str, float]) -> AnalysisReply:
        source = self.sources.get(request.platform)
        if source is None:
            raise _TransientFailure(INTERNAL_ERROR, f"no photo source for platform {request.platform!r}")
        features = request.features & self.recognizer.capabilities
        try:
            with self._timed("download", timings):
                data = await source.fetch(request, request.file, self.limits.max_bytes)
            with self._timed("prepare", timings):
                photo = Photo(data=data, name=request.file.name)
                prepared = await self._cpu(prepare_photo, photo, self.limits)
            async with self._analysis_turn():
                with self._timed("recognize", timings):
                    self.metrics.count_recognition(self.recognizer.name, features)
                    analysis = await self.recognizer.analyze(prepared, features)
            with self._timed("annotate", timings):
                annotated = await self._cpu(render, prepared, analysis, self.limits.jpeg_quality)
        except FetchFailed as exc:
            raise _TransientFailure(FETCH_FAILED, f"fetch failed: {exc}") from exc
        except RecognizerError as exc:
            raise _TransientFailure(
                f"Sorry, I couldn't analyse that photo: {exc} {NOT_CHARGED}", f"recognizer: {exc}"
            ) from exc
        except (PhotoRejected, _TransientFailure):
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
            prepared=prepared,
        )

    @contextlib.asynccontextmanager
    async def _analysis_turn(self) -> AsyncIterator[None]:
        """One of the `concurrency` analyses; a job taken ahead waits here with its photo ready."""
        task = asyncio.current_task()
        if task is not None:
            if self._stopping and self._analysing.locked():
                task.cancel()  # it would wait: back to the queue instead (see `_drain`)
            self._waiting.add(task)
        try:
            await self._analysing.acquire()
        finally:
            if task is not None:
                self._waiting.discard(task)
        try:
            yield
        finally:
            self._analysing.release()

    @contextlib.contextmanager
    def _timed(self, stage: str, timings: dict[str, float]) -> Iterator[None]:
        """Time a stage for both the metrics histogram and the job's outcome log line."""
        started = time.perf_counter()
        try:
            with self.metrics.stage(stage):
                yield
        finally:
            timings[stage] = round(time.perf_counter() - started, 4)

    def _record_outcome(
        self, lease: Lease, outcome: Outcome, delivery: Delivery, timings: dict[str, float]
    ) -> None:
        """One log line and the counters for a finished job; ids and timings only, never content."""
        request = outcome.request
        if isinstance(outcome, AnalysisReply):
            self.metrics.analysed.labels(platform=request.platform).inc()
            result, reason = "analysed", ""
        else:
            self.metrics.failed.labels(reason=outcome.reason).inc()
            result, reason = "failed", outcome.reason
        fields = {
            "job_id": lease.job_id,
            "platform": request.platform,
            "chat": request.chat_id,
            "user": request.user_key,
            "attempt": lease.attempt,
            "outcome": result,
            "reason": reason,
            "delivery": delivery.result.value,
            "seconds": timings,
        }
        log.info("job %s %s", lease.job_id, result, extra={"fields": fields})

    async def _cpu(self, function: Callable[..., T], *args: object) -> T:
        """Run CPU-bound work in the process pool (or a thread when no pool is configured).

        A broken pool fails this attempt as transient (a retry may succeed, and a photo that
        keeps killing its process is dead-lettered by the queue), and is replaced first when
        the worker has a factory, so the jobs after it do not all fail until a restart.
        """
        pool = self.pool
        if pool is None:
            return await asyncio.to_thread(function, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenExecutor as exc:
            self._replace_broken_pool(pool)
            raise _TransientFailure(INTERNAL_ERROR, f"{POOL_BROKEN}: {exc}") from exc

    def _replace_broken_pool(self, broken: Executor) -> None:
        """Swap `broken` for a fresh pool, once however many jobs saw it break.

        Every job with work in the pool when its process died gets the error; only the first to
        get here (the current pool is still `broken`) rebuilds and logs, the others find it done.
        The broken pool is shut down without waiting: its processes are dead or being terminated.
        """
        if self.pool_factory is None:
            return  # a pool the caller owns: ours to report, not to replace
        with self._pool_lock:
            if self.pool is not broken:
                return
            log.warning("%s; the process pool is broken, starting a new one", POOL_BROKEN)
            broken.shutdown(wait=False, cancel_futures=True)
            self.pool = self.pool_factory()

    async def close(self) -> None:
        """Shut down the pool built from `pool_factory`, waiting for its processes to exit.

        Call it after `run` returns. Work still queued in the pool belongs to jobs that were
        cancelled at shutdown (their leases released), so it is dropped rather than run.
        A `pool` given by the caller is left alone: its owner shuts it down.
        """
        if self.pool_factory is None or self.pool is None:
            return
        await asyncio.to_thread(self.pool.shutdown, wait=True, cancel_futures=True)

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

    async def _release(self, lease: Lease) -> None:
        with contextlib.suppress(QueueError):
            await asyncio.shield(self.queue.release(lease))

    async def _settle(self, key: str, *, refund: bool) -> None:
        try:
            await self.quota.finish(key, refund=refund)
        except QuotaStoreError as exc:
            log.warning("could not settle quota for %s (refund=%s): %s", key, refund, exc)


def _gave_up(lease: Lease, request: PhotoRequest) -> _Failed:
    """The answer to an exhausted lease: dead-letter without trying, tell the user, refund."""
    detail = EXPIRED_ERROR % (lease.attempt - 1)
    log.error("job %s: %s; dead-lettering it without another try", lease.job_id, detail)
    reply = FailureReply(request, "gave_up", GAVE_UP, user_fault=False)
    return _Failed(detail, reply, retryable=False)


def _stored(lease: Lease, request: PhotoRequest) -> StoredAnswer | _Failed:
    """The answer an earlier attempt kept; one this version cannot read ends the job with a notice."""
    assert lease.answer is not None
    try:
        return load_answer(lease.answer)
    except UnreadableAnswer as exc:
        log.error("job %s: its stored answer is unreadable; answering with a failure: %s", lease.job_id, exc)
        return _Failed(str(exc), FailureReply(request, "internal", INTERNAL_ERROR, user_fault=False), False)


async def _to_the_end(step: Awaitable[T]) -> T:
    """Await `step`, letting it finish even when the caller is cancelled, then re-raise the cancel."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
