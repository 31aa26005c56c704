"""bulk-cancel-all (spec 5 item 9): which runs its filters select, its bound per call and
`has_more`, and its refusals. Moto; the 2,500-run sweep is in tests/ddblocal/test_steering_races.py."""

import itertools
from typing import Any

import pytest

from straitruns.domain.statuses import RunStatus
from straitruns.services.bulk import BulkLimits
from tests.support.app import ApiClient, assert_error
from tests.support.statuses import child_of, run_in_status

S = RunStatus


def _cancel_all(api: ApiClient, body: Any, project_id: str | None = None, key: str | None = None) -> Any:
    params = {"project_id": project_id or api.project_id}
    headers = {"Authorization": f"Bearer {key or api.key}"}
    return api.http.post("/v1/runs/bulk-cancel-all", params=params, json=body, headers=headers)


def _status(api: ApiClient, run_id: str) -> str:
    return str(api.http.get(f"/v1/runs/{run_id}", headers=api.auth).json()["status"])


def test_cancels_the_non_terminal_runs_of_the_job_oldest_first_and_nothing_else(api: ApiClient) -> None:
    # Given runs of job `a` in several statuses, and a queued run of job `b`
    mine = [run_in_status(api, status, job="a") for status in (S.QUEUED, S.DELAYED, S.EXECUTING, S.PAUSED)]
    done = run_in_status(api, S.COMPLETED, job="a")
    other = run_in_status(api, S.QUEUED, job="b")

    # When every run of `a` (given by slug) is cancelled
    response = _cancel_all(api, {"job_id": "a"})

    # Then its non-terminal runs are, answered oldest first; the rest is untouched
    assert response.status_code == 200, response.text
    body = response.json()
    assert [result["id"] for result in body["results"]] == mine
    assert {(r["status"], r["error"]) for r in body["results"]} == {("canceled", None)}
    assert (body["total"], body["canceled"], body["failed"]) == (4, 4, 0)
    assert (body["has_more"], body["descendants_canceled"]) == (False, 0)
    assert [_status(api, run_id) for run_id in (done, other)] == ["completed", "queued"]


def test_status_filter_takes_only_that_status(api: ApiClient) -> None:
    queued = run_in_status(api, S.QUEUED)
    delayed = run_in_status(api, S.DELAYED)

    body = _cancel_all(api, {"status": "delayed"}).json()

    assert [result["id"] for result in body["results"]] == [delayed]
    assert _status(api, queued) == "queued"


@pytest.mark.parametrize(
    ("matching", "not_matching", "body"),
    [
        (
            {"metadata": {"tenant": "acme"}},
            {"metadata": {"tenant": "other"}},
            {"metadata_key": "tenant", "metadata_value": "acme"},
        ),
        ({"metadata": {"tenant": "acme"}}, {"metadata": {"region": "eu"}}, {"metadata_key": "tenant"}),
    ],
)
def test_metadata_filters_select_by_key_or_pair(
    api: ApiClient, matching: dict[str, Any], not_matching: dict[str, Any], body: dict[str, Any]
) -> None:
    selected = run_in_status(api, S.QUEUED, **matching)
    spared = run_in_status(api, S.QUEUED, **not_matching)

    results = _cancel_all(api, body).json()["results"]

    assert [result["id"] for result in results] == [selected]
    assert _status(api, spared) == "queued"


def test_batch_triggered_by_and_created_before_filters(api: ApiClient) -> None:
    job_id = api.create_job("batchy")["id"]
    batch = api.http.post(
        f"/v1/jobs/{job_id}/trigger/bulk", json={"items": [{}, {}]}, headers=api.auth
    ).json()
    loose = run_in_status(api, S.QUEUED, job="batchy")
    api.clock.advance(10)
    late = run_in_status(api, S.QUEUED, job="batchy")
    batch_ids = [run["id"] for run in batch["runs"]]

    by_batch = _cancel_all(api, {"batch_id": batch["batch_id"]}).json()
    by_time = _cancel_all(api, {"triggered_by": "manual", "created_before": "2026-11-28T12:00:05Z"}).json()

    assert [result["id"] for result in by_batch["results"]] == batch_ids
    assert [result["id"] for result in by_time["results"]] == [loose]
    assert _status(api, late) == "queued"


def test_at_most_the_bound_per_call_with_has_more_until_done(api: ApiClient) -> None:
    run_ids = [run_in_status(api, S.QUEUED) for _ in range(5)]
    api.services.bulk.bounds = BulkLimits(cancel_all_runs=2)

    answers = [_cancel_all(api, {"status": "queued"}).json() for _ in range(3)]

    assert [(a["canceled"], a["has_more"]) for a in answers] == [(2, True), (2, True), (1, False)]
    assert [r["id"] for a in answers for r in a["results"]] == run_ids


def test_a_call_out_of_time_stops_after_its_first_batch_and_says_has_more(api: ApiClient) -> None:
    # Given reads of one run at a time, and a clock for the call's work that moves 25 s each time
    # it is read (the budget is 20 s)
    run_ids = [run_in_status(api, S.QUEUED) for _ in range(3)]
    api.services.bulk.bounds = BulkLimits(read_batch=1)
    ticks = itertools.count(step=25)
    api.services.bulk.timer = lambda: float(next(ticks))

    answers = [_cancel_all(api, {"status": "queued"}).json() for _ in range(3)]

    assert [(a["canceled"], a["has_more"]) for a in answers] == [(1, True), (1, True), (1, False)]
    assert [r["id"] for a in answers for r in a["results"]] == run_ids


def test_no_match_answers_200_with_total_0(api: ApiClient) -> None:
    run_in_status(api, S.COMPLETED)

    body = _cancel_all(api, {"job_id": "nothing-like-this"}).json()

    assert body == {
        "results": [],
        "total": 0,
        "canceled": 0,
        "failed": 0,
        "has_more": False,
        "descendants_canceled": 0,
    }


def test_descendants_of_matching_runs_are_cancelled_and_counted(api: ApiClient) -> None:
    parent = api.services.runs.get(run_in_status(api, S.EXECUTING, job="parent"))
    assert parent is not None
    children = [child_of(api.services, parent, S.QUEUED) for _ in range(2)]

    body = _cancel_all(api, {"job_id": "parent", "status": "executing"}).json()

    assert (body["canceled"], body["descendants_canceled"]) == (1, 2)
    assert {_status(api, child.id) for child in children} == {"canceled"}


# Refusals -----------------------------------------------------------------------------------


def test_project_id_is_required(api: ApiClient) -> None:
    response = api.http.post("/v1/runs/bulk-cancel-all", json={"status": "queued"}, headers=api.auth)

    assert_error(response, 400, "bad_request")


def test_another_projects_id_is_403(api: ApiClient) -> None:
    other_project, _ = api.new_project("other")

    assert_error(_cancel_all(api, {"status": "queued"}, project_id=other_project), 403, "forbidden")


@pytest.mark.parametrize("body", [{}, None, {"status": None, "job_id": None}])
def test_without_a_filter_is_400(api: ApiClient, body: Any) -> None:
    run_id = run_in_status(api, S.QUEUED)

    assert_error(_cancel_all(api, body), 400, "bad_request")
    assert _status(api, run_id) == "queued"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "completed"}, "status"),
        ({"status": "dead_letter"}, "status"),
        ({"status": "bogus"}, "status"),
        ({"job_id": 5}, "job_id"),
        ({"metadata_value": "acme"}, "body"),
        ({"created_before": "yesterday"}, "created_before"),
        ({"status": "queued", "project": "x"}, "project"),
    ],
)
def test_malformed_filters_are_422(api: ApiClient, body: dict[str, Any], field: str) -> None:
    assert_error(_cancel_all(api, body), 422, "validation_failed", field)
