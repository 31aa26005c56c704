"""Status changes: checked against the domain's transition table, written conditionally with
their status_change event (spec 3)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from straitruns.adapters.store.engine import EngineStore
from straitruns.adapters.store.runs import RunStore, TransitionRefused
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict
from straitruns.domain.ids import IdFactory, IdKind
from straitruns.domain.jsonvalue import dump_json
from straitruns.domain.models import Event, EventLevel, Run
from straitruns.domain.statuses import RunStatus, can_transition
from straitruns.domain.timers import TimerPolicy, next_wake


def status_change_event(
    ids: IdFactory, clock: Clock, run: Run, previous: RunStatus | None, reason: str, sequence: int
) -> Event:
    """The `status_change` event of a transition (`previous` None for creation)."""
    data = {
        "from": previous.value if previous else None,
        "to": run.status.value,
        "attempt": run.attempt,
        "reason": reason,
    }
    return Event(
        id=ids.new(IdKind.EVENT),
        run_id=run.id,
        sequence=sequence,
        type="status_change",
        level=EventLevel.INFO,
        message=f"{previous.value if previous else 'created'} -> {run.status.value}",
        data=dump_json(data),
        created_at=clock.now(),
    )


RunListener = Callable[[Run, Run], None]
_HOLDS_SLOT = frozenset({RunStatus.DEQUEUED, RunStatus.EXECUTING})


def with_wake(run: Run, now: datetime, policy: TimerPolicy) -> Run:
    """The run with its next scheduler wake-up derived from its status."""
    return run.model_copy(update={"wake_at": next_wake(run, now, policy)})


class RunStateMachine:
    """Every status change goes through here: the transition table is checked, the run's timer
    and concurrency slots follow its status, and listeners hear about every change."""

    def __init__(
        self, runs: RunStore, engine: EngineStore, clock: Clock, ids: IdFactory, policy: TimerPolicy
    ) -> None:
        self.runs = runs
        self.engine = engine
        self.clock = clock
        self.ids = ids
        self.policy = policy
        self.listeners: list[RunListener] = []

    def change(
        self,
        run: Run,
        target: RunStatus,
        reason: str,
        *,
        wake_no_later_than: datetime | None = None,
        **changes: Any,
    ) -> Run:
        """Moves `run` to `target` with `changes` applied, if the table allows it and nobody else
        changed the run first. `wake_no_later_than` brings the scheduler's next look at the run
        forward (a cancelled run whose descendants must still be walked). Raises Conflict otherwise."""
        if not can_transition(run.status, target):
            raise Conflict(f"a {run.status.value} run cannot become {target.value}")
        new = run.model_copy(update={**changes, "status": target})
        releases: list[dict[str, Any]] = []
        if run.slots and target not in _HOLDS_SLOT:
            releases = self.engine.slot_release_actions(run)
            new = new.model_copy(update={"slots": ()})
        new = with_wake(new, self.clock.now(), self.policy)
        if wake_no_later_than is not None:
            wake = min(new.wake_at or wake_no_later_than, wake_no_later_than)
            new = new.model_copy(update={"wake_at": wake})
        try:
            self.runs.transition(
                run,
                new,
                lambda seq: status_change_event(self.ids, self.clock, new, run.status, reason, seq),
                releases,
            )
        except TransitionRefused as exc:
            raise Conflict("status changed concurrently") from exc
        for listener in self.listeners:
            listener(run, new)
        return new
