"""Concurrency queues (spec 4.9, docs/engine.md#concurrency).

A run of a job with `max_concurrency` (or `max_concurrency_per_key` and a concurrency key) never
polls for a slot: it waits in its queue, sorted by priority then creation, and a slot is reserved
for it by a drain of that queue (one transaction per run: the slot, the queue entry, the run's
state), after which it gets its run message and is claimed holding the slot. A run that needs both
a key slot and a job slot waits for the key slot first, then in the job's queue.

Drains happen through the effects of status changes (docs/engine.md#effects): a run that gives a
slot back names it in its change's effects, and a run that joins a queue while a slot may be free
asks for a drain of its queue. The scheduler's wake-up of a queued run drains its queue too, so a
race lost between a join and a release costs at most STRAIT_REENQUEUE_AFTER_SECS.
"""

import hashlib
from collections import Counter
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

from straitruns.adapters.run_queue import RunMessage
from straitruns.adapters.store import keys
from straitruns.adapters.store.concurrency import ConcurrencyStore, Reservation, Stage, queue_entry
from straitruns.adapters.store.engine import slot_counter
from straitruns.adapters.store.table import Item
from straitruns.domain.models import Job, Run, WaitingReason
from straitruns.services.ports import RunMessages, RunSaves
from straitruns.services.run_state import FX_DRAIN, EventDraft

# Queue entries one read of a drain takes at most, and how many more than it needs it reads (runs
# that left the queue are skipped without a second read).
_DRAIN_BATCH = 25
_SPARE_ENTRIES = 2
WAITING_FOR_SLOT = "waiting for a concurrency slot"


def stages(job: Job, run: Run) -> list[Stage]:
    """The slots a run of `job` needs, in the order it waits for them (its key's, then the job's)."""
    needed: list[Stage] = []
    if job.max_concurrency_per_key is not None and run.concurrency_key:
        key_hash = hashlib.sha256(run.concurrency_key.encode()).hexdigest()
        needed.append(
            Stage(
                keys.concurrency_queue(job.id, key_hash),
                slot_counter(job.id, key_hash),
                job.max_concurrency_per_key,
            )
        )
    if job.max_concurrency is not None:
        needed.append(Stage(keys.concurrency_queue(job.id), slot_counter(job.id), job.max_concurrency))
    return needed


def missing_stages(job: Job, run: Run) -> list[Stage]:
    """The slots the run still has to wait for."""
    return [stage for stage in stages(job, run) if stage.counter not in run.slots]


def queue_of_counter(counter: str) -> str:
    """The queue whose runs wait for slots of `counter` (`SLOTS#<job>[#<key>]`)."""
    return "CQ#" + counter.removeprefix("SLOTS#")


@dataclass(frozen=True)
class Admission:
    """How a new run of a limited job enters its queue: what its state says, the queue entry
    written with it, the effect that looks at the queue when a slot may be free, and the event
    that records it waits when none is."""

    run: Run
    entry: Item
    effects: frozenset[str]
    events: tuple[EventDraft, ...]


class ConcurrencyQueues:
    def __init__(self, store: ConcurrencyStore, runs: RunSaves, queue: RunMessages) -> None:
        self.store = store
        self.runs = runs
        self.queue = queue

    def counters_to_read(self, job: Job, run_hint: Run | None = None) -> list[tuple[str, str]]:
        """The counter items a trigger reads with the job: the job-wide one, or those `run_hint`
        needs (a key's counter is per run)."""
        if job.max_concurrency is None and job.max_concurrency_per_key is None:
            return []
        counters = [slot_counter(job.id)] if job.max_concurrency is not None else []
        if run_hint is not None:
            counters = [stage.counter for stage in stages(job, run_hint)]
        return [(counter, "SLOTS") for counter in counters]

    def admit(self, job: Job, run: Run, active: MutableMapping[str, int]) -> Admission | None:
        """The admission of a new queued `run` of `job` into its first queue (None: no limit).
        `active` holds the slots in use of the counters read with the job, when they were: a run
        for which a slot looks free asks for a drain of its queue (and counts as using it, so the
        next of a batch waits); one for which none does records that it waits."""
        needed = missing_stages(job, run)
        if not needed:
            return None
        first, then = needed[0], (needed[1] if len(needed) > 1 else None)
        waiting = run.model_copy(
            update={"slot_queue": first.queue, "waiting_reason": WaitingReason.CONCURRENCY_LIMIT}
        )
        entry = queue_entry(waiting, first, then)
        in_use = active.get(first.counter)
        if in_use is not None and in_use >= first.maximum:
            draft = EventDraft("concurrency.waiting", WAITING_FOR_SLOT, {"queue": "key" if then else "job"})
            return Admission(waiting, entry, frozenset(), (draft,))
        if in_use is not None:
            active[first.counter] = in_use + 1
        return Admission(waiting, entry, frozenset({FX_DRAIN}), ())

    def join(self, job: Job, run: Run) -> bool:
        """Puts a queued run that reached the dispatcher without the slots it needs (a retry, a
        resume, ...) in its queue, asking for a drain of it. False when it needs no slot."""
        needed = missing_stages(job, run)
        if not needed:
            return False
        first, then = needed[0], (needed[1] if len(needed) > 1 else None)
        waiting = run.model_copy(
            update={"slot_queue": first.queue, "waiting_reason": WaitingReason.CONCURRENCY_LIMIT}
        )
        entry = queue_entry(waiting, first, then)
        self.store.add(entry)  # first: a run that says it waits is always found in its queue
        if not self.runs.save(run, waiting, fx={"k": [FX_DRAIN]}):
            self.store.remove(entry["pk"], entry["sk"])
        return True

    def drain(self, queue: str, slots: int | None = None) -> int:
        """Reserves slots for the runs at the head of `queue`, in order, until `slots` are
        reserved (None: until a counter is full), the counter is full or the job is paused, and
        sends each run on (to the next queue it needs, or to the run queue). Returns how many runs
        it reserved a slot for."""
        reserved = 0
        while slots is None or reserved < slots:
            wanted = _DRAIN_BATCH if slots is None else slots - reserved + _SPARE_ENTRIES
            waiting = self.store.head(queue, min(wanted, _DRAIN_BATCH))
            for entry in waiting:
                if slots is not None and reserved >= slots:
                    return reserved
                outcome = self.store.reserve(entry)
                if outcome in (Reservation.FULL, Reservation.JOB_HELD):
                    return reserved
                if outcome == Reservation.MOVED:
                    self.store.remove(entry.queue, entry.position)
                    continue
                if outcome == Reservation.GONE:
                    continue
                reserved += 1
                if entry.then is not None:
                    self.drain(entry.then.queue, 1)
                else:
                    self.queue.send([RunMessage(entry.run_id, entry.generation, job_id=entry.job_id)])
            if len(waiting) < min(wanted, _DRAIN_BATCH):
                return reserved
        return reserved

    def drain_released(self, counters: Sequence[str]) -> int:
        """Hands the slots a run gave back to the next waiting runs (one per slot)."""
        released = Counter(counters)
        return sum(self.drain(queue_of_counter(counter), count) for counter, count in released.items())
