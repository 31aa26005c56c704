"""Status changes: checked against the domain's transition table, written conditionally with
their status_change event (spec 3)."""

from typing import Any

from straitruns.adapters.store.runs import RunStore, TransitionRefused
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict
from straitruns.domain.ids import IdFactory, IdKind
from straitruns.domain.jsonvalue import dump_json
from straitruns.domain.models import Event, EventLevel, Run
from straitruns.domain.statuses import RunStatus, can_transition


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


class RunStateMachine:
    def __init__(self, runs: RunStore, clock: Clock, ids: IdFactory) -> None:
        self.runs = runs
        self.clock = clock
        self.ids = ids

    def change(self, run: Run, target: RunStatus, reason: str, **changes: Any) -> Run:
        """Moves `run` to `target` with `changes` applied, if the table allows it and nobody else
        changed the run first. Raises Conflict otherwise."""
        if not can_transition(run.status, target):
            raise Conflict(f"a {run.status.value} run cannot become {target.value}")
        new = run.model_copy(update={**changes, "status": target})
        try:
            self.runs.transition(
                run, new, lambda seq: status_change_event(self.ids, self.clock, new, run.status, reason, seq)
            )
        except TransitionRefused as exc:
            raise Conflict("status changed concurrently") from exc
        return new
