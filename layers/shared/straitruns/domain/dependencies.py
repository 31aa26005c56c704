"""Job dependencies (spec 2.2, 4.8): the conditions and the terminal statuses that meet them, the
scope in which a run looks for its upstream's latest terminal run, and cycle detection. Pure."""

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from straitruns.domain import limits
from straitruns.domain.errors import ValidationFailed
from straitruns.domain.models import Run
from straitruns.domain.statuses import FAILURE_STATUSES, RunStatus, is_terminal
from straitruns.domain.timefmt import format_ts

# The metadata entry that scopes a run's dependencies when it has no idempotency key.
DEPENDENCY_KEY = "dependency_key"
MAX_DEPENDENCIES_PER_JOB = limits.DEPENDENCIES_PER_JOB
MAX_GRAPH_JOBS = limits.DEPENDENCY_GRAPH_JOBS


class DependencyCondition(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    ANY = "any"


class Dependency(BaseModel):
    """`job_id` runs only once a run of `depends_on_job_id` ended in a way `condition` accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    job_id: str
    depends_on_job_id: str
    condition: DependencyCondition
    created_at: datetime


def condition_met(condition: DependencyCondition, status: RunStatus | None) -> bool:
    """Whether an upstream run ending in `status` meets `condition`. `None` (no terminal run yet)
    and non-terminal statuses meet nothing; `failed` takes every failure status, not `canceled`."""
    if status is None or not is_terminal(status):
        return False
    if condition == DependencyCondition.COMPLETED:
        return status == RunStatus.COMPLETED
    if condition == DependencyCondition.FAILED:
        return status in FAILURE_STATUSES
    return True


class ScopeKind(StrEnum):
    ALL = "all"
    IDEMPOTENCY_KEY = "idem"
    DEPENDENCY_KEY = "dkey"


@dataclass(frozen=True)
class DependencyScope:
    """Which upstream runs count for a run: those sharing its idempotency key, or its
    `metadata.dependency_key`, or all of them. Keys are hashed (they may exceed key sizes)."""

    kind: ScopeKind
    digest: str


ALL_RUNS = DependencyScope(ScopeKind.ALL, "*")


def _scope(kind: ScopeKind, value: str) -> DependencyScope:
    return DependencyScope(kind, hashlib.sha256(value.encode()).hexdigest())


def scope_of_waiting(run: Run) -> DependencyScope:
    """The one scope in which `run` looks for its upstreams' latest terminal runs (spec 4.8)."""
    if run.idempotency_key:
        return _scope(ScopeKind.IDEMPOTENCY_KEY, run.idempotency_key)
    if run.metadata.get(DEPENDENCY_KEY):
        return _scope(ScopeKind.DEPENDENCY_KEY, run.metadata[DEPENDENCY_KEY])
    return ALL_RUNS


def scopes_of_finished(run: Run) -> list[DependencyScope]:
    """Every scope in which a finished `run` may be its job's latest terminal run."""
    scopes = [ALL_RUNS]
    if run.idempotency_key:
        scopes.append(_scope(ScopeKind.IDEMPOTENCY_KEY, run.idempotency_key))
    if run.metadata.get(DEPENDENCY_KEY):
        scopes.append(_scope(ScopeKind.DEPENDENCY_KEY, run.metadata[DEPENDENCY_KEY]))
    return scopes


def is_waiting_on_dependencies(run: Run) -> bool:
    """A run held back by dependencies: `waiting` and never claimed (a parent awaiting its
    children is `waiting` too, but it was claimed before it started waiting)."""
    return run.status == RunStatus.WAITING and not run.ever_claimed


@dataclass(frozen=True)
class LatestTerminal:
    """An upstream job's most recent terminal run in one scope. `order` sorts finishes: the
    finish time, then the run id for runs finished at the same instant."""

    run_id: str
    status: RunStatus
    order: str


def latest_of(run: Run, now: datetime) -> LatestTerminal:
    """The record a run that just became terminal leaves for its dependents."""
    return LatestTerminal(run.id, run.status, f"{format_ts(run.finished_at or now)}#{run.id}")


def unmet(dependencies: Sequence[Dependency], latest: Mapping[str, LatestTerminal]) -> list[Dependency]:
    """The dependencies that `latest` (upstream job id -> its latest terminal run in the waiting
    run's scope) does not satisfy; an upstream without a terminal run satisfies none."""
    return [
        dependency
        for dependency in dependencies
        if not condition_met(
            dependency.condition,
            latest[dependency.depends_on_job_id].status if dependency.depends_on_job_id in latest else None,
        )
    ]


def find_cycle(
    job_id: str,
    depends_on: str,
    upstreams_of: Callable[[str], Iterable[str]],
    max_jobs: int = MAX_GRAPH_JOBS,
) -> list[str] | None:
    """The cycle that `job_id -> depends_on` would close, as a job path starting and ending at
    `job_id`, or None. `upstreams_of(job)` lists the jobs a job depends on.

    Raises ValidationFailed when the graph reachable from `depends_on` has more than `max_jobs`
    jobs (the check would be unbounded).
    """
    if depends_on == job_id:
        return [job_id, job_id]
    previous: dict[str, str] = {depends_on: job_id}
    pending = deque([depends_on])
    while pending:
        current = pending.popleft()
        for upstream in upstreams_of(current):
            if upstream in previous:
                continue
            previous[upstream] = current
            if upstream == job_id:
                return _path_back(previous, job_id)
            if len(previous) > max_jobs:
                raise ValidationFailed(
                    f"the dependency graph is too large to check (over {max_jobs} jobs)",
                    [{"field": "depends_on_job_id", "error": "dependency graph too large"}],
                )
            pending.append(upstream)
    return None


def _path_back(previous: Mapping[str, str], job_id: str) -> list[str]:
    """`job_id -> ... -> job_id` from the breadth-first search's predecessor links."""
    path = [job_id]
    node = previous[job_id]
    while node != job_id:
        path.append(node)
        node = previous[node]
    path.append(job_id)
    path.reverse()
    return path
