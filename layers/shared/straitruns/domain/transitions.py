"""Named run transitions (spec 3, 4): each says which status a run moves to, why, and which of its
fields change with it. The run state machine (services/run_state.py) writes them, checked against the
transition table; no use case builds a changed run by hand.

A transition is one or more `Step`s written at once: a dispatcher's claim is `dequeued` then
`executing` in one write, with a `status_change` event for each step, in order.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from straitruns.domain.models import ErrorClass, Event, ExecutionTrace, Run, WaitingReason
from straitruns.domain.outcomes import engine_error
from straitruns.domain.statuses import RunStatus

S = RunStatus
_EMPTY: Mapping[str, Any] = MappingProxyType({})

CANCELED_BY_USER = "canceled by user"
PARENT_CANCELED = "parent run canceled"


@dataclass(frozen=True)
class Step:
    """One status change: the target status, the reason its `status_change` event gives, the run's
    fields that change with it, and extra data for the event (`note`, e.g. a bulk operation id)."""

    target: RunStatus
    reason: str
    changes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    note: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def noted(self, **note: Any) -> "Step":
        return Step(self.target, self.reason, self.changes, {**self.note, **note})


def evolve(run: Run, changes: Mapping[str, Any]) -> Run:
    """`run` with `changes` applied. Raises ValueError naming a field a run does not have, so a
    misspelt change fails loudly instead of being dropped."""
    unknown = sorted(set(changes) - set(Run.model_fields))
    if unknown:
        raise ValueError(f"a run has no field {', '.join(unknown)}")
    return run.model_copy(update=dict(changes))


# Dispatch -------------------------------------------------------------------------------------


def promoted(now: datetime) -> Step:
    """`delayed -> queued`: its scheduled time came."""
    return Step(S.QUEUED, "scheduled time reached", {"queued_at": now})


def claimed(run: Run, now: datetime) -> Step:
    """`queued -> dequeued` by a dispatcher: a new generation (older messages and tokens are stale)."""
    return Step(
        S.DEQUEUED,
        "dequeued",
        {
            "generation": run.generation + 1,
            "ever_claimed": True,
            "claimed_at": now,
            "next_retry_at": None,
            "waiting_reason": None,
            "slot_queue": None,
        },
    )


def started(now: datetime, timeout_at: datetime) -> Step:
    """`dequeued -> executing`, just before the endpoint is called."""
    return Step(S.EXECUTING, "executing", {"started_at": now, "heartbeat_at": now, "timeout_at": timeout_at})


def completed(now: datetime, result: str | None, trace: ExecutionTrace | None = None) -> Step:
    changes: dict[str, Any] = {"result": result, "finished_at": now, "error": None, "error_class": None}
    if trace is not None:
        changes["execution_trace"] = trace
    return Step(S.COMPLETED, "completed", changes)


def failed(
    now: datetime, error: str, error_class: ErrorClass | None, trace: ExecutionTrace | None = None
) -> Step:
    """A non-retryable failure (or the SDK's `fail`): no retry."""
    changes: dict[str, Any] = {"error": error, "error_class": error_class, "finished_at": now}
    if trace is not None:
        changes["execution_trace"] = trace
    return Step(S.FAILED, "failed", changes)


def ended(status: RunStatus, reason: str, now: datetime, error: str, error_class: ErrorClass) -> Step:
    """The engine ends a run it could not run (`system_failed`, ...)."""
    return Step(
        status, reason, {"error": engine_error(error), "error_class": error_class, "finished_at": now}
    )


def requeued(reason: str, now: datetime) -> Step:
    """Back to `queued` without using an attempt (the dispatcher vanished before the call)."""
    return Step(S.QUEUED, reason, {"queued_at": now})


@dataclass(frozen=True)
class FailedAttempt:
    """A retryable failure of the current attempt: what was wrong and the poison-pill streak."""

    error: str
    error_class: ErrorClass
    fingerprint: str
    streak: int
    trace: ExecutionTrace | None = None

    def changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "error": engine_error(self.error),
            "error_class": self.error_class,
            "error_fingerprint": self.fingerprint,
            "fingerprint_streak": self.streak,
        }
        if self.trace is not None:
            changes["execution_trace"] = self.trace
        return changes


def retried(run: Run, failure: FailedAttempt, now: datetime, next_retry_at: datetime) -> Step:
    """`queued` again for the next attempt, due at `next_retry_at`."""
    return Step(
        S.QUEUED,
        f"retry after {failure.error_class.value}",
        {**failure.changes(), "attempt": run.attempt + 1, "next_retry_at": next_retry_at, "queued_at": now},
    )


def exhausted(status: RunStatus, failure: FailedAttempt, now: datetime) -> Step:
    """No attempt left (or the poison pill): `timed_out`, `crashed` or `dead_letter`."""
    return Step(status, failure.error_class.value, {**failure.changes(), "finished_at": now})


# Ends decided by time -------------------------------------------------------------------------


def expired(now: datetime) -> Step:
    return Step(S.EXPIRED, "expired", {"finished_at": now, "error": "expired before it started"})


def await_timed_out(now: datetime) -> Step:
    return Step(S.TIMED_OUT, "await timeout", {"finished_at": now, "error": "await timed out"})


# Waiting ---------------------------------------------------------------------------------------


def awaiting_children(deadline: datetime) -> Step:
    """`executing -> waiting` for the children it spawned with `await_completion`."""
    return Step(
        S.WAITING,
        "awaiting children",
        {"timeout_at": deadline, "resumed_after": (), "waiting_reason": WaitingReason.CHILDREN},
    )


def children_finished(run: Run, now: datetime, children: tuple[str, ...]) -> Step:
    """`waiting -> queued` on a new generation once every awaited child ended (attempt unchanged)."""
    return Step(
        S.QUEUED,
        "awaited children finished",
        {
            "generation": run.generation + 1,
            "queued_at": now,
            "timeout_at": None,
            "resumed_after": children,
            "waiting_reason": None,
        },
    )


def dependencies_met(run: Run, now: datetime) -> Step:
    """`waiting -> queued` on a new generation: every dependency of its job is satisfied."""
    return Step(
        S.QUEUED,
        "dependencies met",
        {"generation": run.generation + 1, "queued_at": now, "waiting_reason": None},
    )


# Steering -------------------------------------------------------------------------------------


def canceled(now: datetime, error: str = CANCELED_BY_USER, reason: str | None = None) -> Step:
    return Step(
        S.CANCELED,
        reason or error,
        {"finished_at": now, "error": error, "error_class": ErrorClass.CANCELED, "waiting_reason": None},
    )


def paused() -> Step:
    return Step(S.PAUSED, "paused", {"waiting_reason": None})


def resumed(run: Run, now: datetime) -> Step:
    """`paused -> queued`, or `delayed` while its scheduled time is still ahead."""
    if run.scheduled_at is not None and run.scheduled_at > now:
        return Step(S.DELAYED, "resumed", {"queued_at": None})
    return Step(S.QUEUED, "resumed", {"queued_at": now})


def restarted(run: Run, now: datetime, machine_preset: str | None) -> Step:
    """`queued` again on a new generation: the current attempt is abandoned (attempt unchanged)."""
    return Step(
        S.QUEUED,
        "restarted",
        {
            "generation": run.generation + 1,
            "started_at": None,
            "finished_at": None,
            "heartbeat_at": None,
            "next_retry_at": None,
            "claimed_at": None,
            "timeout_at": None,
            "queued_at": now,
            "machine_preset": machine_preset or run.machine_preset,
            "waiting_reason": None,
            "slot_queue": None,
        },
    )


def rescheduled(run: Run, now: datetime, scheduled: datetime, expires_at: datetime | None) -> Step:
    """A delayed (or never claimed queued) run moved to `scheduled`: `delayed` while that is ahead,
    else `queued`; a new generation makes messages sent for the old time stale."""
    target = S.DELAYED if scheduled > now else S.QUEUED
    return Step(
        target,
        "rescheduled",
        {
            "scheduled_at": scheduled,
            "expires_at": expires_at,
            "generation": run.generation + 1,
            "queued_at": now if target == S.QUEUED else None,
            "next_retry_at": None,
            "slot_queue": None,
            "waiting_reason": None,
        },
    )


def replay_staged() -> Step:
    """`dead_letter -> replay_staged`: the first step of a bulk DLQ replay."""
    return Step(S.REPLAY_STAGED, "bulk-dlq-replay staged")


def dlq_replayed(run: Run, now: datetime, reason: str = "dlq-replay") -> Step:
    """A dead-lettered (or staged) run back to `queued` in place: attempt 1, a new generation, the
    last attempt's errors and times cleared."""
    return Step(
        S.QUEUED,
        reason,
        {
            "attempt": 1,
            "generation": run.generation + 1,
            "error": None,
            "error_class": None,
            "started_at": None,
            "finished_at": None,
            "heartbeat_at": None,
            "next_retry_at": None,
            "claimed_at": None,
            "timeout_at": None,
            "queued_at": now,
            "error_fingerprint": None,
            "fingerprint_streak": 0,
            "slot_queue": None,
            "waiting_reason": None,
        },
    )


def continued(now: datetime, successor_id: str, result: str) -> Step:
    """The run completes as it continues as a new run (`continue`, spec 6)."""
    return Step(
        S.COMPLETED,
        "continued as new",
        {
            "result": result,
            "finished_at": now,
            "continued_by": successor_id,
            "error": None,
            "error_class": None,
        },
    )


@dataclass(frozen=True)
class Written:
    """What the store wrote for a transition: its events, and the run's event bookkeeping after
    them (the last sequence taken, how many events its state item keeps)."""

    events: list[Event]
    event_seq: int
    inline_events: int
