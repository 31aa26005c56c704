"""Reading runs: one run, filtered lists, the dead-letter list, children and lineage (spec 5)."""

from collections.abc import Callable
from dataclasses import dataclass

from straitruns.adapters.store.keys import created_sort_key
from straitruns.adapters.store.runs import RunStore
from straitruns.domain import limits
from straitruns.domain.auth import Principal
from straitruns.domain.errors import NotFound
from straitruns.domain.ids import IdKind, is_valid_id
from straitruns.domain.models import Run
from straitruns.domain.run_filter import PayloadIndex, RunFilter
from straitruns.domain.statuses import RunStatus
from straitruns.services.pagination import Cursor, encode_cursor
from straitruns.services.ports import JobReads
from straitruns.services.projects import can_see


@dataclass(frozen=True)
class Page:
    runs: list[Run]
    next_cursor: str | None


# Items read per candidate run of a list: its index entry, its RUN item and its LIVE item.
ITEMS_PER_CANDIDATE = 3


class RunQueries:
    def __init__(self, runs: RunStore, read_budget: int, jobs: JobReads | None = None) -> None:
        """`read_budget` is the number of items one list request may read (STRAIT_LIST_READ_BUDGET);
        `jobs` tells which payload paths a job indexes (payload filters of one job use them)."""
        self.runs = runs
        self.jobs = jobs
        self.candidate_budget = max(1, read_budget // ITEMS_PER_CANDIDATE)

    def get(self, principal: Principal, run_id: str) -> Run:
        """The run. Raises NotFound for a malformed id, a missing run or another project's run."""
        if not is_valid_id(IdKind.RUN, run_id):
            raise NotFound("run not found")
        run = self.runs.get(run_id)
        if run is None or not can_see(principal, run.project_id):
            raise NotFound("run not found")
        return run

    def list_runs(
        self,
        run_filter: RunFilter,
        limit: int,
        cursor: Cursor | None,
        *,
        ascending: bool = False,
        fits: Callable[[Run], bool] | None = None,
    ) -> Page:
        """A page of matching runs, newest first unless `ascending`, reading at most the budget."""
        page = self.runs.list_runs(
            run_filter,
            limit=limit,
            before=cursor.bound(ascending) if cursor else None,
            budget=self.candidate_budget,
            ascending=ascending,
            fits=fits,
            payload_index=self._payload_index(run_filter),
        )
        return Page(page.runs, encode_cursor(page.next_cursor) if page.next_cursor else None)

    def _payload_index(self, run_filter: RunFilter) -> PayloadIndex | None:
        """What the filter's job indexes for `payload_contains` (None: no job, or nothing)."""
        if run_filter.payload_contains is None or run_filter.job_id is None or self.jobs is None:
            return None
        job = self.jobs.get(run_filter.job_id)
        if job is None or job.indexed_payload_since is None or not job.indexed_payload_paths:
            return None
        return PayloadIndex(job.indexed_payload_paths, job.indexed_payload_since)

    def dead_letters(
        self,
        project_id: str,
        job_id: str | None,
        limit: int,
        cursor: Cursor | None,
        fits: Callable[[Run], bool],
    ) -> Page:
        run_filter = RunFilter(project_id=project_id, status=RunStatus.DEAD_LETTER, job_id=job_id)
        return self.list_runs(run_filter, limit, cursor, fits=fits)

    def children(
        self,
        principal: Principal,
        run_id: str,
        limit: int,
        cursor: Cursor | None,
        fits: Callable[[Run], bool],
    ) -> Page:
        parent = self.get(principal, run_id)
        run_filter = RunFilter(project_id=parent.project_id, parent_run_id=parent.id)
        return self.list_runs(run_filter, limit, cursor, ascending=True, fits=fits)

    def lineage_page(self, principal: Principal, run_id: str, limit: int, cursor: Cursor | None) -> Page:
        """A page of the lineage, root first: the runs after `cursor` (by creation, which is the
        chain's order), at most `limit` of them."""
        chain = self.lineage(principal, run_id)
        bound = cursor.bound(ascending=True) if cursor else None
        after = [run for run in chain if bound is None or created_sort_key(run.created_at, run.id) > bound]
        page = after[:limit]
        more = len(after) > limit
        last = encode_cursor(created_sort_key(page[-1].created_at, page[-1].id)) if more and page else None
        return Page(page, last)

    def lineage(self, principal: Principal, run_id: str) -> list[Run]:
        """The continue-as-new chain holding the run, root first (at most LINEAGE_DEPTH + 1 runs)."""
        run = self.get(principal, run_id)
        older: list[Run] = []
        current = run
        while current.continuation_of and len(older) < limits.LINEAGE_DEPTH:
            previous = self.runs.get(current.continuation_of)
            if previous is None or previous.project_id != run.project_id:
                break
            older.append(previous)
            current = previous
        newer: list[Run] = []
        current = run
        while current.continued_by and len(newer) < limits.LINEAGE_DEPTH:
            following = self.runs.get(current.continued_by)
            if following is None or following.project_id != run.project_id:
                break
            newer.append(following)
            current = following
        chain = [*reversed(older), run, *newer]
        return sorted(chain, key=lambda item: item.lineage_depth)
