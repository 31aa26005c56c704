"""Job dependencies in the store: the dependency items of a job, each upstream job's latest
terminal run per scope, and the index of waiting runs by what they wait for (upstream job and
scope), with one waiter record per waiting run naming the index items it is listed in."""

from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from straitruns.adapters.store import keys
from straitruns.adapters.store.table import ConditionFailed, DynamoTable, Item
from straitruns.domain.dependencies import (
    MAX_DEPENDENCIES_PER_JOB,
    Dependency,
    DependencyCondition,
    DependencyScope,
    LatestTerminal,
)
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import format_ts, parse_ts

_GRAPH_SK = "DEPGRAPH"
_WAITING_PAGE = 100
# Index items outlive the run's expiry by this much; TTL only reclaims space (reads check the run).
_INDEX_RETENTION = timedelta(days=1)


@dataclass(frozen=True)
class Listing:
    """A run listed in the waiting index (or in its job's waiter records), and since when."""

    run_id: str
    job_id: str
    listed_at: datetime


class DependencyExists(Exception):
    """The job already depends on that upstream job."""


class GraphChanged(Exception):
    """Another dependency of the project was added since the graph version was read."""


def waiting_partition(upstream_job_id: str, scope: DependencyScope) -> str:
    """The index partition of the runs waiting on `upstream_job_id` within `scope`."""
    return keys.waiting_on(upstream_job_id, scope.kind.value, scope.digest)


def _ttl(expires_at: datetime | None) -> int | None:
    return int((expires_at + _INDEX_RETENTION).timestamp()) if expires_at else None


class DependencyStore:
    """Raises Unavailable (from the table) when the store stays throttled."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # Dependencies -------------------------------------------------------------------------

    def graph_version(self, project_id: str) -> int:
        item = self.table.get(keys.dependency_graph(project_id), _GRAPH_SK)
        return int(item["version"]) if item else 0

    def add(
        self,
        dependency: Dependency,
        project_id: str,
        seen_version: int,
        counted: tuple[bool, bool] = (True, True),
    ) -> None:
        """Stores the dependency if the job does not depend on that upstream yet and the project's
        graph is still at `seen_version` (bumping it), counting it on the jobs that keep counts
        (`counted`: the dependent job, the upstream job; a job stored before jobs counted their
        dependencies keeps none, and readers then look). Raises DependencyExists or GraphChanged
        (also when a job's count changed shape meanwhile: read the jobs and try again)."""
        graph_condition = "attribute_not_exists(pk)" if seen_version == 0 else "version = :seen"
        actions = [
            self.table.put_action(_dependency_item(dependency), condition="attribute_not_exists(pk)"),
            self.table.update_action(
                keys.dependency_graph(project_id),
                _GRAPH_SK,
                "SET version = :next",
                condition=graph_condition,
                values={":next": seen_version + 1} | ({":seen": seen_version} if seen_version else {}),
            ),
        ]
        try:
            self.table.transact(actions + self._count_actions(dependency, 1, counted))
        except ConditionFailed as failure:
            if failure.failed_at(0):
                raise DependencyExists(dependency.depends_on_job_id) from failure
            raise GraphChanged(project_id) from failure

    def _count_actions(
        self, dependency: Dependency, delta: int, counted: tuple[bool, bool]
    ) -> list[dict[str, Any]]:
        """Updates of the dependency counts of the jobs that keep them."""
        pairs = ((dependency.job_id, "upstream_count"), (dependency.depends_on_job_id, "downstream_count"))
        return [
            self.table.update_action(
                f"JOB#{job_id}",
                "JOB",
                f"SET {counter} = {counter} + :d",
                condition=f"attribute_exists({counter})",
                values={":d": delta},
            )
            for (job_id, counter), keeps in zip(pairs, counted, strict=True)
            if keeps
        ]

    def dependencies_of(self, job_id: str) -> list[Dependency]:
        """The job's dependencies, oldest first (strongly consistent)."""
        items = self.table.query_all(
            key_condition="pk = :pk",
            values={":pk": keys.job_dependencies(job_id)},
            limit=MAX_DEPENDENCIES_PER_JOB + 1,
        )
        return sorted((_dependency_from_item(item) for item in items), key=lambda d: (d.created_at, d.id))

    def upstream_job_ids(self, job_id: str) -> list[str]:
        return [dependency.depends_on_job_id for dependency in self.dependencies_of(job_id)]

    def delete(self, dependency: Dependency, counted: tuple[bool, bool] = (True, True)) -> bool:
        """Removes the dependency (and counts it off the jobs that keep counts); False when it
        was already gone (or replaced)."""
        removal = self.table.delete_action(
            keys.job_dependencies(dependency.job_id),
            keys.dependency_sk(dependency.depends_on_job_id),
            condition="id = :id",
            values={":id": dependency.id},
        )
        try:
            self.table.transact([removal, *self._count_actions(dependency, -1, counted)])
        except ConditionFailed as failure:
            if failure.failed_at(0):
                return False
            raise
        return True

    # Latest terminal runs -----------------------------------------------------------------

    def record_terminal(self, job_id: str, scope: DependencyScope, latest: LatestTerminal) -> bool:
        """Makes `latest` the job's latest terminal run in `scope` unless a later finish is already
        recorded (conditional, so concurrent finishers end with the latest one). False then."""
        item = {
            "pk": keys.latest_terminal(job_id),
            "sk": keys.scope_sk(scope.kind.value, scope.digest),
            "run_id": latest.run_id,
            "status": latest.status.value,
            "finish_order": latest.order,
        }
        put = self.table.put_action(
            item,
            condition="attribute_not_exists(finish_order) OR finish_order < :order",
            values={":order": latest.order},
        )
        try:
            self.table.transact([put])
        except ConditionFailed:
            return False
        return True

    def latest_terminal(self, job_ids: Iterable[str], scope: DependencyScope) -> dict[str, LatestTerminal]:
        """Upstream job id -> its latest terminal run in `scope`; jobs without one are absent."""
        wanted = [
            (keys.latest_terminal(job_id), keys.scope_sk(scope.kind.value, scope.digest))
            for job_id in dict.fromkeys(job_ids)
        ]
        found = self.table.batch_get(wanted) if wanted else {}
        return {
            pk.removeprefix(keys.latest_terminal("")): LatestTerminal(
                item["run_id"], RunStatus(item["status"]), item["finish_order"]
            )
            for (pk, _), item in found.items()
        }

    # The waiting-run index ----------------------------------------------------------------

    def index_waiting(
        self,
        job_id: str,
        run_id: str,
        partitions: Sequence[str],
        expires_at: datetime | None,
        listed_at: datetime,
    ) -> None:
        """Lists the run in each of `partitions` (idempotent). The waiter record names them first,
        so whatever is listed can be found again and removed."""
        if not partitions:
            return
        ttl = _ttl(expires_at)
        self.table.transact(
            [
                self.table.update_action(
                    keys.dependency_waiters(job_id),
                    run_id,
                    "ADD waits_on :partitions SET run_id = :run, job_id = :job, listed_at = :at"
                    + (", expires_ttl = :ttl" if ttl else ""),
                    values={
                        ":partitions": set(partitions),
                        ":run": run_id,
                        ":job": job_id,
                        ":at": format_ts(listed_at),
                    }
                    | ({":ttl": ttl} if ttl else {}),
                )
            ]
        )
        self.table.batch_write(
            [
                {
                    "pk": partition,
                    "sk": run_id,
                    "run_id": run_id,
                    "job_id": job_id,
                    "listed_at": format_ts(listed_at),
                    keys.TTL_ATTRIBUTE: ttl,
                }
                for partition in partitions
            ]
        )

    def waiting_runs(
        self, partition: str, start: dict[str, Any] | None = None
    ) -> tuple[list[Listing], dict[str, Any] | None]:
        """One page of the runs listed in a waiting partition, and where the next page starts."""
        items, after = self.table.query(
            index=None,
            key_condition="pk = :pk",
            values={":pk": partition},
            limit=_WAITING_PAGE,
            start_key=start,
        )
        return [_listing(item) for item in items], after

    def waiters(
        self, job_id: str, start: dict[str, Any] | None = None
    ) -> tuple[list[Listing], dict[str, Any] | None]:
        """One page of a job's runs that have a waiter record, and where the next page starts."""
        return self.waiting_runs(keys.dependency_waiters(job_id), start)

    def waited_partitions(self, job_id: str, run_ids: Sequence[str]) -> dict[str, set[str]]:
        """Run id -> the partitions its waiter record names (runs without a record are absent)."""
        found = self.table.batch_get([(keys.dependency_waiters(job_id), run_id) for run_id in run_ids])
        return {sk: set(item.get("waits_on") or ()) for (_, sk), item in found.items()}

    def unindex(self, job_id: str, run_id: str) -> None:
        """Removes the run from every partition its waiter record names, then the record."""
        record = self.table.get(keys.dependency_waiters(job_id), run_id)
        partitions = set(record.get("waits_on") or ()) if record else set()
        deletes = [(partition, run_id) for partition in sorted(partitions)]
        self.table.batch_write(deletes=[*deletes, (keys.dependency_waiters(job_id), run_id)])

    def unlist(self, job_id: str, run_id: str, partition: str) -> None:
        """Removes the run from one partition (and from its waiter record's list)."""
        self.table.batch_write(deletes=[(partition, run_id)])
        # No waiter record (ConditionFailed): nothing names the partition.
        with suppress(ConditionFailed):
            self.table.transact(
                [
                    self.table.update_action(
                        keys.dependency_waiters(job_id),
                        run_id,
                        "DELETE waits_on :partition",
                        condition="attribute_exists(pk)",
                        values={":partition": {partition}},
                    )
                ]
            )

    def drop_stale(self, partition: str, run_id: str) -> None:
        """Removes a listing whose run no longer waits (or never came to exist)."""
        self.table.batch_write(deletes=[(partition, run_id)])


def _listing(item: Item) -> Listing:
    return Listing(item["run_id"], item["job_id"], parse_ts(item["listed_at"]))


def _dependency_item(dependency: Dependency) -> Item:
    return {
        "pk": keys.job_dependencies(dependency.job_id),
        "sk": keys.dependency_sk(dependency.depends_on_job_id),
        "id": dependency.id,
        "job_id": dependency.job_id,
        "depends_on_job_id": dependency.depends_on_job_id,
        "condition": dependency.condition.value,
        "created_at": format_ts(dependency.created_at),
    }


def _dependency_from_item(item: Item) -> Dependency:
    return Dependency(
        id=item["id"],
        job_id=item["job_id"],
        depends_on_job_id=item["depends_on_job_id"],
        condition=DependencyCondition(item["condition"]),
        created_at=parse_ts(item["created_at"]),
    )
