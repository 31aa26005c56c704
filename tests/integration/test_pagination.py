"""Paging run lists (spec 1.3): X-Next-Cursor and Link walk a list without skipping or repeating a
run, even when every run shares one created_at; date-time cursors; the limit clamp; children paged
oldest first; and the read budget that ends a sparse page early with a cursor.

The 1,000-run walks use DynamoDB Local: moto copies the whole table on every transaction, so
creating 1,000 runs through the bulk trigger there takes minutes (about 4) instead of seconds.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.domain.ids import IdKind
from straitruns.domain.models import Run, TriggeredBy
from straitruns.domain.statuses import RunStatus
from straitruns.local.provision import ensure_table
from straitruns.services.run_state import status_change_event
from straitruns.settings import Settings
from straitruns.wiring import Services, build_services
from tests.support.app import ADMIN_SECRET, ApiClient, api_client, make_services
from tests.support.backends import dynamodb_local_client, runs_table_spec

BULK_SIZE = 500


@dataclass
class BulkRuns:
    api: ApiClient
    run_ids: set[str]
    created_at: str


def _store_run(api: ApiClient, **fields: Any) -> Run:
    """A run written through the store (as the engine writes spawned and retried runs)."""
    if "job" not in api.jobs:
        api.create_job("job")
    services = api.services
    run = Run.model_validate(
        {
            "id": services.ids.new(IdKind.RUN),
            "job_id": api.jobs["job"],
            "project_id": api.project_id,
            "status": RunStatus.QUEUED,
            "created_by": "admin",
            "created_at": api.clock.now(),
            **fields,
        }
    )
    services.runs.create(run, status_change_event(services.ids, api.clock, run, None, "created", 1))
    return run


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()]


def _walk(api: ApiClient, path: str, params: dict[str, str]) -> list[list[str]]:
    """Every page of a list, following X-Next-Cursor until it is absent."""
    pages: list[list[str]] = []
    params = dict(params)
    while True:
        response = api.http.get(path, params=params, headers=api.auth)
        pages.append(_ids(response))
        cursor = response.headers.get("x-next-cursor")
        assert ("link" in response.headers) == (cursor is not None), dict(response.headers)
        if cursor is None:
            return pages
        assert len(pages) < 1000, "the cursor never ends"
        params["cursor"] = cursor


class _DiscardingSqs:
    """Stands in for SQS where the run queue is not under test: accepts every message."""

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


@pytest.fixture(scope="module", params=[1, 8], ids=["1-shard", "8-shards"])
def shards(request: pytest.FixtureRequest) -> int:
    """Every pagination case with one write shard and with eight (docs/data-model.md)."""
    count: int = request.param
    return count


@pytest.fixture
def index_shards(shards: int) -> int:
    return shards


@pytest.fixture(scope="module")
def bulk_runs(dynamodb_local: str, shards: int) -> Iterator[BulkRuns]:
    """1,000 runs from two bulk triggers of 500, all at one frozen instant (DynamoDB Local)."""
    dynamodb = dynamodb_local_client(dynamodb_local)
    table_name = f"runs-{uuid.uuid4().hex[:12]}"
    ensure_table(dynamodb, table_name, runs_table_spec())
    settings = Settings(
        table_name=table_name,
        run_queue_url="discarded",
        admin_secret=ADMIN_SECRET,
        allow_private_endpoints=True,
        index_shards=shards,
    )
    clock = FrozenClock()
    services = build_services(settings, dynamodb_client=dynamodb, sqs_client=_DiscardingSqs(), clock=clock)
    api = api_client(services, clock)
    job = api.create_job("bulk")
    run_ids: set[str] = set()
    for _ in range(2):
        items = [{"payload": {"i": i}} for i in range(BULK_SIZE)]
        response = api.http.post(
            f"/v1/jobs/{job['id']}/trigger/bulk", json={"items": items}, headers=api.auth
        )
        assert response.status_code == 201, response.text
        run_ids |= {run["id"] for run in response.json()["runs"]}
    assert len(run_ids) == 2 * BULK_SIZE
    yield BulkRuns(api, run_ids, response.json()["runs"][0]["created_at"])
    dynamodb.delete_table(TableName=table_name)


@pytest.mark.ddblocal
@pytest.mark.parametrize(("limit", "page_size"), [("100", 100), (None, 50)])
def test_following_cursors_returns_every_run_once_newest_first_by_time_then_id(
    bulk_runs: BulkRuns, limit: str | None, page_size: int
) -> None:
    api = bulk_runs.api
    params = {"project_id": api.project_id} | ({"limit": limit} if limit else {})

    pages = _walk(api, "/v1/runs", params)

    seen = [run_id for page in pages for run_id in page]
    assert len(seen) == len(set(seen)), "a run was returned twice"
    assert set(seen) == bulk_runs.run_ids
    # One created_at for all: newest first means id descending.
    assert seen == sorted(bulk_runs.run_ids, reverse=True)
    assert [len(page) for page in pages] == [page_size] * (len(seen) // page_size)


@pytest.mark.ddblocal
def test_link_header_continues_the_list_like_the_cursor(bulk_runs: BulkRuns) -> None:
    api = bulk_runs.api
    first = api.http.get("/v1/runs", params={"project_id": api.project_id, "limit": "100"}, headers=api.auth)
    cursor = first.headers["x-next-cursor"]

    link = first.headers["link"]
    assert link.startswith("<"), link
    assert link.endswith('>; rel="next"'), link
    target = urlsplit(link[1 : link.index(">")])
    assert target.path == "/v1/runs"
    assert parse_qs(target.query)["cursor"] == [cursor]
    assert parse_qs(target.query)["limit"] == ["100"]
    by_link = api.http.get(f"{target.path}?{target.query}", headers=api.auth)
    by_cursor = api.http.get(
        "/v1/runs", params={"project_id": api.project_id, "limit": "100", "cursor": cursor}, headers=api.auth
    )
    assert _ids(by_link) == _ids(by_cursor)
    assert not set(_ids(by_link)) & set(_ids(first))


def test_last_page_has_neither_cursor_nor_link(api: ApiClient) -> None:
    for _ in range(3):
        api.clock.advance(1)
        api.run({})

    first = api.list_runs(limit="2")
    last = api.list_runs(limit="2", cursor=first.headers["x-next-cursor"])

    assert len(_ids(first)) == 2
    assert "link" in first.headers
    assert len(_ids(last)) == 1
    assert "x-next-cursor" not in last.headers
    assert "link" not in last.headers


@pytest.mark.ddblocal
def test_limit_over_100_is_clamped_to_100(bulk_runs: BulkRuns) -> None:
    api = bulk_runs.api

    response = api.list_runs(limit="500")

    assert len(_ids(response)) == 100
    assert "x-next-cursor" in response.headers


def test_limit_that_is_not_a_positive_integer_is_400(api: ApiClient) -> None:
    for limit in ("0", "-1", "ten", "1.5"):
        assert api.list_runs(limit=limit).status_code == 400, limit


def test_date_time_cursor_returns_runs_strictly_before_that_time(api: ApiClient) -> None:
    runs = []
    for _ in range(4):
        api.clock.advance(1)
        runs.append(api.run({}))
    ids = [run["id"] for run in runs]

    at_third = api.list_runs(cursor=runs[2]["created_at"])
    assert _ids(at_third) == [ids[1], ids[0]]
    assert "x-next-cursor" not in at_third.headers
    # The same instant written with an offset.
    offset = api.list_runs(cursor="2026-11-28T13:00:03+01:00")
    assert runs[2]["created_at"] == "2026-11-28T12:00:03.000000Z"
    assert _ids(offset) == [ids[1], ids[0]]
    between = api.list_runs(cursor="2026-11-28T12:00:03.5Z")
    assert _ids(between) == [ids[2], ids[1], ids[0]]


def test_a_cursor_that_is_neither_ours_nor_a_date_time_is_400(api: ApiClient) -> None:
    assert api.list_runs(cursor="not a cursor").status_code == 400


def test_children_are_listed_oldest_first_and_paged(api: ApiClient) -> None:
    parent = api.run({})
    children = []
    for _ in range(5):
        api.clock.advance(1)
        children.append(_store_run(api, parent_run_id=parent["id"], triggered_by=TriggeredBy.SPAWN).id)
    _store_run(api)  # not a child

    path = f"/v1/runs/{parent['id']}/children"
    whole = api.http.get(path, headers=api.auth)
    pages = _walk(api, path, {"limit": "2"})

    assert _ids(whole) == children
    assert "x-next-cursor" not in whole.headers
    assert pages == [children[0:2], children[2:4], children[4:5]]


def test_children_date_time_cursor_returns_children_strictly_after_that_time(api: ApiClient) -> None:
    parent = api.run({})
    children = []
    for _ in range(4):
        api.clock.advance(1)
        children.append(_store_run(api, parent_run_id=parent["id"]))
    at_second = children[1].created_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    response = api.http.get(
        f"/v1/runs/{parent['id']}/children", params={"cursor": at_second}, headers=api.auth
    )

    assert _ids(response) == [children[2].id, children[3].id]


def test_children_sharing_one_created_at_page_by_id_without_repeats(api: ApiClient) -> None:
    parent = api.run({})
    api.clock.advance(1)
    children = [_store_run(api, parent_run_id=parent["id"]).id for _ in range(7)]

    pages = _walk(api, f"/v1/runs/{parent['id']}/children", {"limit": "3"})

    assert [run_id for page in pages for run_id in page] == sorted(children)
    assert [len(page) for page in pages] == [3, 3, 1]


@pytest.fixture
def budget_api(moto_clients: tuple[Any, Any], clock: FrozenClock, index_shards: int) -> ApiClient:
    """The API with STRAIT_LIST_READ_BUDGET = 30 items: 10 candidate runs (index entry, RUN, LIVE)."""
    dynamodb, sqs = moto_clients
    services: Services = make_services(dynamodb, sqs, clock, list_read_budget=30, index_shards=index_shards)
    return api_client(services, clock)


def test_read_budget_ends_a_sparse_page_early_and_cursors_find_every_match_once(
    budget_api: ApiClient,
) -> None:
    # Given 30 runs, three of them retries (positions 2, 5 and 27 in creation order)
    api = budget_api
    retries: list[str] = []
    for position in range(30):
        api.clock.advance(1)
        triggered_by = TriggeredBy.RETRY if position in (2, 5, 27) else TriggeredBy.MANUAL
        run = _store_run(api, triggered_by=triggered_by)
        if triggered_by == TriggeredBy.RETRY:
            retries.append(run.id)

    # When the retries are listed with a read budget of 30 items (10 runs) per request
    first = api.list_runs(triggered_by="retry")
    pages = _walk(api, "/v1/runs", {"project_id": api.project_id, "triggered_by": "retry"})

    # Then each page stops at the budget with a cursor, and the walk finds each retry once
    assert _ids(first) == [retries[2]]
    assert "x-next-cursor" in first.headers, "a short page must not look like the last one"
    assert pages == [[retries[2]], [], [retries[1], retries[0]]]
