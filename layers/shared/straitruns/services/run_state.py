"""Status changes (spec 3): named transitions (domain/transitions.py) checked against the domain's
transition table and written conditionally with their `status_change` events and the effects they
call for, in one write of the run's state item (the outbox, docs/engine.md#effects).

Nothing that must follow a status change runs here in memory: what another run or item must see
(a dependent released, a parent resumed, a cancel continued, a freed slot handed on, a dead letter
parked) is named in the write's `fx` and done by the effects function from the table's stream.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict, TransitionRefused
from straitruns.domain.ids import IdFactory, IdKind
from straitruns.domain.jsonvalue import dump_json
from straitruns.domain.models import Event, EventLevel, Run
from straitruns.domain.statuses import RunStatus, can_transition
from straitruns.domain.timers import TimerPolicy, next_wake
from straitruns.domain.transitions import Step, evolve
from straitruns.services.ports import RunWrites, SlotReleases

# Effects a status change can call for (docs/engine.md#effects).
FX_TERMINAL = "terminal"  # the run ended: its job's dependents, the latest-terminal records
FX_PARENT = "parent"  # the run ended and has a parent that may await it
FX_CASCADE = "cascade"  # the run was cancelled after it was dispatched: walk its children
FX_DEAD_LETTER = "dead_letter"  # park the run on the SQS dead-letter queue
FX_SLOTS = "slots"  # the run gave slots back: hand them to the next waiting runs
FX_DRAIN = "drain"  # the run waits for a slot that may be free: look at its queue
FX_UNLIST = "unlist"  # the run stopped waiting on dependencies: remove its waiting listings

_HOLDS_SLOT = frozenset({RunStatus.DEQUEUED, RunStatus.EXECUTING})


def status_change_event(
    ids: IdFactory,
    clock: Clock,
    run: Run,
    previous: RunStatus | None,
    reason: str,
    sequence: int,
    note: Mapping[str, Any] | None = None,
) -> Event:
    """The `status_change` event of a transition (`previous` None for creation)."""
    data = {
        "from": previous.value if previous else None,
        "to": run.status.value,
        "attempt": run.attempt,
        "reason": reason,
        **(note or {}),
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


@dataclass(frozen=True)
class EventDraft:
    """An event written with a status change (`attempt.started` after a claim, `attempt.finished`
    before the outcome): numbered when the change is written."""

    type: str
    message: str
    data: Mapping[str, Any]
    level: EventLevel = EventLevel.INFO


@dataclass(frozen=True)
class Effects:
    """What a status change asks of the effects function (kept in the state item as `fx`)."""

    kinds: frozenset[str] = frozenset()
    details: Mapping[str, Any] = field(default_factory=dict)

    def encoded(self) -> dict[str, Any] | None:
        if not self.kinds:
            return None
        return {"k": sorted(self.kinds), **self.details}


def with_wake(run: Run, now: datetime, policy: TimerPolicy) -> Run:
    """The run with its next scheduler wake-up derived from its status."""
    return run.model_copy(update={"wake_at": next_wake(run, now, policy)})


def effects_of(old: Run | None, new: Run) -> Effects:
    """The effects a change from `old` (None: creation) to `new` calls for, by the rules of
    docs/engine.md#effects."""
    kinds: set[str] = set()
    details: dict[str, Any] = {}
    ended = new.is_terminal and (old is None or not old.is_terminal)
    if ended:
        kinds.add(FX_TERMINAL)
        if new.parent_run_id:
            kinds.add(FX_PARENT)
        if new.status == RunStatus.CANCELED and new.ever_claimed:
            kinds.add(FX_CASCADE)
    if new.status == RunStatus.DEAD_LETTER and (old is None or old.status != RunStatus.DEAD_LETTER):
        kinds.add(FX_DEAD_LETTER)
    if old is not None and old.slots and not new.slots:
        kinds.add(FX_SLOTS)
        details["slots"] = list(old.slots)
    if old is not None and _waits_on_dependencies(old) and not _waits_on_dependencies(new):
        kinds.add(FX_UNLIST)
    return Effects(frozenset(kinds), details)


def _waits_on_dependencies(run: Run) -> bool:
    return run.status == RunStatus.WAITING and not run.ever_claimed


class RunStateMachine:
    """Every status change goes through here: the transition table is checked, the run's timer
    and concurrency slots follow its status, and its effects are named in the same write."""

    def __init__(
        self,
        runs: RunWrites,
        slots: SlotReleases,
        clock: Clock,
        ids: IdFactory,
        policy: TimerPolicy,
    ) -> None:
        self.runs = runs
        self.slots = slots
        self.clock = clock
        self.ids = ids
        self.policy = policy

    def apply(
        self,
        run: Run,
        steps: Step | Sequence[Step],
        *,
        before: Sequence[EventDraft] = (),
        after: Sequence[EventDraft] = (),
        effects: Iterable[str] = (),
        extra_actions: Sequence[dict[str, Any]] = (),
        wake_no_later_than: datetime | None = None,
        keep_earlier_wake: bool = False,
    ) -> Run:
        """Moves `run` through `steps` in one write, if the table allows every step and nobody
        else changed the run first. `before`/`after` are events written with the change (before
        its first `status_change`, after its last). `effects` adds effects to those the change
        calls for by itself; `extra_actions` are written with it (one transaction).
        `wake_no_later_than` brings the scheduler's next look forward; `keep_earlier_wake` keeps
        the run's current wake-up when it comes sooner than the new status needs (the scheduler
        then looks once more and moves it; a claim spares a timer write so).

        Raises Conflict (status not allowed, or changed concurrently)."""
        plan = [steps] if isinstance(steps, Step) else list(steps)
        path: list[tuple[RunStatus, Step, Run]] = []
        current = run
        for step in plan:
            if not can_transition(current.status, step.target):
                raise Conflict(f"a {current.status.value} run cannot become {step.target.value}")
            following = evolve(current, {**step.changes, "status": step.target})
            path.append((current.status, step, following))
            current = following
        new = current
        releases: list[dict[str, Any]] = []
        if run.slots and new.status not in _HOLDS_SLOT:
            releases = self.slots.slot_release_actions(run)
            new = new.model_copy(update={"slots": ()})
        new = self._timed(run, new, wake_no_later_than, keep_earlier_wake)
        found = effects_of(run, new)
        fx = Effects(found.kinds | frozenset(effects), found.details)

        def make_events(first: int) -> list[Event]:
            return self._events(run.id, path, before, after, first)

        try:
            written = self.runs.transition(run, new, make_events, [*releases, *extra_actions], fx.encoded())
        except TransitionRefused as exc:
            raise Conflict("status changed concurrently") from exc
        return new.model_copy(update={"event_seq": written.event_seq, "inline_events": written.inline_events})

    def change(self, run: Run, target: RunStatus, reason: str, **changes: Any) -> Run:
        """One step to `target` with `changes` (validated: a field a run does not have raises
        ValueError). For tests and tools that put a run in a state; the engine uses named
        transitions."""
        wake = changes.pop("wake_no_later_than", None)
        return self.apply(run, Step(target, reason, changes), wake_no_later_than=wake)

    def _timed(self, run: Run, new: Run, wake_no_later_than: datetime | None, keep_earlier: bool) -> Run:
        now = self.clock.now()
        new = with_wake(new, now, self.policy)
        earlier = run.wake_at
        if keep_earlier and earlier is not None and new.wake_at is not None and now <= earlier <= new.wake_at:
            new = new.model_copy(update={"wake_at": earlier})
        if wake_no_later_than is not None:
            wake = min(new.wake_at or wake_no_later_than, wake_no_later_than)
            new = new.model_copy(update={"wake_at": wake})
        return new

    def _events(
        self,
        run_id: str,
        path: list[tuple[RunStatus, Step, Run]],
        before: Sequence[EventDraft],
        after: Sequence[EventDraft],
        first: int,
    ) -> list[Event]:
        events: list[Event] = []
        sequence = first
        for draft in before:
            events.append(self._draft(run_id, draft, sequence))
            sequence += 1
        for previous, step, state in path:
            events.append(
                status_change_event(self.ids, self.clock, state, previous, step.reason, sequence, step.note)
            )
            sequence += 1
        for draft in after:
            events.append(self._draft(run_id, draft, sequence))
            sequence += 1
        return events

    def _draft(self, run_id: str, draft: EventDraft, sequence: int) -> Event:
        return Event(
            id=self.ids.new(IdKind.EVENT),
            run_id=run_id,
            sequence=sequence,
            type=draft.type,
            level=draft.level,
            message=draft.message,
            data=dump_json(dict(draft.data)),
            created_at=self.clock.now(),
        )

    def creation_events(self, run: Run, extra: Sequence[EventDraft] = ()) -> list[Event]:
        """The events a new run is stored with: its `status_change` from nothing, then `extra`."""
        events = [status_change_event(self.ids, self.clock, run, None, "created", 1)]
        events += [self._draft(run.id, draft, 2 + position) for position, draft in enumerate(extra)]
        return events
