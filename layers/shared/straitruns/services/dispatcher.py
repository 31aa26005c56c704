"""The dispatcher (spec 4.2-4.6): claims a queued run, calls its job endpoint, records the outcome.

SQS delivers at least once, so every step is conditional on the run's status and generation: a
duplicate, stale or early message changes nothing (an early one goes back with the remaining
delay), and a loser of any race records its outcome as a `late_outcome` event.

A simple run costs the dispatcher three store requests (docs/data-model.md#cost): one read of the
run and its job together, the claim (`dequeued` then `executing`, with `attempt.started`, one write
of the state item), and the outcome (with `attempt.finished`, one write; a large result is written
once to its own item before it).
"""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from straitruns.adapters.executor import CallResult, EndpointRefused
from straitruns.adapters.run_queue import MAX_DELAY_SECS, RunMessage, run_message
from straitruns.adapters.store.jobs import job_from_item, job_key
from straitruns.adapters.store.table import Item
from straitruns.adapters.tokens import TokenSigner
from straitruns.domain import debug_capture, transitions
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict
from straitruns.domain.ids import IdFactory, IdKind
from straitruns.domain.in_run import last_checkpoint_headers
from straitruns.domain.jsonvalue import InvalidJsonValue, MalformedJson, dump_json, parse_json
from straitruns.domain.models import Checkpoint, ErrorClass, Event, EventLevel, ExecutionTrace, Job, Run
from straitruns.domain.outcomes import HttpOutcome, Verdict, engine_error, judge
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timers import due_at
from straitruns.domain.transitions import Step
from straitruns.services.attempts import Attempts
from straitruns.services.concurrency import ConcurrencyQueues
from straitruns.services.dead_letters import DeadLetters
from straitruns.services.ports import EventAppends, JobReads, RunMessages
from straitruns.services.run_state import EventDraft, RunStateMachine

logger = logging.getLogger("straitruns.dispatcher")

PREVIOUS_ERROR_HEADER_BYTES = 1024
# The part of a failing endpoint's answer kept in `attempt.finished` (spec 4.3, docs/engine.md).
FAILED_BODY_BYTES = 1024


@dataclass(frozen=True)
class DispatchConfig:
    public_url: str
    heartbeat_interval_secs: float = 10.0


class DispatchReads(Protocol):
    """The reads of a dispatch: a run with extra items in one request (its job, when the message
    names it), and a run alone."""

    def get(self, run_id: str) -> Run | None: ...

    def get_many_with(
        self, run_ids: list[str], extra: list[tuple[str, str]]
    ) -> tuple[dict[str, Run], dict[tuple[str, str], Item]]: ...

    def save(self, old: Run, new: Run, fx: dict[str, Any] | None = None) -> bool: ...


class EngineWrites(EventAppends, Protocol):
    def heartbeat(self, run_id: str, at: datetime) -> None: ...

    def park(self, run: Run) -> bool: ...


class Endpoints(Protocol):
    def check_url(self, url: str) -> None: ...

    def call(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> CallResult: ...


class Checkpoints(Protocol):
    def latest_checkpoint(self, run_id: str) -> Checkpoint | None: ...


def _ms(delta: timedelta) -> int:
    seconds = delta.total_seconds()
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))


def _header_line(text: str, limit: int) -> str:
    """One ASCII line (non-ASCII escaped), at most `limit` bytes."""
    escaped = text.replace("\r", " ").replace("\n", " ").encode("ascii", "backslashreplace").decode()
    return escaped[:limit]


class _Heartbeat:
    """Heartbeats a run from a background thread while its endpoint call is in flight."""

    def __init__(self, engine: EngineWrites, clock: Clock, run_id: str, interval: float) -> None:
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
        runs: DispatchReads,
        engine: EngineWrites,
        jobs: JobReads,
        state: RunStateMachine,
        queue: RunMessages,
        dead_letters: DeadLetters,
        attempts: Attempts,
        concurrency: ConcurrencyQueues,
        executor: Endpoints,
        tokens: TokenSigner,
        clock: Clock,
        ids: IdFactory,
        config: DispatchConfig,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        self.runs = runs
        self.engine = engine
        self.jobs = jobs
        self.state = state
        self.queue = queue
        self.dead_letters = dead_letters
        self.attempts = attempts
        self.concurrency = concurrency
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
        run, job, job_read = self._read(message)
        if run is None or run.generation != message.generation:
            return "stale"
        if message.dead_letter:
            return self._redriven(run)
        if run.status not in (RunStatus.DELAYED, RunStatus.QUEUED):
            return "stale"
        if not job_read:
            job = self.jobs.get(run.job_id)
        if job is not None and (job.paused or not job.enabled):
            # Parking changes no status and writes no event (spec 4.2); the run says why it waits.
            self.engine.park(run)
            return "parked"
        now = self.clock.now()
        steps: list[Step] = []
        if run.status == RunStatus.DELAYED:
            if run.scheduled_at is not None and run.scheduled_at > now:
                delay = (run.scheduled_at - now).total_seconds()
                if delay <= MAX_DELAY_SECS:  # a longer wait is the scheduler's
                    self.queue.send([run_message(run, int(delay) + 1)])
                return "not-due"
            steps.append(transitions.promoted(now))
        due = due_at(run)
        if due is not None and due > now and not steps:
            delay = (due - now).total_seconds()
            self.queue.send([run_message(run, min(MAX_DELAY_SECS, int(delay) + 1))])
            return "early"
        became_due = max(moment for moment in (run.queued_at, due, run.created_at) if moment is not None)
        if job is None:
            return self._end_claimed(run, steps, "job deleted", "the job no longer exists", now)
        if self._waits_for_slot(run, job):
            return "waiting-for-slot"
        return self._execute(run, job, steps, now, became_due)

    def _read(self, message: RunMessage) -> tuple[Run | None, Job | None, bool]:
        """The run and, when the message names its job, the job, in one request."""
        if message.job_id is None:
            return self.runs.get(message.run_id), None, False
        key = job_key(message.job_id)
        found, extra = self.runs.get_many_with([message.run_id], [key])
        run = found.get(message.run_id)
        if run is not None and run.job_id != message.job_id:
            return run, None, False
        item = extra.get(key)
        return run, job_from_item(item) if item else None, True

    def _redriven(self, run: Run) -> str:
        """A dead-letter message redriven to the run queue replays its run, once."""
        if run.status != RunStatus.DEAD_LETTER:
            return "stale"
        try:
            self.dead_letters.replay(run, "sqs redrive")
        except Conflict:
            return "stale"
        return "replayed"

    def _waits_for_slot(self, run: Run, job: Job) -> bool:
        """Whether the run must wait for a concurrency slot: it joins its queue (once) and asks
        for a drain of it; a drain sends it a new message with the slot reserved."""
        if run.slot_queue is not None:
            return True  # it waits already; this message is a duplicate or was sent before
        return self.concurrency.join(job, run)

    def _end_claimed(self, run: Run, steps: list[Step], reason: str, error: str, now: datetime) -> str:
        """Claims the run and ends it `system_failed`, in one write."""
        try:
            self.state.apply(
                run,
                [
                    *steps,
                    transitions.claimed(run, now),
                    transitions.ended(RunStatus.SYSTEM_FAILED, reason, now, error, ErrorClass.SYSTEM),
                ],
            )
        except Conflict:
            return "lost-claim"
        return "system_failed"

    # The attempt --------------------------------------------------------------------------

    def _execute(
        self, run: Run, job: Job, steps: list[Step], claim_time: datetime, became_due: datetime
    ) -> str:
        claim_clock = time.perf_counter()
        try:
            self.executor.check_url(job.endpoint_url)
        except EndpointRefused as refused:
            return self._end_claimed(run, steps, "endpoint refused", str(refused), claim_time)
        now = self.clock.now()
        timeout = run.timeout_secs_override or job.timeout_secs
        claim = transitions.claimed(run, now)
        start = transitions.started(now, now + timedelta(seconds=timeout))
        attempt = transitions.evolve(run, {**claim.changes, **start.changes})
        # Everything that can fail before the write (signing the token) happens first, so a
        # failure leaves the run queued for the next delivery, not executing without a call.
        headers = self._headers(attempt, job)
        try:
            executing = self.state.apply(
                run,
                [*steps, claim, start],
                after=[EventDraft("attempt.started", f"attempt {run.attempt}", {"attempt": run.attempt})],
                keep_earlier_wake=True,
            )
        except Conflict:
            return "lost-claim"
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
        finished = self._finished(run, outcome, verdict, trace)
        now = self.clock.now()
        try:
            if verdict.kind == "accepted":
                self._event(run.id, finished.type, finished.message, dict(finished.data), finished.level)
                if not self.runs.save(run, run.model_copy(update={"execution_trace": trace})):
                    raise Conflict("moved on")
                return "accepted"
            if verdict.kind == "completed":
                self.state.apply(
                    run, transitions.completed(now, _result_json(outcome), trace), before=[finished]
                )
                return "completed"
            if verdict.kind == "failed":
                error = engine_error(verdict.error or "failed")
                self.state.apply(
                    run, transitions.failed(now, error, verdict.error_class, trace), before=[finished]
                )
                return "failed"
            return self.attempts.fail(
                run,
                job,
                verdict.error or "failed",
                verdict.error_class or ErrorClass.SERVER,
                verdict.fingerprint or "",
                trace,
                before=[finished],
            )
        except Conflict:
            if verdict.kind != "accepted":
                self._event(run.id, finished.type, finished.message, dict(finished.data), finished.level)
            self._late_outcome(run, outcome, verdict.kind)
            return "late_outcome"

    def _finished(
        self, run: Run, outcome: HttpOutcome, verdict: Verdict, trace: ExecutionTrace
    ) -> EventDraft:
        """The attempt's `attempt.finished` event: its status, error class and trace, and for an
        endpoint error (5xx) the start of its answer, redacted like the debug capture."""
        data: dict[str, Any] = {
            "attempt": run.attempt,
            "http_status": outcome.status,
            "error_class": verdict.error_class.value if verdict.error_class else None,
            "execution_trace": trace.model_dump(),
        }
        if outcome.status is not None and outcome.status >= 500 and outcome.body:
            data["response_body"] = debug_capture.body_excerpt(outcome.body, FAILED_BODY_BYTES)
        level = EventLevel.INFO if verdict.kind in ("completed", "accepted") else EventLevel.WARN
        return EventDraft("attempt.finished", f"attempt {run.attempt}: {verdict.kind}", data, level)

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
