"""The effects of status changes (docs/engine.md#effects), driven by the table's stream.

Every status change names, in the same write of the run's state item, the effects another run or
item must see (`fx`). The stream delivers that write at least once and in order per run; the
effects function hands each record here. Every effect is a re-evaluation of the current state
with conditional writes, so a record delivered twice, or replayed from the failure queue, does no
harm: a dependent is released once, a parent resumed once, a slot reserved once.
"""

import logging

from straitruns.domain.models import ChangeRecord
from straitruns.services.cancellation import Cancellation
from straitruns.services.concurrency import ConcurrencyQueues
from straitruns.services.dead_letters import DeadLetters
from straitruns.services.dependencies import DependencyGate
from straitruns.services.ports import JobReads, RunReads
from straitruns.services.run_family import RunFamily
from straitruns.services.run_state import (
    FX_CASCADE,
    FX_DEAD_LETTER,
    FX_DRAIN,
    FX_PARENT,
    FX_SLOTS,
    FX_TERMINAL,
    FX_UNLIST,
)

logger = logging.getLogger("straitruns.effects")


class EffectsService:
    def __init__(
        self,
        runs: RunReads,
        jobs: JobReads,
        gate: DependencyGate,
        family: RunFamily,
        cancellation: Cancellation,
        dead_letters: DeadLetters,
        concurrency: ConcurrencyQueues,
    ) -> None:
        self.runs = runs
        self.jobs = jobs
        self.gate = gate
        self.family = family
        self.cancellation = cancellation
        self.dead_letters = dead_letters
        self.concurrency = concurrency

    def apply(self, change: ChangeRecord) -> list[str]:
        """Carries out the effects `change` asks for; returns which it did. Raises on a store or
        queue failure, so the record is delivered again."""
        done: list[str] = []
        kinds = change.effects
        # A freed slot first: the runs waiting for it are the ones the change held back.
        if FX_SLOTS in kinds and change.released_slots:
            self.concurrency.drain_released(change.released_slots)
            done.append(FX_SLOTS)
        if FX_DRAIN in kinds and change.slot_queue:
            self.concurrency.drain(change.slot_queue, 1)
            done.append(FX_DRAIN)
        if FX_DEAD_LETTER in kinds:
            self.dead_letters.park(change.run_id, change.generation)
            done.append(FX_DEAD_LETTER)
        if FX_UNLIST in kinds:
            self.gate.stopped_waiting(change.job_id, change.run_id)
            done.append(FX_UNLIST)
        if FX_TERMINAL in kinds and self._has_dependents(change.job_id):
            run = self.runs.get(change.run_id)
            if run is not None and run.is_terminal:
                self.gate.upstream_finished(run)
                done.append(FX_TERMINAL)
        if FX_PARENT in kinds and change.parent_run_id:
            self.family.settle(change.parent_run_id)
            done.append(FX_PARENT)
        if FX_CASCADE in kinds:
            run = self.runs.get(change.run_id)
            if run is not None:
                self.cancellation.cancel_descendants([run], self.cancellation.effect_budget())
                done.append(FX_CASCADE)
        return done

    def _has_dependents(self, job_id: str) -> bool:
        """Whether some job depends on `job_id` (a job stored before jobs were counted: maybe)."""
        job = self.jobs.get(job_id)
        return job is not None and (job.downstream_count is None or job.downstream_count > 0)
