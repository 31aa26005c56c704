"""Job dependencies (spec 4.8).

`DependencyGate` is the engine side: a run whose job has an unmet dependency is created `waiting`
and listed in the waiting index under every upstream job it waits on; when an upstream run becomes
terminal (an effect of its status change, docs/engine.md#effects) it is recorded as its job's latest
terminal run in each of its scopes, and only the runs listed under (that job, that scope) are
evaluated again. A satisfied run goes `waiting -> queued` with a new generation, conditionally, so
two upstream finishes (or one finish delivered twice) release it exactly once.

`DependencyService` is the API side: add (a cycle is refused), list and delete dependencies, and a
run's dependency status evaluated now.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field

from straitruns.adapters.run_queue import MAX_DELAY_SECS, RunQueue, run_message
from straitruns.adapters.store.dependencies import (
    DependencyExists,
    DependencyStore,
    GraphChanged,
    Listing,
    waiting_partition,
)
from straitruns.adapters.store.runs import RunStore
from straitruns.domain import transitions
from straitruns.domain.auth import Principal
from straitruns.domain.clock import Clock
from straitruns.domain.dependencies import (
    MAX_DEPENDENCIES_PER_JOB,
    Dependency,
    DependencyCondition,
    DependencyScope,
    LatestTerminal,
    condition_met,
    find_cycle,
    is_waiting_on_dependencies,
    latest_of,
    scope_of_waiting,
    scopes_of_finished,
    unmet,
)
from straitruns.domain.errors import Conflict, NotFound, Unavailable, ValidationFailed
from straitruns.domain.ids import IdFactory, IdKind, is_valid_id
from straitruns.domain.models import Job, Run, WaitingReason
from straitruns.domain.run_filter import RunFilter
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timers import TimerPolicy, due_at
from straitruns.services.commands import Command, Key
from straitruns.services.jobs import JobService
from straitruns.services.run_queries import RunQueries
from straitruns.services.run_state import RunStateMachine, with_wake

logger = logging.getLogger("straitruns.dependencies")

# A listing whose run does not exist may belong to a run being created right now (listings are
# written first); only older ones are removed as leftovers of a failed or idempotent creation.
_CREATION_GRACE = timedelta(minutes=5)
# Concurrent additions to one project's graph retry the cycle check this many times.
_GRAPH_RETRIES = 5
# Runs of an upstream job read to record its latest finishes when a first dependent appears.
BACKFILL_RUNS = 1000


class CreateDependency(Command):
    """Body of `POST /v1/jobs/{jobID}/dependencies`."""

    depends_on_job_id: Key = Field(description="The upstream job, by id or slug (same project).")
    condition: Annotated[DependencyCondition, Field(strict=False)] = DependencyCondition.COMPLETED


@dataclass(frozen=True)
class DependencyState:
    """One dependency of a run's job, judged now: whether it is met, and the upstream run that
    decides it (the latest terminal run of the upstream job in the run's scope), if any."""

    dependency: Dependency
    met: bool
    deciding: LatestTerminal | None


@dataclass(frozen=True)
class DependencyStatus:
    run: Run
    dependencies: list[Dependency]
    satisfied: bool
    states: list[DependencyState]


_LatestCache = dict[tuple[str, DependencyScope], LatestTerminal | None]


class DependencyGate:
    """Holds back runs whose dependencies are unmet and releases them when they are met."""

    def __init__(
        self,
        store: DependencyStore,
        runs: RunStore,
        state: RunStateMachine,
        queue: RunQueue,
        clock: Clock,
        policy: TimerPolicy,
    ) -> None:
        self.store = store
        self.runs = runs
        self.state = state
        self.queue = queue
        self.clock = clock
        self.policy = policy

    # Evaluation -----------------------------------------------------------------------------

    def unmet(
        self, run: Run, dependencies: Sequence[Dependency], cache: _LatestCache | None = None
    ) -> list[Dependency]:
        """The dependencies `run` does not satisfy now (empty: it may run). `cache` shares the
        latest-terminal reads of one pass over many runs."""
        if not dependencies:
            return []
        scope = scope_of_waiting(run)
        cache = {} if cache is None else cache
        upstreams = [dependency.depends_on_job_id for dependency in dependencies]
        missing = [job_id for job_id in upstreams if (job_id, scope) not in cache]
        if missing:
            found = self.store.latest_terminal(missing, scope)
            cache.update({(job_id, scope): found.get(job_id) for job_id in missing})
        latest = {job_id: record for job_id in upstreams if (record := cache[(job_id, scope)]) is not None}
        return unmet(dependencies, latest)

    # Creation -------------------------------------------------------------------------------

    def hold(self, job: Job, runs: Sequence[Run]) -> list[Run]:
        """The runs as they must be created: `waiting` when a dependency is unmet (listed in the
        waiting index under each of the job's dependencies before the run exists), else unchanged.
        A waiting run keeps its `scheduled_at`: once released it is not claimed before then. A job
        known to have no dependency costs no read."""
        if job.upstream_count == 0:
            return list(runs)
        dependencies = self.store.dependencies_of(job.id)
        if not dependencies:
            return list(runs)
        now = self.clock.now()
        cache: _LatestCache = {}
        held: list[Run] = []
        for run in runs:
            if not self.unmet(run, dependencies, cache):
                held.append(run)
                continue
            waiting = run.model_copy(
                update={
                    "status": RunStatus.WAITING,
                    "queued_at": None,
                    "waiting_reason": WaitingReason.DEPENDENCIES,
                }
            )
            waiting = with_wake(waiting, now, self.policy)
            self._list(waiting, _partitions(waiting, dependencies), now)
            held.append(waiting)
        return held

    def settle(self, job: Job, runs: Sequence[Run]) -> list[Run]:
        """Evaluates each just-created `waiting` run once more and releases it if an upstream
        finished meanwhile (that finish may have looked for waiting runs before this one was
        stored). Returns every run as it now is; the caller sends the released runs' messages."""
        if not any(is_waiting_on_dependencies(run) for run in runs):
            return list(runs)
        dependencies = self.store.dependencies_of(job.id)
        cache: _LatestCache = {}
        settled: list[Run] = []
        still_waiting: list[Run] = []
        for run in runs:
            if not is_waiting_on_dependencies(run):
                settled.append(run)
            elif self.unmet(run, dependencies, cache):
                settled.append(run)
                still_waiting.append(run)
            else:
                settled.append(self._release(run) or self.runs.get(run.id) or run)
        # A dependency added since `hold` read them must list the run too.
        self._relist(still_waiting, {job.id: dependencies})
        return settled

    # Effects (docs/engine.md#effects) ------------------------------------------------------

    def stopped_waiting(self, job_id: str, run_id: str) -> None:
        """A run that waited on dependencies and no longer does leaves the waiting index."""
        self.store.unindex(job_id, run_id)

    def backfill_latest(self, upstream: Job) -> int:
        """Records the latest terminal run per scope of a job that had no dependents, from its
        most recent runs (BACKFILL_RUNS at most): while nothing depended on it, its finishes were
        not recorded. Returns how many runs it looked at."""
        page = self.runs.list_runs(
            RunFilter(project_id=upstream.project_id, job_id=upstream.id),
            limit=BACKFILL_RUNS,
            before=None,
            budget=BACKFILL_RUNS,
        )
        now = self.clock.now()
        for run in reversed(page.runs):  # oldest first: the conditional records keep the latest
            if run.is_terminal:
                latest = latest_of(run, now)
                for scope in scopes_of_finished(run):
                    self.store.record_terminal(run.job_id, scope, latest)
        return len(page.runs)

    def upstream_finished(self, run: Run) -> None:
        """Records the terminal `run` as its job's latest terminal run per scope, and evaluates
        the runs waiting on that job in each scope where it is now the latest."""
        latest = latest_of(run, self.clock.now())
        for scope in scopes_of_finished(run):
            if self.store.record_terminal(run.job_id, scope, latest):
                self._reevaluate(waiting_partition(run.job_id, scope))

    def dependency_removed(self, dependency: Dependency) -> int:
        """After `dependency` was deleted: releases the job's waiting runs it alone held back and
        unlists the others from its upstream. Returns how many runs were released."""
        dependencies = {dependency.job_id: self.store.dependencies_of(dependency.job_id)}
        cache: _LatestCache = {}
        released = 0
        start = None
        while True:
            listings, start = self.store.waiters(dependency.job_id, start)
            runs = self.runs.get_many([listing.run_id for listing in listings])
            still_waiting: list[Run] = []
            for listing in listings:
                run = self._waiting_run(runs.get(listing.run_id), listing)
                if run is None:
                    continue
                if not self.unmet(run, dependencies[run.job_id], cache):
                    released += self._release_and_send(run)
                    continue
                partition = waiting_partition(dependency.depends_on_job_id, scope_of_waiting(run))
                self.store.unlist(run.job_id, run.id, partition)
                still_waiting.append(run)
            self._relist(still_waiting, dependencies)
            if start is None:
                return released

    # Internals ------------------------------------------------------------------------------

    def _reevaluate(self, partition: str) -> None:
        dependencies_of: dict[str, list[Dependency]] = {}
        cache: _LatestCache = {}
        start = None
        while True:
            listings, start = self.store.waiting_runs(partition, start)
            runs = self.runs.get_many([listing.run_id for listing in listings])
            still_waiting: list[Run] = []
            for listing in listings:
                run = self._waiting_run(runs.get(listing.run_id), listing, partition)
                if run is None:
                    continue
                if run.job_id not in dependencies_of:
                    dependencies_of[run.job_id] = self.store.dependencies_of(run.job_id)
                if self.unmet(run, dependencies_of[run.job_id], cache):
                    still_waiting.append(run)
                else:
                    self._release_and_send(run)
            self._relist(still_waiting, dependencies_of)
            if start is None:
                return

    def _waiting_run(self, run: Run | None, listing: Listing, partition: str | None = None) -> Run | None:
        """The listed run if it still waits on dependencies; leftovers are cleaned up."""
        if run is not None and is_waiting_on_dependencies(run):
            return run
        if run is None and self.clock.now() - listing.listed_at < _CREATION_GRACE:
            return None  # possibly being created right now
        if partition is not None:
            self.store.drop_stale(partition, listing.run_id)
        self.store.unindex(listing.job_id, listing.run_id)
        return None

    def _relist(self, runs: Sequence[Run], dependencies_of: dict[str, list[Dependency]]) -> None:
        """Lists still-waiting runs under the dependencies their job gained after they were
        listed, so every unmet dependency of a waiting run can wake it."""
        by_job: dict[str, list[Run]] = {}
        for run in runs:
            by_job.setdefault(run.job_id, []).append(run)
        now = self.clock.now()
        for job_id, job_runs in by_job.items():
            listed = self.store.waited_partitions(job_id, [run.id for run in job_runs])
            for run in job_runs:
                extra = set(_partitions(run, dependencies_of[job_id])) - listed.get(run.id, set())
                if extra:
                    self.store.index_waiting(job_id, run.id, sorted(extra), run.expires_at, now)

    def _list(self, run: Run, partitions: Sequence[str], now: datetime) -> None:
        self.store.index_waiting(run.job_id, run.id, partitions, run.expires_at, now)

    def _release(self, run: Run) -> Run | None:
        """`waiting -> queued` with a new generation; None when another actor changed it first."""
        try:
            return self.state.apply(run, transitions.dependencies_met(run, self.clock.now()))
        except Conflict:
            return None

    def _release_and_send(self, run: Run) -> int:
        released = self._release(run)
        if released is None:
            return 0
        now = self.clock.now()
        due = due_at(released)
        delay = max(0.0, (due - now).total_seconds()) if due else 0.0
        # A release due later than SQS can delay is promoted by the scheduler (its wake-up).
        if delay <= MAX_DELAY_SECS:
            self.queue.send([run_message(released, int(delay + 0.999))])
        return 1


def _partitions(run: Run, dependencies: Sequence[Dependency]) -> list[str]:
    scope = scope_of_waiting(run)
    return [waiting_partition(dependency.depends_on_job_id, scope) for dependency in dependencies]


class DependencyService:
    def __init__(
        self,
        store: DependencyStore,
        gate: DependencyGate,
        jobs: JobService,
        queries: RunQueries,
        clock: Clock,
        ids: IdFactory,
    ) -> None:
        self.store = store
        self.gate = gate
        self.jobs = jobs
        self.queries = queries
        self.clock = clock
        self.ids = ids

    def add(
        self, principal: Principal, job_ref: str, command: CreateDependency, project_id: str | None
    ) -> Dependency:
        """Makes the job depend on another job of its project.

        Raises NotFound (the job, or the upstream job in the job's project), ValidationFailed
        (itself, a cycle, more than MAX_DEPENDENCIES_PER_JOB), Conflict (it already depends on that
        job), Unavailable (the project's graph kept changing under concurrent additions).
        """
        job = self.jobs.get(principal, job_ref, project_id)
        upstream = self._upstream(principal, job, command.depends_on_job_id)
        if upstream.id == job.id:
            raise ValidationFailed(
                "a job cannot depend on itself", [{"field": "depends_on_job_id", "error": "self dependency"}]
            )
        for _ in range(_GRAPH_RETRIES):
            version = self.store.graph_version(job.project_id)
            self._check_addable(job, upstream)
            dependency = Dependency(
                id=self.ids.new(IdKind.DEPENDENCY),
                job_id=job.id,
                depends_on_job_id=upstream.id,
                condition=command.condition,
                created_at=self.clock.now(),
            )
            counted = (job.upstream_count is not None, upstream.downstream_count is not None)
            try:
                self.store.add(dependency, job.project_id, version, counted)
            except DependencyExists as exc:
                raise Conflict(f"job {job.id} already depends on job {upstream.id}") from exc
            except GraphChanged:
                job, upstream = self.jobs.get(principal, job.id), self.jobs.get(principal, upstream.id)
                continue
            if not upstream.downstream_count:
                # Nothing recorded the upstream's finishes while no job depended on it.
                self.gate.backfill_latest(upstream)
            return dependency
        raise Unavailable("the project's dependencies are changing concurrently; retry shortly")

    def list_dependencies(
        self, principal: Principal, job_ref: str, project_id: str | None
    ) -> list[Dependency]:
        """The job's dependencies, oldest first. Raises NotFound."""
        job = self.jobs.get(principal, job_ref, project_id)
        return self.store.dependencies_of(job.id)

    def delete(self, principal: Principal, job_ref: str, dependency_id: str, project_id: str | None) -> None:
        """Deletes one of the job's dependencies; its waiting runs that only it held back are
        released. Raises NotFound (the job, or a dependency it does not have)."""
        if not is_valid_id(IdKind.DEPENDENCY, dependency_id):
            raise NotFound("dependency not found")
        job = self.jobs.get(principal, job_ref, project_id)
        dependency = next((d for d in self.store.dependencies_of(job.id) if d.id == dependency_id), None)
        upstream = self.jobs.jobs.get(dependency.depends_on_job_id) if dependency else None
        counted = (
            job.upstream_count is not None,
            upstream is not None and upstream.downstream_count is not None,
        )
        if dependency is None or not self.store.delete(dependency, counted):
            raise NotFound("dependency not found")
        self.gate.dependency_removed(dependency)

    def status(self, principal: Principal, run_id: str) -> DependencyStatus:
        """The run's job's dependencies and whether the run satisfies them now. Raises NotFound
        (also for another project's run)."""
        run = self.queries.get(principal, run_id)
        dependencies = self.store.dependencies_of(run.job_id)
        upstreams = [dependency.depends_on_job_id for dependency in dependencies]
        latest = self.store.latest_terminal(upstreams, scope_of_waiting(run)) if dependencies else {}
        states: list[DependencyState] = []
        for dependency in dependencies:
            deciding = latest.get(dependency.depends_on_job_id)
            met = condition_met(dependency.condition, deciding.status if deciding else None)
            states.append(DependencyState(dependency, met, deciding))
        return DependencyStatus(run, dependencies, all(state.met for state in states), states)

    def _upstream(self, principal: Principal, job: Job, reference: str) -> Job:
        try:
            upstream = self.jobs.get(principal, reference, job.project_id)
        except NotFound:
            upstream = None
        if upstream is None or upstream.project_id != job.project_id:
            raise NotFound(
                "the job to depend on was not found in this project",
                [{"field": "depends_on_job_id", "error": "not found"}],
            )
        return upstream

    def _check_addable(self, job: Job, upstream: Job) -> None:
        """Raises Conflict (already there) or ValidationFailed (too many, or a cycle)."""
        existing = self.store.dependencies_of(job.id)
        if any(dependency.depends_on_job_id == upstream.id for dependency in existing):
            raise Conflict(f"job {job.id} already depends on job {upstream.id}")
        if len(existing) >= MAX_DEPENDENCIES_PER_JOB:
            raise ValidationFailed(
                f"a job may have at most {MAX_DEPENDENCIES_PER_JOB} dependencies",
                [{"field": "depends_on_job_id", "error": "too many dependencies"}],
            )
        cycle = find_cycle(job.id, upstream.id, self.store.upstream_job_ids)
        if cycle is not None:
            raise ValidationFailed(
                f"this dependency would create a cycle: {' -> '.join(cycle)}",
                [{"field": "depends_on_job_id", "error": "dependency cycle", "cycle": cycle}],
            )
