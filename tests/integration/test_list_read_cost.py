"""Cost test (spec 5 item 1): a filtered page of runs reads a number of items bounded by the page,
never proportional to the project's run count.

Among 5,000 runs of one project, 50 match each filter. Items read are counted twice, independently:
by the store's ReadMeter and by a botocore hook summing the items DynamoDB returned.

The runs are seeded with BatchWriteItem of exactly the items RunStore.create writes (run, LIVE,
creation event, index items): on moto every transaction copies the whole table, so 5,000
RunStore.create calls would take hours (500 take about 140 s).
"""

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from straitruns.adapters.store.table import ReadMeter
from straitruns.domain.ids import IdKind
from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus
from tests.support.app import ApiClient
from tests.support.statuses import seed_runs

pytestmark = pytest.mark.cost

PROJECT_RUNS = 5_000
MATCHES = 50
PAGE = 50
# Per matching run: its index entry, its run item and its LIVE item; plus a little for the key
# lookup of authentication and the look-ahead query that finds the end of the list.
READ_BOUND = 3 * PAGE + 10
# Index keys are read a page per Query (a payload filter merges two partitions), not one per Query.
MAX_QUERIES = 4


class DynamoItemCounter:
    """Counts the items DynamoDB returns to the client, by operation (botocore after-call hook)."""

    def __init__(self) -> None:
        self.items: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def __call__(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        self.calls[name] += 1
        returned = len(parsed.get("Items", []))
        returned += sum(len(items) for items in parsed.get("Responses", {}).values())
        returned += 1 if parsed.get("Item") else 0
        self.items[name] += returned

    def total(self) -> int:
        return sum(self.items.values())


def _seed(api: ApiClient, runs: list[Run]) -> None:
    """Writes the runs with the items RunStore.create writes, 25 per BatchWriteItem (their job
    indexes the payload path `kind`)."""
    seed_runs(api.services, runs, payload_paths=("kind",))


@dataclass
class SeededProject:
    batch_id: str
    rare_job_id: str
    common_job_id: str
    matches: dict[str, list[str]]  # each filter's matching run ids, newest first


def _project_runs(api: ApiClient) -> SeededProject:
    """5,000 runs, 1 ms apart; every hundredth run (from a different offset for each filter)
    matches one filter, so matches are spread through the whole list."""
    common = api.create_job("common", indexed_payload_paths=["kind"])["id"]
    rare = api.create_job("rare")["id"]
    batch = api.services.ids.new(IdKind.BATCH)
    start = api.clock.now()
    special: dict[int, tuple[str, dict[str, Any]]] = {
        7: ("status", {"status": RunStatus.CANCELED}),
        23: ("batch", {"batch_id": batch}),
        51: ("job", {"job_id": rare}),
        77: ("metadata", {"metadata": {"team": "blue"}}),
        89: ("payload", {"payload": '{"kind":"rare"}'}),
    }
    matches: dict[str, list[str]] = {name: [] for name, _ in special.values()}
    runs: list[Run] = []
    for position in range(PROJECT_RUNS):
        name, fields = special.get(position % 100, ("", {}))
        run = Run.model_validate(
            {
                "id": api.services.ids.new(IdKind.RUN),
                "job_id": common,
                "project_id": api.project_id,
                "status": RunStatus.QUEUED,
                "payload": f'{{"i":{position}}}',
                "created_by": "admin",
                "created_at": start + timedelta(milliseconds=position),
                **fields,
            }
        )
        runs.append(run)
        if name:
            matches[name].append(run.id)
    _seed(api, runs)
    return SeededProject(batch, rare, common, {name: list(reversed(ids)) for name, ids in matches.items()})


def test_a_filtered_page_reads_items_bounded_by_the_page_not_by_the_project(api: ApiClient) -> None:
    # Given 5,000 runs with 50 matches for each filter
    seeded = _project_runs(api)
    filters = {
        "status": {"status": "canceled"},
        "batch": {"batch_id": seeded.batch_id},
        "job": {"job_id": seeded.rare_job_id},
        "metadata": {"metadata_key": "team", "metadata_value": "blue"},
        "metadata_key": {"metadata_key": "team"},
        # A payload filter is served by an index for the paths its job indexes (docs/data-model.md).
        "payload": {"payload_contains": {"kind": "rare"}, "job_id": seeded.common_job_id},
    }
    expected = {**seeded.matches, "metadata_key": seeded.matches["metadata"]}
    counter = DynamoItemCounter()
    api.services.table.client.meta.events.register("after-call.dynamodb.*", counter)

    # When one page of 50 is read for each filter
    measured: dict[str, tuple[int, int]] = {}
    for name, params in filters.items():
        api.services.table.meter = ReadMeter()
        counter.items.clear()
        counter.calls.clear()
        response = api.list_runs(limit=str(PAGE), **params)

        # Then the page is right, and what was read is bounded by the page
        assert response.status_code == 200, response.text
        assert [run["id"] for run in response.json()] == expected[name], name
        assert "x-next-cursor" not in response.headers, f"{name}: all {MATCHES} matches fit one page"
        assert "Scan" not in counter.calls, f"{name}: a list must never Scan"
        assert counter.calls["Query"] <= MAX_QUERIES, f"{name}: {counter.calls} for one page"
        measured[name] = (api.services.table.meter.items_read, counter.total())

    over = {name: reads for name, reads in measured.items() if max(reads) > READ_BOUND}
    assert not over, f"items read (meter, DynamoDB) above {READ_BOUND} for a page of {PAGE}: {measured}"
