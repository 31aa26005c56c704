"""The stored-layout migration to layout 2 (docs/data-model.md, docs/deployment.md#migrations):
a run written as one `RUN` item (every field, its event counter and heartbeat in `LIVE`) becomes a
definition item and a state item; every job gets its dependency counts; projects and API keys get
the index attributes their lists read (access_index.py).

It is idempotent (a run already in layout 2 is left alone; a job already counted too) and
resumable: it scans the table a page at a time and records where it stopped in the migration's
marker item, so a migration stopped half-way (a crash, Ctrl-C) starts again from there. Each run is
rewritten in one transaction conditioned on it still being in the old layout at the status and
generation it was read, so a run the engine changes meanwhile is simply read again next time.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from straitruns.adapters.store import keys
from straitruns.adapters.store.run_codec import (
    LAYOUT_VERSION,
    definition_item,
    is_legacy,
    run_from_items,
    state_item,
)
from straitruns.adapters.store.table import ConditionFailed, DynamoTable, Item, deserialize, serialize
from straitruns.migrations.access_index import backfill_access_index

MARKER_PK = "META#layout"
MARKER_SK = "META"
_PAGE = 200


@dataclass(frozen=True)
class MigrationReport:
    runs_converted: int = 0
    runs_already_converted: int = 0
    jobs_counted: int = 0
    pages: int = 0
    done: bool = True
    projects_indexed: int = 0
    api_keys_indexed: int = 0


def layout_version(table: DynamoTable) -> int:
    """The layout version the table's marker records (0: no marker)."""
    marker = table.get(MARKER_PK, MARKER_SK)
    return int(marker.get("version", 0)) if marker else 0


def mark_current(table: DynamoTable) -> None:
    """Marks a table as written in the current layout (a new table needs no migration)."""
    table.batch_write([{"pk": MARKER_PK, "sk": MARKER_SK, "version": LAYOUT_VERSION}])


def is_empty(table: DynamoTable) -> bool:
    response = table.client.scan(TableName=table.name, Limit=1, Select="COUNT")
    return not response.get("Count") and not response.get("LastEvaluatedKey")


def migrate(
    table: DynamoTable, *, max_pages: int | None = None, progress: Callable[[str], None] | None = None
) -> MigrationReport:
    """Brings the table to the current layout; a table that is already there costs one read.
    `max_pages` stops after that many scan pages (the next call continues). Raises Unavailable
    when the table stays throttled."""
    marker = table.get(MARKER_PK, MARKER_SK) or {}
    if int(marker.get("version", 0)) >= LAYOUT_VERSION:
        return MigrationReport()
    start = deserialize(marker["cursor"]) if marker.get("cursor") else None
    converted = already = pages = 0
    job_pages: list[Item] = []
    upstream: Counter[str] = Counter()
    downstream: Counter[str] = Counter()
    for items, next_start in _scan(table, start):
        pages += 1
        for item in items:
            sk, pk = item.get("sk"), str(item.get("pk", ""))
            if sk == keys.RUN_SK and pk.startswith("RUN#"):
                if is_legacy(item):
                    converted += _convert(table, item)
                else:
                    already += 1
            elif pk.startswith("DEPS#"):
                upstream[str(item["job_id"])] += 1
                downstream[str(item["depends_on_job_id"])] += 1
            elif sk == "JOB":
                job_pages.append(item)
        _save_cursor(table, next_start)
        if progress:
            progress(f"page {pages}: {converted} runs converted")
        if next_start is None:
            break
        if max_pages is not None and pages >= max_pages:
            return MigrationReport(converted, already, 0, pages, done=False)
    counted = _count_jobs(table, job_pages, upstream, downstream) if start is None else _recount(table)
    access = backfill_access_index(table)
    table.batch_write([{"pk": MARKER_PK, "sk": MARKER_SK, "version": LAYOUT_VERSION}])
    return MigrationReport(converted, already, counted, pages, True, access.projects, access.api_keys)


def _scan(table: DynamoTable, start: Item | None) -> Iterator[tuple[list[Item], Item | None]]:
    request: dict[str, Any] = {"TableName": table.name, "Limit": _PAGE, "ConsistentRead": True}
    while True:
        if start:
            request["ExclusiveStartKey"] = serialize(start)
        response = table.client.scan(**request)
        start = deserialize(response["LastEvaluatedKey"]) if response.get("LastEvaluatedKey") else None
        yield [deserialize(raw) for raw in response.get("Items", [])], start
        if start is None:
            return


def _save_cursor(table: DynamoTable, cursor: Item | None) -> None:
    marker: Item = {"pk": MARKER_PK, "sk": MARKER_SK, "version": 1}
    if cursor is not None:
        marker["cursor"] = serialize(cursor)
    table.batch_write([marker])


def _convert(table: DynamoTable, legacy: Item) -> int:
    """Rewrites one run in layout 2; 0 when it changed meanwhile (read again next time)."""
    pk = str(legacy["pk"])
    live = table.get(pk, keys.LIVE_SK)
    blob_keys = [
        (pk, f"{keys.BLOB_SK_PREFIX}{name}") for name in ("payload", "result") if legacy.get(f"{name}_ref")
    ]
    blobs = table.batch_get(blob_keys) if blob_keys else {}
    run = run_from_items(legacy, None, live, blobs)
    if run is None:
        return 0
    definition, payload_blobs = definition_item(run, 1)
    state, result_blobs = state_item(run, 1, [], None)
    state["seq"] = int((live or {}).get("seq", 0))
    if payload_blobs or result_blobs:
        table.batch_write([*payload_blobs, *result_blobs])
    put = table.put_action(
        definition,
        condition="#st = :status AND generation = :gen AND attribute_not_exists(v)",
        values={":status": legacy["status"], ":gen": legacy.get("generation", 0)},
    )
    put["Put"]["ExpressionAttributeNames"] = {"#st": "status"}
    try:
        table.transact([put, table.put_action(state)])
    except ConditionFailed:
        return 0
    return 1


def _count_jobs(
    table: DynamoTable, jobs: list[Item], upstream: Counter[str], downstream: Counter[str]
) -> int:
    counted = 0
    for job in jobs:
        if "upstream_count" in job and "downstream_count" in job:
            continue
        job_id = str(job["id"])
        try:
            table.transact(
                [
                    table.update_action(
                        str(job["pk"]),
                        "JOB",
                        "SET upstream_count = :u, downstream_count = :d",
                        condition="attribute_exists(pk) AND attribute_not_exists(upstream_count)",
                        values={":u": upstream[job_id], ":d": downstream[job_id]},
                    )
                ]
            )
            counted += 1
        except ConditionFailed:
            continue
    return counted


def _recount(table: DynamoTable) -> int:
    """A resumed migration saw only part of the table: count the jobs' dependencies over all of
    it (one more pass over the job and dependency items)."""
    jobs: list[Item] = []
    upstream: Counter[str] = Counter()
    downstream: Counter[str] = Counter()
    for items, _ in _scan(table, None):
        for item in items:
            pk = str(item.get("pk", ""))
            if pk.startswith("DEPS#"):
                upstream[str(item["job_id"])] += 1
                downstream[str(item["depends_on_job_id"])] += 1
            elif item.get("sk") == "JOB":
                jobs.append(item)
    return _count_jobs(table, jobs, upstream, downstream)
