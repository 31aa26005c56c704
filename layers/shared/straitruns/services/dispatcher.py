"""The dispatcher (spec 4.2-4.6): claims a queued run, calls its job endpoint, records the outcome.

SQS delivers at least once, so every step is conditional on the run's status and generation: a
duplicate, stale or early message changes nothing (an early one goes back with the remaining
delay), and a loser of any race records its outcome as a `late_outcome` event.
"""

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from straitruns.adapters.executor import CallResult, EndpointRefused, HttpExecutor
from straitruns.adapters.run_queue import MAX_DELAY_SECS, RunMessage, RunQueue
from straitruns.adapters.store.engine import EngineStore, slot_counter
from straitruns.adapters.store.jobs import JobStore
from straitruns.adapters.store.runs import RunStore
from straitruns.adapters.store.telemetry import TelemetryStore
from straitruns.adapters.tokens import TokenSigner
from straitruns.domain import debug_capture
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict
from straitruns.domain.ids import IdFactory, IdKind
from straitruns.domain.in_run import last_checkpoint_headers
from straitruns.domain.jsonvalue import InvalidJsonValue, MalformedJson, dump_json, parse_json
from straitruns.domain.models import ErrorClass, Event, EventLevel, ExecutionTrace, Job, Run
from straitruns.domain.outcomes import HttpOutcome, engine_error, judge
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timers import due_at
from straitruns.services.attempts import Attempts
from straitruns.services.dead_letters import DeadLetters
from straitruns.services.run_state import RunStateMachine

logger = logging.getLogger("straitruns.dispatcher")

# A run that finds no free concurrency slot is offered again after this long.
NO_SLOT_DELAY_SECS = 2
PREVIOUS_ERROR_HEADER_BYTES = 1024


@dataclass(frozen=True)
class DispatchConfig:
    public_url: str
    heartbeat_interval_secs: float = 10.0


def _ms(delta: timedelta) -> int:
    seconds = delta.total_seconds()
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))


def _header_line(text: str, limit: int) -> str:
    """One ASCII line (non-ASCII escaped), at most `limit` bytes."""
    escaped = text.replace("\r", " ").replace("\n", " ").encode("ascii", "backslashreplace").decode()
    return escaped[:limit]


class _Heartbeat:
    """Heartbeats a run from a background thread while its endpoint call is in flight."""

    def __init__(self, engine: EngineStore, clock: Clock, run_id: str, interval: float) -> None:
        self.engine = engine
        self.clock = clock
        self.run_id = run_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{run_id}")

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.engine.heartbeat(self.run_id, self.clock.now())
            except Exception:  # a missed beat is retried at the next interval
                logger.warning("heartbeat failed", extra={"run_id": self.run_id})


class Dispatcher:
    def __init__(
        self,
        runs: RunStore,
        engine: EngineStore,
        jobs: JobStore,
        state: RunStateMachine,
        queue: RunQueue,
        dead_letters: DeadLetters,
        attempts: Attempts,
        executor: HttpExecutor,
        tokens: TokenSigner,
        clock: Clock,
        ids: IdFactory,
        config: DispatchConfig,
        checkpoints: TelemetryStore | None = None,
    ) -> None:
        self.runs = runs
        self.engine = engine
        self.jobs = jobs
        self.state = state
        self.queue = queue
        self.dead_letters = dead_letters
        self.attempts = attempts
        self.executor = executor
        self.tokens = tokens
        self.clock = clock
        self.ids = ids
        self.config = config
        self.checkpoints = checkpoints

    # Entry --------------------------------------------------------------------------------

    def handle(self, message: RunMessage) -> str:
        """Processes one run message; returns what happened (for logs and tests). Raises only
        for store or queue failures, so SQS delivers the message again."""
        run = self.runs.get(message.run_id)
        if run is None or run.generation != message.generation:
            return "stale"
        if message.dead_letter:
            return self._redriven(run)
        if run.status not in (RunStatus.DELAYED, RunStatus.QUEUED):
            return "stale"
        job = self.jobs.get(run.job_id)
        if job is not None and (job.paused or not job.enabled):
            # Parking changes nothing on the run: no status change, no event (spec 4.2).
            self.engine.park(run)
            return "parked"
        if run.status == RunStatus.DELAYED:
            promoted = self._promote(run)
            if promoted is None:
                return "not-due"
            run = promoted
        due = due_at(run)
        now = self.clock.now()
        if due is not None and due > now:
            delay = (due - now).total_seconds()
            self.queue.send([RunMessage(run.id, run.generation, min(MAX_DELAY_SECS, int(delay) + 1))])
            return "early"
        became_due = max(moment for moment in (run.queued_at, due, run.created_at) if moment is not None)
        claimed = self._claim(run, now)
        if claimed is None:
            return "lost-claim"
        if job is None:
            self._end(
                claimed, RunStatus.SYSTEM_FAILED, "job deleted", "the job no longer exists", ErrorClass.SYSTEM
            )
            return "system_failed"
        if not self._take_slots(claimed, job):
            return "no-slot"
        return self._execute(self.runs.get(claimed.id) or claimed, job, now, became_due)

    def _redriven(self, run: Run) -> str:
        """A dead-letter message redriven to the run queue replays its run, once."""
        if run.status != RunStatus.DEAD_LETTER:
            return "stale"
        try:
            self.dead_letters.replay(run, "sqs redrive")
        except Conflict:
            return "stale"
        return "replayed"

    def _promote(self, run: Run) -> Run | None:
        now = self.clock.now()
        if run.scheduled_at is not None and run.scheduled_at > now:
            delay = (run.scheduled_at - now).total_seconds()
            if delay > MAX_DELAY_SECS:
                return None  # the scheduler promotes it nearer the time
            self.queue.send([RunMessage(run.id, run.generation, int(delay) + 1)])
            return None
        try:
            return self.state.change(run, RunStatus.QUEUED, "scheduled time reached", queued_at=now)
        except Conflict:
            return None

    def _claim(self, run: Run, now: datetime) -> Run | None:
        try:
            return self.state.change(
                run,
                RunStatus.DEQUEUED,
                "dequeued",
                generation=run.generation + 1,
                ever_claimed=True,
                claimed_at=now,
                next_retry_at=None,
            )
        except Conflict:
            return None

    def _take_slots(self, run: Run, job: Job) -> bool:
        counters: list[tuple[str, int]] = []
        if job.max_concurrency is not None:
            counters.append((slot_counter(job.id), job.max_concurrency))
        if job.max_concurrency_per_key is not None and run.concurrency_key:
            key_hash = hashlib.sha256(run.concurrency_key.encode()).hexdigest()
            counters.append((slot_counter(job.id, key_hash), job.max_concurrency_per_key))
        if not counters or self.engine.acquire_slots(run, counters):
            return True
        try:
            requeued = self.state.change(
                run, RunStatus.QUEUED, "no free concurrency slot", queued_at=self.clock.now()
            )
        except Conflict:
            return False
        self.queue.send([RunMessage(requeued.id, requeued.generation, NO_SLOT_DELAY_SECS)])
        return False

    # The attempt --------------------------------------------------------------------------

    def _execute(self, run: Run, job: Job, claim_time: datetime, became_due: datetime) -> str:
        claim_clock = time.perf_counter()
        try:
            self.executor.check_url(job.endpoint_url)
        except EndpointRefused as refused:
            self._end(run, RunStatus.SYSTEM_FAILED, "endpoint refused", str(refused), ErrorClass.SYSTEM)
            return "system_failed"
        now = self.clock.now()
        timeout = run.timeout_secs_override or job.timeout_secs
        attempt = run.model_copy(
            update={"started_at": now, "heartbeat_at": now, "timeout_at": now + timedelta(seconds=timeout)}
        )
        # Everything that can fail before the call (signing the token) happens while the run is
        # still dequeued, so a failure leaves it for the scheduler to put back, not executing.
        headers = self._headers(attempt, job)
        try:
            executing = self.state.change(
                run,
                RunStatus.EXECUTING,
                "executing",
                started_at=attempt.started_at,
                heartbeat_at=attempt.heartbeat_at,
                timeout_at=attempt.timeout_at,
            )
        except Conflict:
            return "lost-claim"
        self._event(
            executing.id, "attempt.started", f"attempt {executing.attempt}", {"attempt": executing.attempt}
        )
        body = executing.payload.encode()
        if executing.debug_mode:
            sent_headers = [("Content-Type", "application/json"), *headers.items()]
            record = debug_capture.request_record(executing, job, job.endpoint_url, sent_headers, body)
            self._event(executing.id, "debug.request", "request to the endpoint", record, EventLevel.DEBUG)
        sent_clock = time.perf_counter()
        with _Heartbeat(self.engine, self.clock, executing.id, self.config.heartbeat_interval_secs):
            result = self.executor.call(job.endpoint_url, body, headers, timeout)
        if executing.debug_mode:
            self._debug_response(executing, result)
        trace = self._trace(became_due, claim_time, claim_clock, sent_clock, result)
        return self._record(executing, job, result, trace)

    def _debug_response(self, run: Run, result: CallResult) -> None:
        outcome = result.outcome
        record = debug_capture.response_record(
            run.attempt,
            outcome.status,
            outcome.headers,
            outcome.body,
            error=outcome.error,
            timed_out=outcome.timed_out,
            body_too_large=outcome.body_too_large,
        )
        self._event(run.id, "debug.response", "response of the endpoint", record, EventLevel.DEBUG)

    def _headers(self, run: Run, job: Job) -> dict[str, str]:
        token = self.tokens.run_token(
            run.id, run.attempt, run.generation, self.clock.now(), run.timeout_at or self.clock.now()
        )
        headers = {
            "X-Run-ID": run.id,
            "X-Job-ID": job.id,
            "X-Attempt": str(run.attempt),
            "X-Run-Token": token,
            "X-Strait-Api-Url": self.config.public_url,
        }
        if run.machine_preset:
            headers["X-Machine-Preset"] = run.machine_preset
        if run.attempt > 1 and run.error:
            headers["X-Previous-Error"] = _header_line(run.error, PREVIOUS_ERROR_HEADER_BYTES)
        if run.resumed_after:
            headers["X-Resumed-After"] = ",".join(run.resumed_after)
        # A retry, or a parent resumed after its children, may carry on from its latest checkpoint.
        if (run.attempt > 1 or run.resumed_after) and self.checkpoints is not None:
            headers.update(last_checkpoint_headers(self.checkpoints.latest_checkpoint(run.id)))
        return headers

    def _trace(
        self,
        became_due: datetime,
        claim_time: datetime,
        claim_clock: float,
        sent_clock: float,
        result: CallResult,
    ) -> ExecutionTrace:
        timings = result.timings
        dispatch = timings.connect_ms + timings.ttfb_ms + timings.transfer_ms
        return ExecutionTrace(
            queue_wait_ms=_ms(claim_time - became_due),
            dequeue_ms=_ms(timedelta(seconds=sent_clock - claim_clock)),
            connect_ms=timings.connect_ms,
            ttfb_ms=timings.ttfb_ms,
            transfer_ms=timings.transfer_ms,
            dispatch_ms=dispatch,
            total_ms=_ms(timedelta(seconds=time.perf_counter() - claim_clock)),
        )

    def _record(self, run: Run, job: Job, result: CallResult, trace: ExecutionTrace) -> str:
        outcome = result.outcome
        verdict = judge(outcome)
        self._event(
            run.id,
            "attempt.finished",
            f"attempt {run.attempt}: {verdict.kind}",
            {
                "attempt": run.attempt,
                "http_status": outcome.status,
                "error_class": verdict.error_class.value if verdict.error_class else None,
                "execution_trace": trace.model_dump(),
            },
            EventLevel.INFO if verdict.kind in ("completed", "accepted") else EventLevel.WARN,
        )
        now = self.clock.now()
        try:
            if verdict.kind == "accepted":
                if not self.engine.save(run, run.model_copy(update={"execution_trace": trace})):
                    raise Conflict("moved on")
                return "accepted"
            if verdict.kind == "completed":
                self.state.change(
                    run,
                    RunStatus.COMPLETED,
                    "completed",
                    result=_result_json(outcome),
                    finished_at=now,
                    execution_trace=trace,
                    error=None,
                    error_class=None,
                )
                return "completed"
            if verdict.kind == "failed":
                self.state.change(
                    run,
                    RunStatus.FAILED,
                    "failed",
                    error=engine_error(verdict.error or "failed"),
                    error_class=verdict.error_class,
                    finished_at=now,
                    execution_trace=trace,
                )
                return "failed"
            return self.attempts.fail(
                run,
                job,
                verdict.error or "failed",
                verdict.error_class or ErrorClass.SERVER,
                verdict.fingerprint or "",
                trace,
            )
        except Conflict:
            self._late_outcome(run, outcome, verdict.kind)
            return "late_outcome"

    def _end(self, run: Run, status: RunStatus, reason: str, error: str, error_class: ErrorClass) -> None:
        try:
            self.state.change(
                run,
                status,
                reason,
                error=engine_error(error),
                error_class=error_class,
                finished_at=self.clock.now(),
            )
        except Conflict:
            logger.info("run moved on before it could be ended", extra={"run_id": run.id})

    def _late_outcome(self, run: Run, outcome: HttpOutcome, kind: str) -> None:
        self._event(
            run.id,
            "late_outcome",
            "the attempt's outcome arrived after the run had moved on",
            {"attempt": run.attempt, "http_status": outcome.status, "outcome": kind},
            EventLevel.WARN,
        )

    def _event(
        self, run_id: str, kind: str, message: str, data: dict[str, Any], level: EventLevel = EventLevel.INFO
    ) -> Event:
        return self.engine.append_event(
            run_id,
            lambda sequence: Event(
                id=self.ids.new(IdKind.EVENT),
                run_id=run_id,
                sequence=sequence,
                type=kind,
                level=level,
                message=message,
                data=dump_json(data),
                created_at=self.clock.now(),
            ),
        )


def _result_json(outcome: HttpOutcome) -> str | None:
    """The endpoint's body as the run result: JSON when it is JSON, else a JSON string."""
    if not outcome.body:
        return None
    try:
        return dump_json(parse_json(outcome.body))
    except (MalformedJson, InvalidJsonValue):
        return dump_json(outcome.body.decode("utf-8", errors="replace"))
