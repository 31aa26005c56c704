"""Why a run is not moving, as the run says it (`waiting_reason`, docs/engine.md#waiting), which
upstream run decides each dependency (`dependency-status`), and the start of a failing endpoint's
answer in `attempt.finished` (spec 4.3, docs/engine.md)."""

from typing import Any

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client
from tests.support.endpoint import JobEndpoint, Reply, json_reply
from tests.support.engine import Engine, engine_services
from tests.support.in_run import start_run


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock) -> Services:
    dynamodb, sqs = moto_clients
    return engine_services(dynamodb, sqs, clock)


@pytest.fixture
def api(services: Services, clock: FrozenClock) -> ApiClient:
    return api_client(services, clock)


@pytest.fixture
def engine(services: Services) -> Engine:
    return Engine(services)


def _run(api: ApiClient, run_id: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/runs/{run_id}", headers=api.auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def test_a_run_parked_behind_its_paused_job_says_so_until_the_job_resumes(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    job = api.create_job("held", endpoint_url=endpoint.url)["id"]
    run_id = api.run(job="held")["id"]
    assert api.http.patch(f"/v1/jobs/{job}", json={"paused": True}, headers=api.auth).status_code == 200
    second = api.run(job="held")["id"]
    engine.drain()

    parked = [_run(api, run_id), _run(api, second)]
    assert api.http.patch(f"/v1/jobs/{job}", json={"paused": False}, headers=api.auth).status_code == 200
    engine.drain()

    assert [(run["status"], run["waiting_reason"]) for run in parked] == [("queued", "job_paused")] * 2
    assert [_run(api, rid)["status"] for rid in (run_id, second)] == ["completed", "completed"]
    assert {_run(api, rid)["waiting_reason"] for rid in (run_id, second)} == {None}


def test_a_run_waiting_for_a_slot_says_it_waits_for_the_concurrency_limit(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    api.create_job("one", endpoint_url=endpoint.url, max_concurrency=1)
    first = api.run(job="one")["id"]
    second = api.run(job="one")["id"]

    assert (_run(api, first)["waiting_reason"], _run(api, second)["waiting_reason"]) == (
        None,
        "concurrency_limit",
    )
    engine.drain()
    assert _run(api, second)["waiting_reason"] is None


def test_dependency_status_names_the_upstream_run_that_decides_each_dependency(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    up = api.create_job("up", endpoint_url=endpoint.url)["id"]
    other = api.create_job("other", endpoint_url=endpoint.url)["id"]
    down = api.create_job("down", endpoint_url=endpoint.url)["id"]
    for upstream in (up, other):
        body = {"depends_on_job_id": upstream, "condition": "completed"}
        assert api.http.post(f"/v1/jobs/{down}/dependencies", json=body, headers=api.auth).status_code == 201
    waiting = api.run(job="down")["id"]
    upstream_run = api.run(job="up")["id"]
    engine.drain()

    response = api.http.get(f"/v1/runs/{waiting}/dependency-status", headers=api.auth)

    assert response.status_code == 200, response.text
    body = response.json()
    by_upstream = {entry["depends_on_job_id"]: entry for entry in body["dependencies"]}
    assert (body["status"], _run(api, waiting)["waiting_reason"]) == ("waiting", "dependencies")
    assert by_upstream[up]["satisfied"] is True
    assert (by_upstream[up]["decided_by_run_id"], by_upstream[up]["decided_by_status"]) == (
        upstream_run,
        "completed",
    )
    assert by_upstream[other]["satisfied"] is False
    assert (by_upstream[other]["decided_by_run_id"], by_upstream[other]["decided_by_status"]) == (None, None)


def test_a_parent_awaiting_its_children_says_so(api: ApiClient) -> None:
    api.create_job("child")
    parent, sdk = start_run(api)
    sdk.ok("spawn", {"job_slug": "child", "await_completion": True})

    assert (_run(api, parent.id)["status"], _run(api, parent.id)["waiting_reason"]) == ("waiting", "children")


def test_a_5xx_attempt_records_the_start_of_the_answer_with_secrets_masked(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    key = "strait_" + "ab" * 32
    answer = {"error": "database down", "echo": {"authorization": f"Bearer {key}"}, "filler": "x" * 4000}
    endpoint.script(Reply(503, json_reply(answer).body))
    job = api.create_job("flaky", endpoint_url=endpoint.url, max_attempts=1)["id"]
    run_id = api.trigger(job, {"payload": {}}).json()["id"]
    engine.drain()

    events = engine.events(run_id, "attempt.finished")

    [finished] = events
    excerpt = finished["data"]["response_body"]
    assert finished["data"]["http_status"] == 503
    assert excerpt.startswith('{"error": "database down"')
    assert key not in excerpt
    assert "[redacted]" in excerpt
    assert len(excerpt.encode()) <= 1024
