"""Steering one run (spec 5 items 5-7, 19, 22-26): cancel, replay, dead-letter replay, reschedule,
pause, resume, restart, debug mode and the idempotency-key reset.

Every status change goes through the run state machine, so the `status_change` event, the
concurrency slots, the scheduler's wake-up and the dependency listeners follow. A write that loses a
race with another actor (the dispatcher, the scheduler, the SDK) reads the run again and is tried
again a bounded number of times; a status that does not allow the operation is a 409 (`Refused`).
"""

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol

from pydantic import Field, StringConstraints

from straitruns.adapters.run_queue import MAX_DELAY_SECS, RunQueue, run_message
from straitruns.adapters.store.jobs import JobStore
from straitruns.adapters.store.runs import RunStore
from straitruns.domain import limits, transitions
from straitruns.domain.auth import Principal
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict, NotFound, PayloadTooLarge, TransitionRefused, ValidationFailed
from straitruns.domain.jsonvalue import dump_json, json_size, load_json
from straitruns.domain.models import Checkpoint, Run
from straitruns.domain.run_filter import run_index_values
from straitruns.domain.statuses import RunStatus, can_transition
from straitruns.domain.timers import TimerPolicy, due_at
from straitruns.domain.transitions import Step
from straitruns.services.cancellation import ALREADY_TERMINAL, Cancellation, CancelOutcome
from straitruns.services.commands import Command, JsonValue, Timestamp, TriggerRun
from straitruns.services.dead_letters import DeadLetters
from straitruns.services.run_queries import RunQueries
from straitruns.services.run_state import RunStateMachine, with_wake
from straitruns.services.triggers import TriggerService, idempotency_guard

# A run that keeps changing under an operation is read again and retried this many times.
_RACE_RETRIES = 3

PAUSABLE = frozenset({RunStatus.DELAYED, RunStatus.QUEUED, RunStatus.EXECUTING})
RESTARTABLE = frozenset({RunStatus.QUEUED, RunStatus.EXECUTING, RunStatus.PAUSED, RunStatus.WAITING})
# While an attempt is claimed or running, its idempotency key stays (spec 5 item 22).
KEY_RESET_REFUSED = frozenset({RunStatus.DEQUEUED, RunStatus.EXECUTING})


class Refused(Conflict):
    """409: the run's status (or its job) does not allow the operation. `reason` is a short code
    that bulk calls report per run (`X-Strait-Skipped: <id>:<reason>`)."""

    def __init__(self, message: str, reason: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, details)
        self.reason = reason


class CheckpointSource(Protocol):
    """Where replay reads a checkpoint (the in-run plane's store)."""

    def get_checkpoint(self, run_id: str, sequence: int) -> Checkpoint | None: ...


class RescheduleRun(Command):
    """Body of `POST /v1/runs/{runID}/reschedule`."""

    scheduled_at: Timestamp = Field(description="When the run may start; at most 30 days ahead.")
    payload: JsonValue = Field(default=None, description="Replaces the run's payload when given.")


MachinePreset = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RestartRun(Command):
    """Body of `POST /v1/runs/{runID}/restart` (may be empty)."""

    machine_preset: MachinePreset | None = Field(
        default=None, description="One of STRAIT_MACHINE_PRESETS; sent as X-Machine-Preset."
    )


class SetDebugMode(Command):
    """Body of `POST /v1/runs/{runID}/debug` (may be empty: debug mode off)."""

    debug_mode: bool = False


class _Raced(Exception):
    """The run changed between this operation's read and its write."""


class RunSteering:
    def __init__(
        self,
        queries: RunQueries,
        runs: RunStore,
        jobs: JobStore,
        state: RunStateMachine,
        queue: RunQueue,
        dead_letters: DeadLetters,
        triggers: TriggerService,
        cancellation: Cancellation,
        checkpoints: CheckpointSource,
        clock: Clock,
        policy: TimerPolicy,
        machine_presets: tuple[str, ...],
    ) -> None:
        self.queries = queries
        self.runs = runs
        self.jobs = jobs
        self.state = state
        self.queue = queue
        self.dead_letters = dead_letters
        self.triggers = triggers
        self.cancellation = cancellation
        self.checkpoints = checkpoints
        self.clock = clock
        self.policy = policy
        self.machine_presets = machine_presets

    # Cancel and replays ---------------------------------------------------------------------

    def cancel(self, principal: Principal, run_id: str) -> CancelOutcome:
        """Cancels a non-terminal run and its non-terminal descendants (those beyond this request's
        budget within a scheduler tick). Raises NotFound, Refused (terminal)."""
        run = self.queries.get(principal, run_id)
        outcome = self.cancellation.cancel(run, self.cancellation.request_budget())
        if not outcome.canceled:
            reason = "terminal" if outcome.error == ALREADY_TERMINAL else "changed_concurrently"
            raise Refused(f"cannot cancel: {outcome.error} ({outcome.run.status.value})", reason)
        return outcome

    def replay(self, principal: Principal, run_id: str, from_checkpoint: int | None = None) -> Run:
        """A new run of a terminal run's job with its payload (or the state of its checkpoint
        `from_checkpoint`, with debug mode on), priority, tags, metadata, concurrency key and
        overrides; `triggered_by = retry`, `replayed_from` set. Dependencies hold it back as they
        would a trigger. Raises NotFound (the run, or its checkpoint), Refused (not terminal; the
        job deleted or disabled), PayloadTooLarge."""
        return self.replay_run(principal, self.queries.get(principal, run_id), from_checkpoint)

    def replay_run(self, principal: Principal, run: Run, from_checkpoint: int | None = None) -> Run:
        """`replay` of a run already read (and checked visible to the caller)."""
        if not run.is_terminal:
            raise Refused(
                f"only a terminal run can be replayed; this one is {run.status.value}", "not_terminal"
            )
        job = self.jobs.get(run.job_id)
        if job is None:
            raise Refused("the run's job no longer exists", "job_deleted")
        if not job.enabled:
            raise Refused("the run's job is disabled", "job_disabled")
        payload = load_json(run.payload)
        if from_checkpoint is not None:
            checkpoint = self.checkpoints.get_checkpoint(run.id, from_checkpoint)
            if checkpoint is None:
                raise NotFound(f"checkpoint {from_checkpoint} of run {run.id} not found")
            payload = load_json(checkpoint.state)
        options = TriggerRun(
            payload=payload,
            metadata=run.metadata,
            tags=run.tags,
            priority=run.priority,
            concurrency_key=run.concurrency_key,
            debug_mode=from_checkpoint is not None,
            max_attempts_override=run.max_attempts_override,
            timeout_secs_override=run.timeout_secs_override,
            retry_backoff=run.retry_backoff,
            retry_initial_delay_secs=run.retry_initial_delay_secs,
            retry_max_delay_secs=run.retry_max_delay_secs,
        )
        return self.triggers.trigger(principal, job, options, None, replayed_from=run.id).run

    def dlq_replay(self, principal: Principal, run_id: str) -> Run:
        """Puts a dead-lettered run back to `queued` in place (attempt 1, a new generation, the
        last attempt's errors and times cleared) and sends it. Raises NotFound, Refused."""

        def replay(run: Run) -> Run:
            _require(run, {RunStatus.DEAD_LETTER}, "dlq-replay", "not_dead_letter")
            try:
                return self.dead_letters.replay(run)
            except Conflict as exc:
                raise _Raced from exc

        return self._steer(principal, run_id, replay)

    # Scheduling -----------------------------------------------------------------------------

    def reschedule(self, principal: Principal, run_id: str, command: RescheduleRun) -> Run:
        """Moves a delayed run, or a queued run never dispatched, to `scheduled_at` (`delayed`
        when ahead, else `queued` and sent at once); `expires_at` moves with it and `payload` is
        replaced when given. Raises NotFound, ValidationFailed (more than 30 days ahead),
        PayloadTooLarge, Refused."""
        now = self.clock.now()
        if (command.scheduled_at - now).total_seconds() > limits.SCHEDULE_AHEAD_MAX_SECS:
            raise ValidationFailed(
                "scheduled_at may be at most 30 days ahead",
                [{"field": "scheduled_at", "error": "too far ahead"}],
            )
        payload = dump_json(command.payload) if "payload" in command.model_fields_set else None
        if payload is not None and json_size(payload) > limits.PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"payload is larger than {limits.PAYLOAD_BYTES} bytes", [{"field": "payload"}]
            )
        return self._steer(
            principal, run_id, lambda run: self._reschedule(run, command.scheduled_at, payload)
        )

    def _reschedule(self, run: Run, requested: datetime, payload: str | None) -> Run:
        if run.status not in (RunStatus.DELAYED, RunStatus.QUEUED) or run.ever_claimed:
            raise Refused(
                f"only a delayed run or a queued run never dispatched can be rescheduled; "
                f"this one is {run.status.value}{' and was dispatched' if run.ever_claimed else ''}",
                "not_reschedulable",
            )
        now = self.clock.now()
        scheduled = max(requested, now)
        step = transitions.rescheduled(run, now, scheduled, _moved_expiry(run, scheduled))
        if payload is None:
            if run.status == RunStatus.DELAYED and step.target == RunStatus.DELAYED:
                # Still delayed: not a status change (the transition table has no delayed -> delayed).
                moved = with_wake(transitions.evolve(run, step.changes), now, self.policy)
                if not self.runs.save(run, moved):
                    raise _Raced
            else:
                moved = self._change(run, step)
            self._send(moved)
            return moved
        # A new payload rewrites the run's definition, in the same write as its state.
        job = self.jobs.get(run.job_id)
        paths = job.indexed_payload_paths if job is not None and job.indexed_payload_since else ()
        step = Step(step.target, step.reason, {**step.changes, "payload": payload})
        wanted = transitions.evolve(run, {**step.changes, "status": step.target})
        self.runs.add_index_items(wanted, run_index_values(wanted, paths) - run_index_values(run, paths))
        if run.status == RunStatus.DELAYED and step.target == RunStatus.DELAYED:
            moved = with_wake(wanted, now, self.policy)
            if not self.runs.rewrite_definition(run, moved):
                raise _Raced
        else:
            moved = self._change(run, step, extra_actions=[self.runs.definition_action(wanted)])
        self.runs.remove_index_items(moved, run_index_values(run, paths) - run_index_values(moved, paths))
        self._send(moved)
        return moved

    def pause(self, principal: Principal, run_id: str) -> Run:
        """`delayed`, `queued` or `executing` -> `paused` (a paused run: unchanged). A paused run is
        never dispatched; an executing one keeps its token, and its call's outcome arrives as a
        `late_outcome` event. Raises NotFound, Refused."""

        def pause(run: Run) -> Run:
            if run.status == RunStatus.PAUSED:
                return run
            _require(run, PAUSABLE, "pause", "not_pausable")
            return self._change(run, transitions.paused())

        return self._steer(principal, run_id, pause)

    def resume(self, principal: Principal, run_id: str) -> Run:
        """`paused` -> `queued` (or `delayed` while `scheduled_at` is ahead), attempt unchanged,
        and sends it. Raises NotFound, Refused."""

        def resume(run: Run) -> Run:
            _require(run, {RunStatus.PAUSED}, "resume", "not_paused")
            resumed = self._change(run, transitions.resumed(run, self.clock.now()))
            self._send(resumed)
            return resumed

        return self._steer(principal, run_id, resume)

    def restart(self, principal: Principal, run_id: str, command: RestartRun) -> Run:
        """`queued`, `executing`, `paused` or `waiting` -> `queued` on a new generation (the
        current attempt's token is stale), attempt unchanged, start/finish/heartbeat cleared, with
        `machine_preset` when given. Raises NotFound, ValidationFailed (unknown preset), Refused."""
        preset = command.machine_preset
        if preset is not None and preset not in self.machine_presets:
            raise ValidationFailed(
                f"machine_preset must be one of {', '.join(self.machine_presets)}",
                [{"field": "machine_preset", "error": "unknown preset"}],
            )

        def restart(run: Run) -> Run:
            _require(run, RESTARTABLE, "restart", "not_restartable")
            restarted = self._change(run, transitions.restarted(run, self.clock.now(), preset))
            self._send(restarted)
            return restarted

        return self._steer(principal, run_id, restart)

    # Settings of the run --------------------------------------------------------------------

    def set_debug_mode(self, principal: Principal, run_id: str, enabled: bool) -> Run:
        """Turns debug mode on or off, in any status; later attempts record `debug.request` and
        `debug.response` events. Raises NotFound."""

        def toggle(run: Run) -> Run:
            if run.debug_mode == enabled:
                return run
            toggled = run.model_copy(update={"debug_mode": enabled})
            if not self.runs.save(run, toggled):
                raise _Raced
            return toggled

        return self._steer(principal, run_id, toggle)

    def reset_idempotency_key(self, principal: Principal, run_id: str) -> Run:
        """Frees the run's idempotency key (a trigger with it creates a new run) and clears the
        run's `idempotency_key`; a run without one is left as it is. Raises NotFound, Refused
        (dequeued or executing)."""

        def reset(run: Run) -> Run:
            if run.status in KEY_RESET_REFUSED:
                raise Refused(f"the idempotency key of a {run.status.value} run cannot be reset", "in_flight")
            if run.idempotency_key is None:
                return run
            cleared = run.model_copy(update={"idempotency_key": None})
            try:
                self.runs.reset_idempotency_key(
                    run, cleared, idempotency_guard(run.job_id, run.idempotency_key)
                )
            except TransitionRefused as exc:
                raise _Raced from exc
            return cleared

        return self._steer(principal, run_id, reset)

    # Internals ------------------------------------------------------------------------------

    def _steer(self, principal: Principal, run_id: str, operation: Callable[[Run], Run]) -> Run:
        """Runs `operation` on the run, reading it again after a lost race (bounded)."""
        run = self.queries.get(principal, run_id)
        for _ in range(_RACE_RETRIES):
            try:
                return operation(run)
            except _Raced:
                run = self.queries.get(principal, run_id)
        raise Refused("the run kept changing concurrently; try again", "changed_concurrently")

    def _change(self, run: Run, step: Step, extra_actions: Sequence[dict[str, Any]] = ()) -> Run:
        """A status change the caller has checked is allowed; losing it is a race (`_Raced`)."""
        if not can_transition(run.status, step.target):
            raise Refused(f"a {run.status.value} run cannot become {step.target.value}", "not_allowed")
        try:
            return self.state.apply(run, step, extra_actions=extra_actions)
        except Conflict as exc:
            raise _Raced from exc

    def _send(self, run: Run) -> None:
        """Hands a queued (or soon due delayed) run to the run queue. A failed send is not an
        error: the scheduler re-enqueues queued runs nobody claimed."""
        due = due_at(run)
        delay = max(0.0, (due - self.clock.now()).total_seconds()) if due else 0.0
        if delay <= MAX_DELAY_SECS:
            self.queue.send([run_message(run, math.ceil(delay))])


def _require(run: Run, allowed: frozenset[RunStatus] | set[RunStatus], operation: str, reason: str) -> None:
    if run.status not in allowed:
        names = ", ".join(sorted(status.value for status in allowed))
        raise Refused(f"{operation} needs a run in {names}; this one is {run.status.value}", reason)


def _moved_expiry(run: Run, scheduled: datetime) -> datetime | None:
    """`expires_at` keeps its distance from the moment the run may start (spec 4.1: expires_at =
    max(created_at, scheduled_at) + TTL)."""
    if run.expires_at is None:
        return None
    start = max(run.created_at, run.scheduled_at or run.created_at)
    ttl: timedelta = run.expires_at - start
    return scheduled + ttl
