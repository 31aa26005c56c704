"""Cancel (spec 5 items 3, 5): a run and every non-terminal descendant at any depth, bounded work in
the request and the rest by the scheduler; the in-flight call's late answer; the cancelled run's
token; bulk-cancel's per-id answers. Moto, a FrozenClock, the engine driven by hand."""

import threading
from typing import Any

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.store.engine import slot_counter
from straitruns.domain.ids import IdKind
from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus
from straitruns.services.cancellation import CascadeLimits
from straitruns.wiring import Services
from tests.support.app import ApiClient, assert_error
from tests.support.endpoint import JobEndpoint, Reply, json_reply, slow_reply, status_reply
from tests.support.engine import Engine, engine_services
from tests.support.statuses import child_of, run_in_status

S = RunStatus


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock) -> Services:
    dynamodb, sqs = moto_clients
    return engine_services(dynamodb, sqs, clock)


@pytest.fixture
def engine(services: Services) -> Engine:
    return Engine(services)


def statuses(services: Services, *runs: Run) -> list[str]:
    found = services.runs.get_many([run.id for run in runs])
    return [found[run.id].status.value for run in runs]


def status_of(services: Services, run_id: str) -> str:
    run = services.runs.get(run_id)
    assert run is not None, run_id
    return run.status.value


def errors(services: Services, *runs: Run) -> list[str | None]:
    found = services.runs.get_many([run.id for run in runs])
    return [found[run.id].error for run in runs]


@pytest.fixture
def tree(api: ApiClient) -> dict[str, Run]:
    """An executing root with descendants on three levels below it, terminal ones among them:

    root (executing) ── a (executing) ── a1 (queued)
                     │                └─ a2 (completed)
                     ├─ b (completed) ── b1 (waiting) ── b1x (paused)
                     └─ c (queued)
    """
    services = api.services
    root = services.runs.get(run_in_status(api, S.EXECUTING))
    assert root is not None
    runs = {"root": root}
    runs["a"] = child_of(services, root, S.EXECUTING)
    runs["a1"] = child_of(services, runs["a"], S.QUEUED)
    runs["a2"] = child_of(services, runs["a"], S.COMPLETED)
    runs["b"] = child_of(services, root, S.COMPLETED)
    runs["b1"] = child_of(services, runs["b"], S.WAITING)
    runs["b1x"] = child_of(services, runs["b1"], S.PAUSED)
    runs["c"] = child_of(services, root, S.QUEUED)
    return runs


NON_TERMINAL_BELOW = ("a", "a1", "b1", "b1x", "c")
TERMINAL_BELOW = ("a2", "b")


def test_cancel_reaches_every_non_terminal_descendant_at_any_depth(
    api: ApiClient, tree: dict[str, Run]
) -> None:
    response = api.http.delete(f"/v1/runs/{tree['root'].id}", headers=api.auth)

    assert response.status_code == 204, response.text
    services = api.services
    assert statuses(services, tree["root"]) == ["canceled"]
    assert errors(services, tree["root"]) == ["canceled by user"]
    below = [tree[name] for name in NON_TERMINAL_BELOW]
    assert statuses(services, *below) == ["canceled"] * len(below)
    assert errors(services, *below) == ["parent run canceled"] * len(below)
    assert statuses(services, *(tree[name] for name in TERMINAL_BELOW)) == ["completed", "completed"]


def test_descendants_beyond_the_request_budget_are_cancelled_by_the_effects_of_the_cancel(
    api: ApiClient, tree: dict[str, Run], engine: Engine
) -> None:
    # Given a request that may walk only two runs of the tree
    api.services.cancellation.cascade = CascadeLimits(request_runs=2)
    below = [tree[name] for name in NON_TERMINAL_BELOW]

    # When the root is cancelled, some descendants are left for the effects of the cancel
    with api.http.effects_held():  # type: ignore[attr-defined]
        assert api.http.delete(f"/v1/runs/{tree['root'].id}", headers=api.auth).status_code == 204
    assert "canceled" in statuses(api.services, *below)
    assert statuses(api.services, *below) != ["canceled"] * len(below)

    # Then the effects of the cancelled runs (delivered from the stream) cancel the rest
    done = engine.effects()

    assert statuses(api.services, *below) == ["canceled"] * len(below), done
    assert statuses(api.services, *(tree[name] for name in TERMINAL_BELOW)) == ["completed", "completed"]


def test_child_that_appears_after_the_cancel_is_cancelled_by_the_scheduler_a_few_seconds_later(
    api: ApiClient, engine: Engine
) -> None:
    # Given a cancelled executing run, and a child of it stored only afterwards (a spawn that raced
    # the cancel, or a child the children index did not show yet)
    services = api.services
    parent = services.runs.get(run_in_status(api, S.EXECUTING))
    assert parent is not None
    assert api.http.delete(f"/v1/runs/{parent.id}", headers=api.auth).status_code == 204
    late_child = child_of(services, parent, S.QUEUED)

    # When the scheduler looks again after the recheck delay
    assert engine.tick().get("descendants-canceled") is None
    api.clock.advance(CascadeLimits().recheck_secs)
    engine.tick()

    # Then the child is cancelled, and the parent is not looked at again
    assert statuses(services, late_child) == ["canceled"]
    api.clock.advance(60)
    assert engine.tick() == {}


def test_cancel_of_queued_run_never_dispatched_reads_no_children(api: ApiClient) -> None:
    run_id = run_in_status(api, S.QUEUED)
    meter = api.services.table.meter
    before = dict(meter.by_operation)

    assert api.http.delete(f"/v1/runs/{run_id}", headers=api.auth).status_code == 204

    assert meter.by_operation.get("query", 0) == before.get("query", 0)


def test_cancel_computed_before_the_claim_took_its_slot_still_gives_the_slot_back(
    api: ApiClient, engine: Engine
) -> None:
    # Given a run read by a cancel just before a drain of its job's queue reserved its slot
    services = api.services
    job_id = api.create_job("capped", max_concurrency=1)["id"]
    with api.http.effects_held():  # type: ignore[attr-defined]
        run_id = api.trigger(job_id, {"payload": {}}).json()["id"]
    stale = engine.run(run_id)
    engine.effects()
    assert engine.run(run_id).slots == (slot_counter(job_id),)

    # When the cancel writes what it computed from that read
    outcome = services.cancellation.cancel(stale, services.cancellation.request_budget())

    # Then it noticed the slot, and gave it back with the cancel
    assert (outcome.canceled, outcome.run.slots) == (True, ())
    assert services.engine.active_slots(slot_counter(job_id)) == 0


def test_late_2xx_of_the_call_in_flight_is_a_late_outcome_and_the_run_stays_canceled(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a run whose endpoint takes a second to answer 200
    endpoint.answer_always(slow_reply(1.0, json_reply({"late": True})))
    job_id = api.create_job("slow", endpoint_url=endpoint.url, max_concurrency=1)["id"]
    run_id = api.trigger(job_id, {"payload": {}}).json()["id"]
    dispatching = threading.Thread(target=engine.drain)
    dispatching.start()
    endpoint.wait_for_requests(1)

    # When the run is cancelled while the call is in flight
    response = api.http.delete(f"/v1/runs/{run_id}", headers=api.auth)
    dispatching.join(timeout=10)

    # Then the cancel stands; the 200 is recorded as a late_outcome; the slot came back
    assert response.status_code == 204
    run = engine.run(run_id)
    assert (run.status, run.result, run.slots) == (S.CANCELED, None, ())
    [late] = engine.events(run_id, "late_outcome")
    assert (late["data"]["http_status"], late["data"]["outcome"]) == (200, "completed")
    assert engine.status_history(run_id)[-1] == ("executing", "canceled")


def test_token_of_the_cancelled_run_gets_410(api: ApiClient, engine: Engine, endpoint: JobEndpoint) -> None:
    # Given a run whose endpoint accepted the work (202) and holds its run token
    endpoint.answer_always(Reply(202))
    job_id = api.create_job("accepting", endpoint_url=endpoint.url)["id"]
    run_id = api.trigger(job_id, {"payload": {}}).json()["id"]
    engine.drain()
    token = endpoint.requests[0].header("X-Run-Token")
    sdk = {"Authorization": f"Bearer {token}"}
    assert api.http.post(f"/sdk/v1/runs/{run_id}/heartbeat", headers=sdk).status_code == 200

    # When it is cancelled
    assert api.http.delete(f"/v1/runs/{run_id}", headers=api.auth).status_code == 204

    # Then its token answers 410
    assert_error(api.http.post(f"/sdk/v1/runs/{run_id}/heartbeat", headers=sdk), 410, "gone")
    assert_error(api.http.post(f"/sdk/v1/runs/{run_id}/complete", headers=sdk, json={}), 410, "gone")


def test_cancel_of_another_projects_run_is_404(api: ApiClient) -> None:
    run_id = run_in_status(api, S.QUEUED)
    _, other_key = api.new_project("other")

    response = api.http.delete(f"/v1/runs/{run_id}", headers={"Authorization": f"Bearer {other_key}"})

    assert_error(response, 404, "not_found")
    assert status_of(api.services, run_id) == "queued"


# Bulk cancel --------------------------------------------------------------------------------


def test_bulk_cancel_answers_each_distinct_id_once_in_input_order(api: ApiClient) -> None:
    queued = run_in_status(api, S.QUEUED)
    executing = run_in_status(api, S.EXECUTING)
    completed = run_in_status(api, S.COMPLETED)
    _, other_key = api.new_project("other")
    other_job = api.http.post(
        "/v1/jobs",
        json={"slug": "x", "name": "x", "endpoint_url": "http://127.0.0.1:9/run"},
        headers={"Authorization": f"Bearer {other_key}"},
    ).json()["id"]
    foreign = api.http.post(
        f"/v1/jobs/{other_job}/trigger", json={}, headers={"Authorization": f"Bearer {other_key}"}
    ).json()["id"]
    unknown = api.services.ids.new(IdKind.RUN)
    ids = [queued, "not-a-run-id", executing, completed, queued, foreign, unknown]

    response = api.http.post("/v1/runs/bulk-cancel", json={"run_ids": ids}, headers=api.auth)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "results": [
            {"id": queued, "status": "canceled", "error": None},
            {"id": "not-a-run-id", "status": "failed", "error": "run not found"},
            {"id": executing, "status": "canceled", "error": None},
            {"id": completed, "status": "completed", "error": "run already in terminal state"},
            {"id": foreign, "status": "failed", "error": "run not found"},
            {"id": unknown, "status": "failed", "error": "run not found"},
        ],
        "total": 6,
        "canceled": 2,
        "failed": 4,
    }
    assert status_of(api.services, foreign) == "queued"


def test_bulk_cancel_repeated_reports_the_runs_as_already_terminal(api: ApiClient) -> None:
    run_id = run_in_status(api, S.QUEUED)
    body = {"run_ids": [run_id]}
    assert api.http.post("/v1/runs/bulk-cancel", json=body, headers=api.auth).json()["canceled"] == 1

    again = api.http.post("/v1/runs/bulk-cancel", json=body, headers=api.auth).json()

    assert again["results"] == [
        {"id": run_id, "status": "canceled", "error": "run already in terminal state"}
    ]
    assert (again["canceled"], again["failed"]) == (0, 1)


def test_bulk_cancel_cancels_descendants_too(api: ApiClient, tree: dict[str, Run]) -> None:
    response = api.http.post("/v1/runs/bulk-cancel", json={"run_ids": [tree["root"].id]}, headers=api.auth)

    assert response.json()["canceled"] == 1
    below = [tree[name] for name in NON_TERMINAL_BELOW]
    assert statuses(api.services, *below) == ["canceled"] * len(below)


@pytest.mark.parametrize("count", [0, 101])
def test_bulk_cancel_takes_1_to_100_ids_as_sent(api: ApiClient, count: int) -> None:
    ids = ["run_x"] * count  # duplicates count as sent

    response = api.http.post("/v1/runs/bulk-cancel", json={"run_ids": ids}, headers=api.auth)

    assert_error(response, 422, "validation_failed", "run_ids")


def test_bulk_cancel_refuses_ids_that_are_not_strings(api: ApiClient) -> None:
    response = api.http.post("/v1/runs/bulk-cancel", json={"run_ids": [1]}, headers=api.auth)

    assert_error(response, 422, "validation_failed", "run_ids")


def test_failed_endpoint_state_is_untouched_by_a_refused_cancel(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    endpoint.answer_always(status_reply(404))
    job_id = api.create_job("refusing", endpoint_url=endpoint.url)["id"]
    run_id = api.trigger(job_id, {"payload": {}}).json()["id"]
    engine.drain()

    response = api.http.delete(f"/v1/runs/{run_id}", headers=api.auth)

    body = assert_error(response, 409, "conflict")
    assert "terminal" in body["error"]
    assert engine.run(run_id).status == S.FAILED
