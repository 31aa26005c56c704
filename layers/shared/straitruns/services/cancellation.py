"""Cancelling runs (spec 5 items 3, 5, 9): a run, then every non-terminal descendant through
`parent_run_id`, at any depth.

The walk over a run's descendants is bounded by the caller's work budget. It only descends into runs
that were ever dispatched (only those can have spawned children). Two things make it complete:

- a cancelled run that had been dispatched asks, in its cancel transition, for the walk of its
  children as an effect (docs/engine.md#effects), and is written with a scheduler wake-up a few
  seconds ahead, so the scheduler walks its children once more, which catches a child spawned in a
  race with the cancel or not yet visible in the children index (GSIs are eventually consistent);
- runs whose children the walk did not reach before its budget ran out get a wake-up at once, and
  the scheduler continues the walk from them (`continue_walk`).
"""

import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

from straitruns.adapters.store.engine import EngineStore
from straitruns.adapters.store.runs import RunStore
from straitruns.domain import limits, transitions
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict
from straitruns.domain.models import Run
from straitruns.domain.run_filter import RunFilter
from straitruns.services.budget import Timer, WorkBudget
from straitruns.services.run_state import RunStateMachine

logger = logging.getLogger("straitruns.cancellation")

CANCELED_BY_USER = transitions.CANCELED_BY_USER
PARENT_CANCELED = transitions.PARENT_CANCELED
ALREADY_TERMINAL = "run already in terminal state"
CHANGED_CONCURRENTLY = "status changed concurrently"

# A run that keeps changing under a cancel is read again and retried this many times.
_RACE_RETRIES = 3


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: `run` as it is now; `canceled` when this call cancelled it, else `error`
    says why not; `descendants` counts the descendants this call cancelled."""

    run: Run
    canceled: bool
    descendants: int = 0
    error: str | None = None


@dataclass(frozen=True)
class CascadeLimits:
    """Work spent on descendants: by one API request (when the caller gives no budget of its own)
    and by the scheduler for one run per tick; `recheck_secs` is how long after a cancel the
    scheduler walks the cancelled run's children once more."""

    request_runs: int = 1000
    request_seconds: float = 10.0
    scheduler_runs: int = 200
    scheduler_seconds: float = 5.0
    recheck_secs: float = 5.0


class Cancellation:
    def __init__(
        self,
        runs: RunStore,
        state: RunStateMachine,
        engine: EngineStore,
        clock: Clock,
        cascade: CascadeLimits | None = None,
        timer: Timer = time.monotonic,
    ) -> None:
        self.runs = runs
        self.state = state
        self.engine = engine
        self.clock = clock
        self.cascade = cascade or CascadeLimits()
        self.timer = timer

    def effect_budget(self) -> WorkBudget:
        """The budget one effect (a cancelled run's children, docs/engine.md#effects) spends."""
        return WorkBudget.start(self.cascade.scheduler_runs, self.cascade.scheduler_seconds, self.timer)

    def request_budget(self) -> WorkBudget:
        """The budget one API request spends on the descendants of the runs it cancels."""
        return WorkBudget.start(self.cascade.request_runs, self.cascade.request_seconds, self.timer)

    def cancel(self, run: Run, budget: WorkBudget) -> CancelOutcome:
        """Cancels `run` ("canceled by user"), reading it again when it changed concurrently, then
        its non-terminal descendants as far as `budget` goes (the scheduler cancels the rest within
        a tick). Never raises Conflict: the outcome says why the run was not cancelled."""
        current = run
        for attempt in range(_RACE_RETRIES + 1):
            if current.is_terminal:
                return CancelOutcome(current, False, error=ALREADY_TERMINAL)
            if attempt == _RACE_RETRIES:
                break
            try:
                canceled = self._cancel_one(current, CANCELED_BY_USER)
            except Conflict:
                current = self.runs.get(run.id) or current
                continue
            return CancelOutcome(canceled, True, self.cancel_descendants([canceled], budget))
        return CancelOutcome(current, False, error=CHANGED_CONCURRENTLY)

    def cancel_descendants(self, roots: list[Run], budget: WorkBudget) -> int:
        """Cancels the non-terminal descendants of `roots` ("parent run canceled") as far as
        `budget` goes, and leaves the rest to the scheduler. Returns how many it cancelled."""
        frontier = deque(root for root in roots if root.ever_claimed)
        canceled, leftovers = self._walk(frontier, budget)
        self._mark(leftovers)
        return canceled

    def continue_walk(self, run: Run) -> str:
        """The scheduler's part: walks the children of a cancelled (or otherwise terminal) run whose
        wake-up is due, within one tick's budget, then clears the wake-up unless the run's own
        children were not reached. Returns what it did."""
        budget = WorkBudget.start(self.cascade.scheduler_runs, self.cascade.scheduler_seconds, self.timer)
        canceled, leftovers = self._walk(deque([run]), budget)
        self._mark(leftovers)
        if all(leftover.id != run.id for leftover in leftovers):
            self.engine.set_wake(run, None)
        return "descendants-canceled" if canceled else "descendants-checked"

    # Internals ------------------------------------------------------------------------------

    def _walk(self, frontier: deque[Run], budget: WorkBudget) -> tuple[int, list[Run]]:
        """Breadth first over the frontier's children: cancels the non-terminal ones and queues
        those that may have children of their own. Returns (cancelled, runs still to walk)."""
        canceled = 0
        again: list[Run] = []
        while frontier and not budget.exhausted():
            node = frontier.popleft()
            children = self._children(node)
            budget.spend()
            for position, child in enumerate(children):
                if position and budget.exhausted():
                    again.append(node)  # its remaining children: read again from the start
                    break
                budget.spend()
                walked = child
                if not child.is_terminal:
                    outcome = self._cancel_child(child)
                    if outcome is None:
                        again.append(node)
                        continue
                    walked, by_us = outcome
                    canceled += by_us
                if walked.ever_claimed:
                    frontier.append(walked)
        return canceled, [*again, *frontier]

    def _children(self, node: Run) -> list[Run]:
        children: list[Run] = []
        cursor: str | None = None
        run_filter = RunFilter(project_id=node.project_id, parent_run_id=node.id)
        while True:
            page = self.runs.list_runs(
                run_filter,
                limit=limits.CHILDREN_PER_RUN,
                before=cursor,
                budget=limits.CHILDREN_PER_RUN,
                ascending=True,
            )
            children.extend(page.runs)
            if page.next_cursor is None:
                return children
            cursor = page.next_cursor

    def _cancel_child(self, child: Run) -> tuple[Run, bool] | None:
        """(the child now, whether this call cancelled it); None when it kept changing."""
        current = child
        for _ in range(_RACE_RETRIES):
            if current.is_terminal:
                return current, False
            try:
                return self._cancel_one(current, PARENT_CANCELED), True
            except Conflict:
                fresh = self.runs.get(child.id)
                if fresh is None:
                    return None
                current = fresh
        return None

    def _cancel_one(self, run: Run, error: str) -> Run:
        """One cancel transition. Raises Conflict when the run changed first."""
        now = self.clock.now()
        recheck = now + timedelta(seconds=self.cascade.recheck_secs) if run.ever_claimed else None
        return self.state.apply(run, transitions.canceled(now, error), wake_no_later_than=recheck)

    def _mark(self, runs: list[Run]) -> None:
        """Hands the walk from these runs to the scheduler's next tick."""
        now = self.clock.now()
        for run in {run.id: run for run in runs}.values():
            if not self.engine.set_wake(run, now):
                logger.warning("a run moved on before its descendants were walked", extra={"run_id": run.id})
