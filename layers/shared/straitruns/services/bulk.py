"""Bulk operations on runs (spec 5 items 3, 8, 9, 10): bulk-cancel, bulk-cancel-all, bulk-replay and
bulk-dlq-replay.

Every call does bounded work (at most 1,000 runs and 20 s; its response at most 5 MB), answers per
run, and is safe to repeat: a run is only ever moved by a transition conditioned on what was read,
so a repeat finds the runs already moved and reports them as such. What a call leaves undone is said
in its answer (per-run errors, `has_more`, or the skipped ids with reasons).
"""

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from straitruns.adapters.store.jobs import JobStore
from straitruns.adapters.store.runs import RunStore
from straitruns.domain import limits
from straitruns.domain.auth import Principal
from straitruns.domain.errors import BadRequest, Conflict, DomainError, NotFound, Unavailable
from straitruns.domain.ids import IdKind, is_valid_id
from straitruns.domain.models import Run
from straitruns.domain.run_filter import RunFilter
from straitruns.domain.statuses import NON_TERMINAL, RunStatus
from straitruns.services.budget import Timer, WorkBudget
from straitruns.services.cancellation import Cancellation
from straitruns.services.commands import Command, Key, MapKey, MapValue, Timestamp
from straitruns.services.dead_letters import DeadLetters
from straitruns.services.projects import acting_project, can_see
from straitruns.services.steering import Refused, RunSteering

RUN_NOT_FOUND = "run not found"
NOT_PROCESSED = "not processed: this call's work budget ran out; repeat the call"
# Skip reasons (X-Strait-Skipped) of runs a call left for the next one.
OUT_OF_TIME = "work_budget_exhausted"
OUT_OF_ROOM = "response_size_limit"

_NON_TERMINAL_NAMES = ", ".join(sorted(status.value for status in NON_TERMINAL))


def _non_terminal(value: str) -> str:
    if value not in {status.value for status in NON_TERMINAL}:
        raise ValueError(f"status must be one non-terminal status: {_NON_TERMINAL_NAMES}")
    return value


NonTerminalStatus = Annotated[str, AfterValidator(_non_terminal)]
BulkIds = Annotated[list[str], Field(min_length=1, max_length=limits.BULK_IDS)]


class BulkRunIds(Command):
    """Body of `POST /v1/runs/bulk-cancel` and `POST /v1/runs/bulk-replay`: 1..100 ids as sent."""

    run_ids: BulkIds


class BulkCancelAll(Command):
    """Body of `POST /v1/runs/bulk-cancel-all`: at least one filter; they combine with AND."""

    job_id: Key | None = Field(default=None, description="A job id or slug.")
    batch_id: Key | None = None
    triggered_by: Key | None = None
    status: NonTerminalStatus | None = Field(default=None, description=_NON_TERMINAL_NAMES)
    metadata_key: MapKey | None = None
    metadata_value: MapValue | None = Field(default=None, description="Needs metadata_key.")
    created_before: Timestamp | None = Field(default=None, description="RFC 3339; strictly before.")

    @model_validator(mode="after")
    def _value_needs_key(self) -> "BulkCancelAll":
        if self.metadata_value is not None and self.metadata_key is None:
            raise ValueError("metadata_value needs metadata_key")
        return self

    def has_filter(self) -> bool:
        return any(value is not None for value in self.model_dump().values())


class BulkDlqReplay(Command):
    """Body of `POST /v1/runs/bulk-dlq-replay`: `run_ids`, or `project_id` + `limit` (+ `job_id`)."""

    run_ids: Annotated[list[str], Field(min_length=1, max_length=limits.BULK_DLQ_IDS)] | None = None
    project_id: Key | None = None
    limit: int | None = Field(default=None, ge=1, le=limits.BULK_DLQ_IDS)
    job_id: Key | None = Field(default=None, description="A job id or slug (with project_id).")

    @model_validator(mode="after")
    def _one_form(self) -> "BulkDlqReplay":
        by_ids = self.run_ids is not None
        by_project = any(value is not None for value in (self.project_id, self.limit, self.job_id))
        if by_ids == by_project:
            raise ValueError("give either run_ids, or project_id and limit (and optionally job_id)")
        if by_project and (self.project_id is None or self.limit is None):
            raise ValueError("project_id and limit go together")
        return self


@dataclass(frozen=True)
class ItemResult:
    """One run of a bulk cancel: `status` is `canceled` when this call cancelled it, `failed`
    when the id names no visible run, else the run's current status; `error` says why not."""

    id: str
    status: str
    error: str | None = None


@dataclass(frozen=True)
class BulkCancelResult:
    results: list[ItemResult]
    descendants_canceled: int = 0
    has_more: bool = False

    @property
    def canceled(self) -> int:
        return sum(1 for result in self.results if result.error is None)

    @property
    def failed(self) -> int:
        return len(self.results) - self.canceled


@dataclass(frozen=True)
class BulkReplayResult:
    """The runs replayed, in the order asked, and the ids left out as (id, reason)."""

    runs: list[Run]
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class BulkLimits:
    """Work one bulk call may do (spec 1.5, 5): seconds, runs cancelled by bulk-cancel-all, and
    index entries it may read looking for them."""

    work_seconds: float = limits.WORK_SECONDS_PER_REQUEST
    cancel_all_runs: int = limits.BULK_CANCEL_ALL_RUNS
    cancel_all_candidates: int = 10 * limits.BULK_CANCEL_ALL_RUNS
    read_batch: int = 100  # runs read per round trip; the work budget is checked between batches
    workers: int = 1  # runs of a batch cancelled at once (STRAIT_BULK_WORKERS)


# Runs read from the store per round trip.
_READ_BATCH = 100


class BulkOperations:
    def __init__(
        self,
        runs: RunStore,
        jobs: JobStore,
        steering: RunSteering,
        cancellation: Cancellation,
        dead_letters: DeadLetters,
        bounds: BulkLimits | None = None,
        timer: Timer = time.monotonic,
    ) -> None:
        self.runs = runs
        self.jobs = jobs
        self.steering = steering
        self.cancellation = cancellation
        self.dead_letters = dead_letters
        self.bounds = bounds or BulkLimits()
        self.timer = timer

    # Cancels --------------------------------------------------------------------------------

    def bulk_cancel(self, principal: Principal, command: BulkRunIds) -> BulkCancelResult:
        """Cancels each distinct id (descendants included) and answers each once, in input
        order. Malformed, unknown and other projects' ids are `failed`/"run not found"."""
        budget = self._budget(limits.BULK_CANCEL_ALL_RUNS)
        ids = list(dict.fromkeys(command.run_ids))
        visible = self._visible(principal, ids)
        results: list[ItemResult] = []
        descendants = 0
        for run_id in ids:
            run = visible.get(run_id)
            if run is None:
                results.append(ItemResult(run_id, "failed", RUN_NOT_FOUND))
            elif self.timer() >= budget.deadline:
                results.append(ItemResult(run_id, run.status.value, NOT_PROCESSED))
            else:
                result, cancelled_below = self._cancel(run, budget)
                results.append(result)
                descendants += cancelled_below
        return BulkCancelResult(results, descendants)

    def bulk_cancel_all(
        self, principal: Principal, requested_project: str | None, command: BulkCancelAll
    ) -> BulkCancelResult:
        """Cancels the project's non-terminal runs matching every filter, oldest first, at most
        1,000 per call (descendants included as for a cancel). They are read from the
        non-terminal partitions of the project+status index, which a cancelled run leaves, so a
        repeat never reads it again; runs outside the filter are read again by each call.
        `has_more` says whether runs remain unread. Raises BadRequest (no project, no filter),
        Forbidden (another project)."""
        project = str(acting_project(principal, requested_project, required=True))
        if not command.has_filter():
            raise BadRequest("bulk-cancel-all needs at least one filter")
        statuses = [RunStatus(command.status)] if command.status else sorted(NON_TERMINAL)
        run_filter = RunFilter(
            project_id=project,
            status=RunStatus(command.status) if command.status else None,
            job_id=self._job_id(project, command.job_id),
            batch_id=command.batch_id,
            triggered_by=command.triggered_by,
            metadata_key=command.metadata_key,
            metadata_value=command.metadata_value,
            created_before=command.created_before,
        )
        stream = self.runs.in_statuses(project, statuses, command.created_before)
        budget = self._budget(self.bounds.cancel_all_candidates)
        results: list[ItemResult] = []
        descendants = 0
        with ThreadPoolExecutor(max_workers=self.bounds.workers) as pool:
            # The first batch is always read, so every call makes progress.
            while run_ids := stream.take(
                min(self.bounds.read_batch, self.bounds.cancel_all_runs - len(results))
            ):
                budget.spend(len(run_ids))
                found = self.runs.get_many(run_ids)
                selected = [
                    run
                    for run_id in run_ids
                    if (run := found.get(run_id)) is not None
                    and not run.is_terminal
                    and run_filter.matches(run)
                ]
                for result, cancelled_below in pool.map(lambda run: self._cancel(run, budget), selected):
                    results.append(result)
                    descendants += cancelled_below
                if len(results) >= self.bounds.cancel_all_runs or budget.exhausted():
                    break
        return BulkCancelResult(results, descendants, has_more=stream.has_more())

    # Replays --------------------------------------------------------------------------------

    def bulk_replay(
        self, principal: Principal, command: BulkRunIds, fits: Callable[[Run], bool]
    ) -> BulkReplayResult:
        """Replays each distinct id as `replay` does, in input order; the ids that could not be
        replayed (or were left for another call: out of time, or the response would pass 5 MB)
        are skipped with a reason."""
        deadline = self._deadline()
        ids = list(dict.fromkeys(command.run_ids))
        visible = self._visible(principal, ids)
        replayed: list[Run] = []
        skipped: list[tuple[str, str]] = []
        for run_id in ids:
            run = visible.get(run_id)
            if run is None:
                skipped.append((run_id, "not_found"))
            elif replayed and self.timer() >= deadline:
                skipped.append((run_id, OUT_OF_TIME))
            elif not fits(run):
                skipped.append((run_id, OUT_OF_ROOM))
            else:
                try:
                    replayed.append(self.steering.replay_run(principal, run))
                except Refused as refused:
                    skipped.append((run_id, refused.reason))
                except Unavailable:
                    skipped.append((run_id, "store_unavailable"))
                except DomainError:
                    skipped.append((run_id, "invalid"))
        return BulkReplayResult(replayed, skipped)

    def bulk_dlq_replay(
        self, principal: Principal, command: BulkDlqReplay, fits: Callable[[Run], bool]
    ) -> BulkReplayResult:
        """Replays dead-lettered runs in place, each `dead_letter -> replay_staged -> queued` with
        the resets of dlq-replay: the listed runs, or the project's oldest dead letters. A staged
        run this call does not finish (it died) is finished by the scheduler. Raises NotFound (a
        listed id is not a run of the caller's project: nothing is replayed), Forbidden (another
        project), Refused (no run eligible)."""
        candidates = self._dead_letter_candidates(principal, command)
        deadline = self._deadline()
        replayed: list[Run] = []
        skipped: list[tuple[str, str]] = []
        for run in candidates:
            if run.status != RunStatus.DEAD_LETTER:
                skipped.append((run.id, "not_dead_letter"))
            elif replayed and self.timer() >= deadline:
                skipped.append((run.id, OUT_OF_TIME))
            elif not fits(run):
                skipped.append((run.id, OUT_OF_ROOM))
            else:
                try:
                    staged = self.dead_letters.stage(run)
                    replayed.append(self.dead_letters.replay(staged, "bulk-dlq-replay"))
                except Conflict:
                    skipped.append((run.id, "changed_concurrently"))
        if not replayed:
            details = [{"id": run_id, "error": reason} for run_id, reason in skipped[:100]]
            raise Refused("no run in the selection is dead_letter", "nothing_eligible", details or None)
        return BulkReplayResult(replayed, skipped)

    def _dead_letter_candidates(self, principal: Principal, command: BulkDlqReplay) -> list[Run]:
        if command.run_ids is not None:
            ids = list(dict.fromkeys(command.run_ids))
            visible = self._visible(principal, ids)
            missing = [run_id for run_id in ids if run_id not in visible]
            if missing:
                details = [{"id": run_id, "error": RUN_NOT_FOUND} for run_id in missing[:100]]
                raise NotFound(
                    f"{len(missing)} of the listed runs were not found; nothing was replayed", details
                )
            return [visible[run_id] for run_id in ids]
        project = str(acting_project(principal, command.project_id, required=True))
        run_filter = RunFilter(
            project_id=project, status=RunStatus.DEAD_LETTER, job_id=self._job_id(project, command.job_id)
        )
        wanted = command.limit or limits.BULK_DLQ_IDS
        page = self.runs.list_runs(run_filter, limit=wanted, before=None, budget=2 * wanted, ascending=True)
        return page.runs

    # Internals ------------------------------------------------------------------------------

    def _cancel(self, run: Run, budget: WorkBudget) -> tuple[ItemResult, int]:
        outcome = self.cancellation.cancel(run, budget)
        if outcome.canceled:
            return ItemResult(run.id, RunStatus.CANCELED.value), outcome.descendants
        return ItemResult(run.id, outcome.run.status.value, outcome.error), 0

    def _visible(self, principal: Principal, ids: Iterable[str]) -> dict[str, Run]:
        """The runs of well-formed ids that exist and that the caller may see."""
        valid = [run_id for run_id in ids if is_valid_id(IdKind.RUN, run_id)]
        runs: dict[str, Run] = {}
        for start in range(0, len(valid), _READ_BATCH):
            found = self.runs.get_many(valid[start : start + _READ_BATCH])
            runs |= {run_id: run for run_id, run in found.items() if can_see(principal, run.project_id)}
        return runs

    def _job_id(self, project_id: str, reference: str | None) -> str | None:
        """A job filter given by id or by slug (a slug of no job stays as given: it matches nothing)."""
        if reference is None or is_valid_id(IdKind.JOB, reference):
            return reference
        job = self.jobs.get_by_slug(project_id, reference)
        return job.id if job is not None else reference

    def _budget(self, runs: int) -> WorkBudget:
        return WorkBudget.start(runs, self.bounds.work_seconds, self.timer)

    def _deadline(self) -> float:
        return self.timer() + self.bounds.work_seconds
