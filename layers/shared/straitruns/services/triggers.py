"""Triggers: one run, or a batch of runs, created and handed to the run queue (spec 4.1, 8).

A run is written in one batch of items (its definition, its state holding its `created` event,
its index items, and its queue entry when its job limits concurrency), then its message is sent;
with an idempotency key the definition, the state and the key's guard are one transaction
(docs/data-model.md#cost). A bulk trigger writes its runs the same way, in parallel batches.
"""

import hashlib
from collections.abc import Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from straitruns.adapters.run_queue import MAX_DELAY_SECS, RunMessage, run_message
from straitruns.adapters.store.runs import IdempotencyGuard, IdempotencyKeyHeld, NewRun
from straitruns.domain import limits
from straitruns.domain.auth import Principal
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict, DomainError, NotFound, PayloadTooLarge, ValidationFailed
from straitruns.domain.ids import IdFactory, IdKind, is_valid_id
from straitruns.domain.jsonvalue import dump_json, json_size
from straitruns.domain.models import Batch, Job, Run, TriggeredBy, WaitingReason
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timers import TimerPolicy
from straitruns.services.commands import BulkTrigger, RunOptions, TriggerRun
from straitruns.services.concurrency import ConcurrencyQueues
from straitruns.services.dependencies import DependencyGate
from straitruns.services.ports import RunMessages, RunReads
from straitruns.services.projects import can_see
from straitruns.services.run_state import RunStateMachine, with_wake


@dataclass(frozen=True)
class TriggerOutcome:
    run: Run
    created: bool  # False: an idempotent repeat returned the run holding the key


@dataclass(frozen=True)
class BulkOutcome:
    batch_id: str | None
    entries: list[Run | DomainError]
    created: int


@dataclass(frozen=True)
class RunLinks:
    """How a run created by another run (spawn, continue; spec 6) is tied to it."""

    creator_id: str  # the run that made it: `created_by = run:<id>`, `triggered_by = spawn`
    parent_run_id: str | None = None
    continuation_of: str | None = None
    lineage_depth: int = 0


class RunCreation(RunReads, Protocol):
    def create_many(
        self,
        new_runs: Sequence[NewRun],
        *,
        guard: IdempotencyGuard | None = None,
        replaces: str | None = None,
    ) -> None: ...

    def idempotent_run_id(self, guard: IdempotencyGuard) -> str | None: ...


class BatchStore(Protocol):
    def put_batch(self, batch: Batch) -> None: ...

    def get_batch(self, batch_id: str) -> Batch | None: ...

    def batch_status_counts(self, batch_id: str) -> dict[str, int]: ...


# Runs a bulk trigger writes per batch of requests (each run is a few items: 25 to a request).
_RUNS_PER_WRITE = 5


def idempotency_guard(job_id: str, key: str) -> IdempotencyGuard:
    return IdempotencyGuard(job_id, hashlib.sha256(key.encode()).hexdigest())


class TriggerService:
    def __init__(
        self,
        jobs: BatchStore,
        runs: RunCreation,
        queue: RunMessages,
        clock: Clock,
        ids: IdFactory,
        policy: TimerPolicy,
        dependencies: DependencyGate,
        state: RunStateMachine,
        concurrency: ConcurrencyQueues,
        workers: int = 1,
    ) -> None:
        self.policy = policy
        self.dependencies = dependencies
        self.jobs = jobs
        self.runs = runs
        self.queue = queue
        self.clock = clock
        self.ids = ids
        self.state = state
        self.concurrency = concurrency
        self.workers = max(1, workers)

    def trigger(
        self,
        principal: Principal,
        job: Job,
        command: TriggerRun,
        header_key: str | None,
        *,
        active_slots: Mapping[str, int] | None = None,
        replayed_from: str | None = None,
    ) -> TriggerOutcome:
        """Creates one run of `job` (or returns the run holding the idempotency key). With
        `replayed_from`, the run is a replay of that run (`triggered_by = retry`, spec 5 item 6).
        `active_slots` are the job's concurrency counters read with it, when they were.

        Raises Conflict (job disabled), ValidationFailed, PayloadTooLarge.
        """
        self._check_enabled(job)
        key = _idempotency_key(command.idempotency_key, header_key)
        run = self._new_run(principal, job, command, key, batch_id=None)
        if replayed_from is not None:
            run = run.model_copy(update={"triggered_by": TriggeredBy.RETRY, "replayed_from": replayed_from})
        # A run with an unmet dependency is created `waiting` and sent nowhere (spec 4.8); it is
        # evaluated once more right after creation, so an upstream finish in between is not missed.
        [run] = self.dependencies.hold(job, [run])
        outcome = self._store(job, run, key, dict(active_slots or {}))
        if outcome.created:
            [settled] = self.dependencies.settle(job, [outcome.run])
            outcome = TriggerOutcome(settled, created=True)
            self._enqueue([outcome.run], job)
        return outcome

    def bulk_trigger(
        self,
        principal: Principal,
        job: Job,
        command: BulkTrigger,
        active_slots: Mapping[str, int] | None = None,
    ) -> BulkOutcome:
        """Creates the items' runs under one batch. Every item is validated before anything is
        written; after that, an item that cannot be stored is reported and the others stand. The
        batch's counts come from its runs, so a bulk trigger stopped half-way leaves them true."""
        self._check_enabled(job)
        now = self.clock.now()
        batch = Batch(
            id=self.ids.new(IdKind.BATCH),
            project_id=job.project_id,
            job_id=job.id,
            item_count=len(command.items),
            created_count=0,
            created_at=now,
        )
        prepared: list[tuple[Run, str | None]] = []
        problems: list[dict[str, Any]] = []
        for index, item in enumerate(command.items):
            try:
                run = self._new_run(principal, job, item, item.idempotency_key, batch_id=batch.id)
                prepared.append((run, item.idempotency_key))
            except (ValidationFailed, PayloadTooLarge) as exc:
                problems.append({"index": index, "error": exc.message, "status": _status_of(exc)})
        if problems:
            too_large = all(problem["status"] == 413 for problem in problems)
            error_type = PayloadTooLarge if too_large else ValidationFailed
            raise error_type(f"item {problems[0]['index']}: {problems[0]['error']}", problems)
        held = self.dependencies.hold(job, [run for run, _ in prepared])
        prepared = [(run, key) for run, (_, key) in zip(held, prepared, strict=True)]
        keyed = [(position, run, key) for position, (run, key) in enumerate(prepared) if key]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            holders = list(pool.map(lambda entry: self._holder(idempotency_guard(job.id, entry[2])), keyed))
        hits_only = len(keyed) == len(prepared) and all(holder is not None for holder in holders)
        if not hits_only:
            self.jobs.put_batch(batch)
        entries: list[Run | DomainError | None] = [None] * len(prepared)
        free = [position for position, (_, key) in enumerate(prepared) if not key]
        active = dict(active_slots or {})  # each run admitted counts against what looks free
        stored = self._store_many(job, [prepared[position][0] for position in free], active)
        for position, result in zip(free, stored, strict=True):
            entries[position] = result
        created = [result for result in stored if isinstance(result, Run)]

        def keyed_store(entry: tuple[int, Run, str]) -> tuple[int, TriggerOutcome | DomainError]:
            position, run, key = entry
            try:
                return position, self._store(job, run, key, active)
            except DomainError as exc:
                return position, exc

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for position, outcome in pool.map(keyed_store, keyed):
                entries[position] = outcome if isinstance(outcome, DomainError) else outcome.run
                if not isinstance(outcome, DomainError) and outcome.created:
                    created.append(outcome.run)
        settled = {run.id: run for run in self.dependencies.settle(job, created)}
        self._enqueue(list(settled.values()), job)
        results = [settled.get(entry.id, entry) if isinstance(entry, Run) else entry for entry in entries]
        return BulkOutcome(
            batch.id if created or not hits_only else None,
            [entry for entry in results if entry is not None],
            len(created),
        )

    def create_for_run(self, job: Job, command: TriggerRun, links: RunLinks) -> Run:
        """Creates one run of `job` on behalf of a run, as a trigger creates one (limits, the
        dependency gate, the queue message) but without an idempotency key, tied to its creator by
        `links`. Returns the run as it is after the dependency check.

        Raises Conflict (job disabled), ValidationFailed, PayloadTooLarge.
        """
        self._check_enabled(job)
        # The principal only names the creator, and `links` names it instead.
        run = self._new_run(Principal(is_admin=False, project_id=job.project_id), job, command, None, None)
        run = run.model_copy(
            update={
                "created_by": f"run:{links.creator_id}",
                "triggered_by": TriggeredBy.SPAWN,
                "parent_run_id": links.parent_run_id,
                "continuation_of": links.continuation_of,
                "lineage_depth": links.lineage_depth,
            }
        )
        [run] = self.dependencies.hold(job, [run])
        created = self._store(job, run, None, {}).run
        [settled] = self.dependencies.settle(job, [created])
        self._enqueue([settled], job)
        return settled

    def get_batch(self, principal: Principal, batch_id: str) -> tuple[Batch, dict[str, int]]:
        """A batch and its runs counted by status (`created_count` is the number of its runs).
        Raises NotFound (also for another project's)."""
        batch = self.jobs.get_batch(batch_id) if is_valid_id(IdKind.BATCH, batch_id) else None
        if batch is None or not can_see(principal, batch.project_id):
            raise NotFound("batch not found")
        counts = self.jobs.batch_status_counts(batch.id)
        return batch.model_copy(update={"created_count": sum(counts.values())}), counts

    def _holder(self, guard: IdempotencyGuard) -> Run | None:
        """The run holding the guard's key, or None when the key is free or its hold ended."""
        run_id = self.runs.idempotent_run_id(guard)
        run = self.runs.get(run_id) if run_id else None
        if run is None or idempotency_released(run, self.clock.now()):
            return None
        return run

    def _prepare(self, job: Job, run: Run, active: MutableMapping[str, int]) -> NewRun:
        """What the creation of `run` writes: its events, its queue entry, the effect it asks."""
        paths = job.indexed_payload_paths if job.indexed_payload_since is not None else ()
        if job.paused:
            run = run.model_copy(update={"waiting_reason": WaitingReason.JOB_PAUSED})
            return NewRun(run, self.state.creation_events(run), parked=True, payload_paths=paths)
        admission = self.concurrency.admit(job, run, active) if run.status == RunStatus.QUEUED else None
        if admission is None:
            return NewRun(run, self.state.creation_events(run), payload_paths=paths)
        fx = {"k": sorted(admission.effects)} if admission.effects else None
        return NewRun(
            admission.run,
            self.state.creation_events(admission.run, admission.events),
            extra_items=(admission.entry,),
            fx=fx,
            payload_paths=paths,
        )

    def _store(self, job: Job, run: Run, key: str | None, active: MutableMapping[str, int]) -> TriggerOutcome:
        guard = idempotency_guard(job.id, key) if key else None
        replaces = None
        if guard is not None:
            replaces = self.runs.idempotent_run_id(guard)
            holder = self._holder(guard) if replaces else None
            if holder is not None:
                return TriggerOutcome(holder, created=False)
        new = self._prepare(job, run, active)
        try:
            self.runs.create_many([new], guard=guard, replaces=replaces)
        except IdempotencyKeyHeld as held:
            return self._replayed(held.run_id)
        return TriggerOutcome(new.run, created=True)

    def _store_many(
        self, job: Job, runs: list[Run], active: MutableMapping[str, int]
    ) -> list[Run | DomainError]:
        """Stores runs without idempotency keys, in parallel batches of a few runs each; returns
        each run as stored, or the error that kept its batch from being stored."""
        prepared = [self._prepare(job, run, active) for run in runs]
        parts = [
            prepared[start : start + _RUNS_PER_WRITE] for start in range(0, len(prepared), _RUNS_PER_WRITE)
        ]

        def store(part: list[NewRun]) -> list[Run | DomainError]:
            try:
                self.runs.create_many(part)
            except DomainError as exc:
                return [exc for _ in part]
            return [new.run for new in part]

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return [result for results in pool.map(store, parts) for result in results]

    def _replayed(self, run_id: str) -> TriggerOutcome:
        run = self.runs.get(run_id)
        if run is None:  # the guard outlived its run: impossible unless data was removed by hand
            raise NotFound("the run holding this idempotency key no longer exists")
        return TriggerOutcome(run, created=False)

    def _enqueue(self, runs: list[Run], job: Job) -> None:
        """Hands due runs (and runs due within the SQS delay limit) to the run queue; a run that
        waits in a concurrency queue gets its message when a slot is reserved for it. A failed send
        is not an error: the run is stored as queued and the scheduler re-enqueues it."""
        if job.paused:
            return
        now = self.clock.now()
        messages: list[RunMessage] = []
        for run in runs:
            if run.status == RunStatus.QUEUED and run.slot_queue is None:
                messages.append(run_message(run))
            elif run.status == RunStatus.DELAYED and run.scheduled_at is not None:
                delay = (run.scheduled_at - now).total_seconds()
                if delay <= MAX_DELAY_SECS:
                    messages.append(run_message(run, int(delay)))
        if not messages:
            return
        chunks = [messages[start : start + 10] for start in range(0, len(messages), 10)]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(chunks))) as pool:
            list(pool.map(self.queue.send, chunks))

    def _check_enabled(self, job: Job) -> None:
        if not job.enabled:
            raise Conflict("the job is disabled")

    def _new_run(
        self, principal: Principal, job: Job, options: RunOptions, key: str | None, batch_id: str | None
    ) -> Run:
        now = self.clock.now()
        payload_given = "payload" in options.model_fields_set
        payload = dump_json(options.payload) if payload_given else "{}"
        if json_size(payload) > limits.PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"payload is larger than {limits.PAYLOAD_BYTES} bytes", [{"field": "payload"}]
            )
        scheduled_at = _schedule(options.scheduled_at, now)
        status = RunStatus.DELAYED if scheduled_at and scheduled_at > now else RunStatus.QUEUED
        overrides = options.model_dump(
            include={
                "ttl_secs",
                "debug_mode",
                "max_attempts_override",
                "timeout_secs_override",
                "retry_backoff",
                "retry_initial_delay_secs",
                "retry_max_delay_secs",
            },
            exclude_none=True,
        )
        ttl = overrides.pop("ttl_secs", None) or job.run_ttl_secs
        run = Run(
            id=self.ids.new(IdKind.RUN),
            job_id=job.id,
            project_id=job.project_id,
            status=status,
            payload=payload,
            metadata=_with_defaults(options.metadata or {}, job.default_run_metadata),
            tags=options.tags or {},
            priority=options.priority or 0,
            scheduled_at=scheduled_at,
            expires_at=max(now, scheduled_at or now) + timedelta(seconds=ttl),
            idempotency_key=key,
            concurrency_key=options.concurrency_key,
            triggered_by=TriggeredBy.MANUAL,
            created_by=principal.created_by,
            job_version=job.version,
            job_version_id=job.version_id,
            batch_id=batch_id,
            created_at=now,
            queued_at=now if status == RunStatus.QUEUED else None,
            **overrides,
        )
        return with_wake(run, now, self.policy)


def idempotency_released(run: Run, now: datetime) -> bool:
    """A run holds its idempotency key until 24 h after it ends (spec 8)."""
    if not run.is_terminal or run.finished_at is None:
        return False
    return now >= run.finished_at + timedelta(seconds=limits.IDEMPOTENCY_HOLD_SECS)


def _schedule(requested: datetime | None, now: datetime) -> datetime | None:
    if requested is None:
        return None
    if (requested - now).total_seconds() > limits.SCHEDULE_AHEAD_MAX_SECS:
        raise ValidationFailed(
            "scheduled_at may be at most 30 days ahead", [{"field": "scheduled_at", "error": "too far ahead"}]
        )
    return max(requested, now)


def _with_defaults(metadata: dict[str, str], defaults: dict[str, str]) -> dict[str, str]:
    """The job's default metadata fills only the room left under the entry limit."""
    merged = dict(metadata)
    for key, value in defaults.items():
        if len(merged) >= limits.MAP_ENTRIES:
            break
        merged.setdefault(key, value)
    return merged


def _idempotency_key(body_key: str | None, header_key: str | None) -> str | None:
    if body_key and header_key and body_key != header_key:
        raise ValidationFailed(
            "the idempotency key in the header and in the body disagree",
            [{"field": "idempotency_key", "error": "differs from the Idempotency-Key header"}],
        )
    if header_key is not None and not 1 <= len(header_key) <= limits.KEY_CHARS:
        raise ValidationFailed("Idempotency-Key must be 1..256 characters", [{"field": "Idempotency-Key"}])
    return body_key or header_key


def _status_of(error: DomainError) -> int:
    return 413 if isinstance(error, PayloadTooLarge) else 422
