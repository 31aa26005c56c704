"""Runs made by runs (spec 6): spawn (children, awaited or not) and continue-as-new, through the
in-run plane, with the real dispatcher calling a real job endpoint (spec 4.3: X-Resumed-After,
X-Last-Checkpoint) and the scheduler ending a parent that waited too long."""

import json
from typing import Any

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.store.engine import slot_counter
from straitruns.domain import limits
from straitruns.domain.statuses import RunStatus
from straitruns.wiring import Services
from tests.support.app import ApiClient
from tests.support.endpoint import JobEndpoint, Reply, Request, json_reply, status_reply
from tests.support.engine import Engine, engine_services, run_until
from tests.support.in_run import Sdk, read, run_token, start_run


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock) -> Services:
    return engine_services(*moto_clients, clock)


@pytest.fixture
def engine(services: Services) -> Engine:
    return Engine(services)


def _get(api: ApiClient, run_id: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/runs/{run_id}", headers=api.auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


# Spawn ------------------------------------------------------------------------------------------


def test_spawned_child_belongs_to_its_parent_and_is_queued(api: ApiClient, engine: Engine) -> None:
    child_job = api.create_job("child")
    parent, sdk = start_run(api)

    child = sdk.ok("spawn", {"job_slug": "child", "payload": {"part": 1}, "project_id": api.project_id})
    by_id = sdk.ok("spawn", {"job_id": child_job["id"]})

    assert (child["parent_run_id"], child["triggered_by"], child["created_by"]) == (
        parent.id,
        "spawn",
        f"run:{parent.id}",
    )
    assert (child["job_id"], child["status"], child["payload"]) == (child_job["id"], "queued", {"part": 1})
    assert by_id["payload"] == {}
    assert [run["id"] for run in read(api, parent.id, "children")] == [child["id"], by_id["id"]]
    assert set(engine.visible_run_ids()) >= {child["id"], by_id["id"]}
    assert _get(api, parent.id)["status"] == "executing"


def test_spawn_names_a_job_of_the_runs_own_project(api: ApiClient) -> None:
    api.create_job("child")
    _, sdk = start_run(api)
    other_project, other_key = api.new_project("other")
    foreign = api.http.post(
        "/v1/jobs",
        json={"slug": "foreign", "name": "f", "endpoint_url": "http://127.0.0.1:9/x"},
        headers={"Authorization": f"Bearer {other_key}"},
    ).json()

    answers = {
        "job of another project": sdk.post("spawn", {"job_id": foreign["id"]}).status_code,
        "slug of another project": sdk.post("spawn", {"job_slug": "foreign"}).status_code,
        "another project_id": sdk.post(
            "spawn", {"job_slug": "child", "project_id": other_project}
        ).status_code,
        "unknown job": sdk.post("spawn", {"job_slug": "nope"}).status_code,
    }

    assert answers == {
        "job of another project": 404,
        "slug of another project": 404,
        "another project_id": 403,
        "unknown job": 404,
    }


def test_spawn_of_a_disabled_job_is_409(api: ApiClient) -> None:
    api.create_job("child", enabled=False)
    _, sdk = start_run(api)

    assert sdk.post("spawn", {"job_slug": "child"}).status_code == 409


def test_spawn_past_1000_children_is_422_and_counts_nothing(api: ApiClient) -> None:
    api.create_job("child")
    parent, sdk = start_run(api)
    live = {"pk": {"S": f"RUN#{parent.id}"}, "sk": {"S": "LIVE"}}
    client, table = api.services.table.client, api.services.table.name
    client.update_item(
        TableName=table,
        Key=live,
        UpdateExpression="SET children = :n",
        ExpressionAttributeValues={":n": {"N": str(limits.CHILDREN_PER_RUN - 1)}},
    )

    last = sdk.post("spawn", {"job_slug": "child"})
    refused = sdk.post("spawn", {"job_slug": "child"})

    assert (last.status_code, refused.status_code) == (201, 422)
    counted = client.get_item(TableName=table, Key=live)["Item"]["children"]["N"]
    assert counted == str(limits.CHILDREN_PER_RUN)


def test_spawned_child_waits_for_its_jobs_dependencies(api: ApiClient) -> None:
    upstream = api.create_job("upstream")
    api.create_job("child")
    added = api.http.post(
        "/v1/jobs/child/dependencies", json={"depends_on_job_id": upstream["id"]}, headers=api.auth
    )
    assert added.status_code == 201, added.text
    _, sdk = start_run(api)

    child = sdk.ok("spawn", {"job_slug": "child"})

    assert child["status"] == "waiting"


# Awaiting children ------------------------------------------------------------------------------


def test_awaited_spawn_parks_the_parent_in_waiting_and_gives_its_slot_back(api: ApiClient) -> None:
    job = api.create_job("job", max_concurrency=1)
    api.create_job("child")
    parent, sdk = start_run(api)
    slots = api.services.engine.active_slots(slot_counter(job["id"]))

    sdk.ok("spawn", {"job_slug": "child", "await_completion": True, "await_timeout_secs": 120})

    waiting = api.services.runs.get(parent.id)
    assert waiting is not None
    assert (slots, api.services.engine.active_slots(slot_counter(job["id"]))) == (1, 0)
    assert waiting.status == RunStatus.WAITING
    assert (waiting.timeout_at - api.clock.now()).total_seconds() == 120  # type: ignore[operator]
    assert Engine(api.services).status_history(parent.id)[-1] == ("executing", "waiting")
    assert sdk.ok("log", {"message": "still here while waiting"})["sequence"] > 0


def _parent_and_child_jobs(api: ApiClient, endpoint: JobEndpoint) -> None:
    api.create_job("parent", endpoint_url=f"{endpoint.base_url}/run")
    api.create_job("child", endpoint_url=f"{endpoint.base_url}/child")


def test_parent_is_dispatched_again_with_x_resumed_after_when_its_children_end(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a parent whose endpoint accepted the run (202) and children that answer at once
    _parent_and_child_jobs(api, endpoint)
    endpoint.respond(lambda request: json_reply({"done": True}) if request.path == "/child" else Reply(202))
    parent = api.trigger(api.jobs["parent"], {"payload": {"n": 1}}).json()
    engine.drain()
    [first_call] = endpoint.requests
    sdk = Sdk(api.http, parent["id"], str(first_call.header("X-Run-Token")))

    # When the parent spawns two awaited children, which then run to completion
    children = [
        sdk.ok("spawn", {"job_slug": "child", "await_completion": True})["id"],
        sdk.ok("spawn", {"job_slug": "child", "await_completion": True})["id"],
    ]
    waiting = _get(api, parent["id"])
    engine.drain()

    # Then the parent is queued again, dispatched, and told which children it waited for
    assert waiting["status"] == "waiting"
    assert [_get(api, child)["status"] for child in children] == ["completed", "completed"]
    [resumed] = [request for request in endpoint.requests if request.header("X-Resumed-After")]
    assert sorted(str(resumed.header("X-Resumed-After")).split(",")) == sorted(children)
    assert (resumed.header("X-Attempt"), resumed.json()) == ("1", {"n": 1})
    history = engine.status_history(parent["id"])
    assert history[-4:] == [
        ("executing", "waiting"),
        ("waiting", "queued"),
        ("queued", "dequeued"),
        ("dequeued", "executing"),
    ]

    # And the first attempt's token is stale now; the new one completes the run
    assert sdk.post("log", {"message": "old"}).status_code == 401
    resumed_sdk = Sdk(api.http, parent["id"], str(resumed.header("X-Run-Token")))
    done = resumed_sdk.ok("complete", {"result": {"children": children}}, status=200)
    assert (done["status"], done["attempt"]) == ("completed", 1)


def test_parent_waits_until_its_last_awaited_child_ends(api: ApiClient, engine: Engine) -> None:
    api.create_job("child")
    parent, sdk = start_run(api)
    first = sdk.ok("spawn", {"job_slug": "child", "await_completion": True})
    second = sdk.ok("spawn", {"job_slug": "child", "await_completion": True})
    state = api.services.state

    first_run = engine.start_attempt(first["id"])
    state.change(first_run, RunStatus.COMPLETED, "test", finished_at=api.clock.now())
    after_first = _get(api, parent.id)["status"]
    state.change(engine.run(second["id"]), RunStatus.CANCELED, "test", finished_at=api.clock.now())

    assert (after_first, _get(api, parent.id)["status"]) == ("waiting", "queued")


def test_parent_waiting_past_its_await_deadline_times_out(api: ApiClient, engine: Engine) -> None:
    api.create_job("child")
    parent, sdk = start_run(api)
    sdk.ok("spawn", {"job_slug": "child", "await_completion": True, "await_timeout_secs": 60})
    api.clock.advance(59)
    engine.tick()
    still = _get(api, parent.id)["status"]

    api.clock.advance(2)
    engine.tick()

    after = _get(api, parent.id)
    assert (still, after["status"], after["error"]) == ("waiting", "timed_out", "await timed out")


def test_late_answer_of_the_call_that_spawned_and_waited_is_a_late_outcome(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given an endpoint that spawns an awaited child during its call, then answers 202
    _parent_and_child_jobs(api, endpoint)

    def respond(request: Request) -> Reply:
        if request.path == "/child":
            return status_reply(500)
        sdk = Sdk(api.http, str(request.header("X-Run-ID")), str(request.header("X-Run-Token")))
        sdk.ok("spawn", {"job_slug": "child", "await_completion": True})
        return Reply(202)

    endpoint.respond(respond)
    parent = api.trigger(api.jobs["parent"], {"payload": {}}).json()

    # When the dispatcher records the call's answer
    engine.deliver()

    # Then the parent keeps waiting and the answer is recorded as a late outcome
    assert _get(api, parent["id"])["status"] == "waiting"
    [late] = engine.events(parent["id"], "late_outcome")
    assert late["data"]["http_status"] == 202


# Checkpoints on later attempts (spec 4.3) ----------------------------------------------------------


def test_retry_is_sent_its_latest_checkpoint(api: ApiClient, engine: Engine, endpoint: JobEndpoint) -> None:
    def respond(request: Request) -> Reply:
        if request.header("X-Attempt") == "1":
            sdk = Sdk(api.http, str(request.header("X-Run-ID")), str(request.header("X-Run-Token")))
            sdk.ok("checkpoint", {"state": {"page": 1}})
            sdk.ok("checkpoint", {"state": {"page": 2, "note": "é"}})
            return status_reply(503)
        return json_reply({"ok": True})

    endpoint.respond(respond)
    api.create_job("job", endpoint_url=endpoint.url, max_attempts=2, retry_initial_delay_secs=0)
    run = api.run({"payload": {}})

    run_until(api, run["id"], ["completed"], engine=engine)

    first, second = endpoint.requests
    assert first.header("X-Last-Checkpoint") is None
    assert second.header("X-Last-Checkpoint-Sequence") == "2"
    assert json.loads(str(second.header("X-Last-Checkpoint"))) == {"page": 2, "note": "é"}


def test_checkpoint_over_4_kib_is_sent_by_sequence_only(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    def respond(request: Request) -> Reply:
        if request.header("X-Attempt") == "1":
            sdk = Sdk(api.http, str(request.header("X-Run-ID")), str(request.header("X-Run-Token")))
            sdk.ok("checkpoint", {"state": {"blob": "x" * 5000}})
            return status_reply(503)
        return json_reply({"ok": True})

    endpoint.respond(respond)
    api.create_job("job", endpoint_url=endpoint.url, max_attempts=2, retry_initial_delay_secs=0)
    run = api.run({"payload": {}})

    run_until(api, run["id"], ["completed"], engine=engine)

    second = endpoint.requests[1]
    assert (second.header("X-Last-Checkpoint-Sequence"), second.header("X-Last-Checkpoint")) == ("1", None)


# Continue-as-new --------------------------------------------------------------------------------


def test_continue_creates_the_next_run_and_completes_this_one(api: ApiClient) -> None:
    first, sdk = start_run(api, {"payload": {"page": 1}, "metadata": {"customer": "acme"}, "priority": 4})

    successor = sdk.ok("continue")
    with_payload = start_run(api)[1].ok("continue", {"payload": {"page": 2}})

    assert (successor["continuation_of"], successor["lineage_depth"], successor["triggered_by"]) == (
        first.id,
        1,
        "spawn",
    )
    assert (successor["payload"], successor["metadata"], successor["priority"]) == (
        {"page": 1},
        {"customer": "acme"},
        4,
    )
    assert (successor["created_by"], successor["status"]) == (f"run:{first.id}", "queued")
    assert with_payload["payload"] == {"page": 2}
    ended = _get(api, first.id)
    assert (ended["status"], ended["result"]) == ("completed", {"continued_as": successor["id"]})


def test_lineage_of_a_chain_of_ten_continues_is_root_to_newest_and_an_eleventh_is_400(
    api: ApiClient, engine: Engine
) -> None:
    root, sdk = start_run(api)
    chain = [root.id]
    for _ in range(limits.LINEAGE_DEPTH):
        successor = sdk.ok("continue")
        chain.append(successor["id"])
        running = engine.start_attempt(successor["id"])
        sdk = Sdk(api.http, running.id, run_token(api.services, running))

    refused = sdk.post("continue")

    assert (refused.status_code, refused.json()["code"]) == (400, "bad_request")
    assert _get(api, chain[-1])["status"] == "executing"
    for member in (chain[0], chain[5], chain[-1]):
        lineage = read(api, member, "lineage")
        assert [run["id"] for run in lineage] == chain
        assert [run["lineage_depth"] for run in lineage] == list(range(limits.LINEAGE_DEPTH + 1))
