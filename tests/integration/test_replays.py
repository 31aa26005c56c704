"""Replays (spec 5 items 6-8, 10): replay as a new run (from a checkpoint's state), bulk-replay,
dlq-replay and both forms of bulk-dlq-replay, end to end through the engine; a bulk DLQ replay that
dies part-way is settled by the scheduler. Moto, a FrozenClock, the engine driven by hand."""

import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient

from straitruns.adapters.clock import FrozenClock
from straitruns.api.app import create_app
from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus
from straitruns.services.bulk import BulkRunIds
from straitruns.wiring import Services
from tests.support.app import ApiClient, assert_error
from tests.support.endpoint import JobEndpoint, Reply, json_reply, status_reply
from tests.support.engine import Engine, engine_services
from tests.support.statuses import run_in_status

S = RunStatus


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock) -> Services:
    dynamodb, sqs = moto_clients
    return engine_services(dynamodb, sqs, clock)


@pytest.fixture
def engine(services: Services) -> Engine:
    return Engine(services)


def _failing_job(api: ApiClient, endpoint: JobEndpoint, slug: str = "flaky") -> str:
    endpoint.answer_always(status_reply(500))
    job = api.create_job(slug, endpoint_url=endpoint.url, max_attempts=2, retry_initial_delay_secs=0)
    return str(job["id"])


def _dead_letters(api: ApiClient, engine: Engine, job_id: str, count: int) -> list[str]:
    """`count` runs of the job that failed both attempts, created a second apart (oldest first)."""
    run_ids = []
    for n in range(count):
        run_ids.append(api.trigger(job_id, {"payload": {"n": n}}).json()["id"])
        api.clock.advance(1)
    engine.drain()
    assert {engine.run(run_id).status for run_id in run_ids} == {S.DEAD_LETTER}
    return run_ids


def _post(api: ApiClient, path: str, body: Any = None) -> Any:
    return api.http.post(path, json=body, headers=api.auth)


def _skipped(response: Any) -> list[str]:
    header = response.headers.get("x-strait-skipped")
    return header.split(",") if header else []


# Replay -------------------------------------------------------------------------------------


def test_replay_copies_what_the_spec_names_and_nothing_else(api: ApiClient) -> None:
    trigger = {
        "payload": {"order": {"id": 7, "total": 12.50}},
        "metadata": {"customer": "acme"},
        "tags": {"team": "billing"},
        "priority": 3,
        "concurrency_key": "acme",
        "idempotency_key": "once",
        "max_attempts_override": 5,
        "timeout_secs_override": 30,
        "retry_backoff": "linear",
        "retry_initial_delay_secs": 2,
        "retry_max_delay_secs": 60,
        "ttl_secs": 120,
    }
    run_id = run_in_status(api, S.FAILED, **trigger)
    original = api.http.get(f"/v1/runs/{run_id}", headers=api.auth).json()
    api.clock.advance(600)

    replay = _post(api, f"/v1/runs/{run_id}/replay").json()

    copied = [
        *("job_id", "project_id", "payload", "metadata", "tags", "priority", "concurrency_key"),
        *("max_attempts_override", "timeout_secs_override", "retry_backoff"),
        *("retry_initial_delay_secs", "retry_max_delay_secs"),
    ]
    assert {name: replay[name] for name in copied} == {name: original[name] for name in copied}
    assert (replay["attempt"], replay["triggered_by"], replay["replayed_from"]) == (1, "retry", run_id)
    assert (replay["idempotency_key"], replay["error"], replay["debug_mode"]) == (None, None, False)
    assert replay["expires_at"] == "2026-11-29T12:10:00.000000Z"  # now + the job's run_ttl_secs
    assert replay["created_at"] == "2026-11-28T12:10:00.000000Z"


def test_replay_from_a_checkpoint_starts_from_its_state_in_debug_mode(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a run that stored two checkpoints through the SDK, then failed
    endpoint.answer_always(Reply(202))
    job_id = api.create_job("steps", endpoint_url=endpoint.url)["id"]
    run_id = api.trigger(job_id, {"payload": {"step": 0}}).json()["id"]
    engine.drain()
    sdk = {"Authorization": f"Bearer {endpoint.requests[0].header('X-Run-Token')}"}
    for step in (1, 2):
        state = f'{{"state": {{"step": {step}, "exact": 0.10000000000000000000000001}}}}'
        stored = api.http.post(
            f"/sdk/v1/runs/{run_id}/checkpoint",
            content=state.encode(),
            headers={**sdk, "Content-Type": "application/json"},
        )
        assert stored.status_code == 201, stored.text
    assert (
        api.http.post(f"/sdk/v1/runs/{run_id}/fail", json={"error": "boom"}, headers=sdk).status_code == 200
    )

    # When it is replayed from checkpoint 1
    response = api.http.post(f"/v1/runs/{run_id}/replay", params={"from_checkpoint": "1"}, headers=api.auth)

    # Then the new run's payload is that checkpoint's state (every digit kept), in debug mode
    assert response.status_code == 201, response.text
    assert '"payload":{"step":1,"exact":0.10000000000000000000000001}' in response.text
    replay = response.json()
    assert (replay["debug_mode"], replay["replayed_from"], replay["triggered_by"]) == (True, run_id, "retry")


@pytest.mark.parametrize(
    ("value", "status", "code"),
    [("9", 404, "not_found"), ("abc", 422, "validation_failed"), ("0", 422, "validation_failed")],
)
def test_replay_from_a_checkpoint_that_does_not_exist_is_refused(
    api: ApiClient, value: str, status: int, code: str
) -> None:
    run_id = run_in_status(api, S.COMPLETED)

    response = api.http.post(f"/v1/runs/{run_id}/replay", params={"from_checkpoint": value}, headers=api.auth)

    assert_error(response, status, code)


def test_replay_of_a_run_whose_job_is_disabled_is_409(api: ApiClient) -> None:
    run_id = run_in_status(api, S.FAILED)
    assert api.http.patch(
        f"/v1/jobs/{api.jobs['steer']}", json={"enabled": False}, headers=api.auth
    ).is_success

    body = assert_error(_post(api, f"/v1/runs/{run_id}/replay"), 409, "conflict")

    assert "disabled" in body["error"]


def test_replay_of_a_run_whose_job_was_deleted_is_409(api: ApiClient) -> None:
    run_id = run_in_status(api, S.FAILED)
    assert api.http.delete(f"/v1/jobs/{api.jobs['steer']}", headers=api.auth).status_code == 204

    body = assert_error(_post(api, f"/v1/runs/{run_id}/replay"), 409, "conflict")

    assert "no longer exists" in body["error"]


def test_replay_waits_like_a_trigger_when_a_dependency_is_unmet(api: ApiClient) -> None:
    run_id = run_in_status(api, S.FAILED)
    api.create_job("upstream")
    dependency = {"depends_on_job_id": "upstream", "condition": "completed"}
    assert _post(api, f"/v1/jobs/{api.jobs['steer']}/dependencies", dependency).status_code == 201

    replay = _post(api, f"/v1/runs/{run_id}/replay").json()

    assert replay["status"] == "waiting"


def test_replay_of_a_run_of_a_paused_job_is_created_and_parked(api: ApiClient, engine: Engine) -> None:
    run_id = run_in_status(api, S.FAILED)
    engine.drain()
    assert api.http.patch(f"/v1/jobs/{api.jobs['steer']}", json={"paused": True}, headers=api.auth).is_success

    replay = _post(api, f"/v1/runs/{run_id}/replay").json()

    assert replay["status"] == "queued"
    assert replay["id"] not in engine.visible_run_ids()


# Bulk replay --------------------------------------------------------------------------------


def test_bulk_replay_returns_the_new_runs_in_input_order_and_names_the_skipped(api: ApiClient) -> None:
    failed = run_in_status(api, S.FAILED)
    completed = run_in_status(api, S.COMPLETED)
    queued = run_in_status(api, S.QUEUED)
    unknown = "run_01JZZZZZZZZZZZZZZZZZZZZZZZ"
    ids = [completed, queued, "nope", failed, completed, unknown]

    response = _post(api, "/v1/runs/bulk-replay", {"run_ids": ids})

    assert response.status_code == 200, response.text
    assert [run["replayed_from"] for run in response.json()] == [completed, failed]
    assert {run["triggered_by"] for run in response.json()} == {"retry"}
    assert _skipped(response) == [f"{queued}:not_terminal", "nope:not_found", f"{unknown}:not_found"]


def test_bulk_replay_with_nothing_replayable_answers_an_empty_array(api: ApiClient) -> None:
    queued = run_in_status(api, S.QUEUED)

    response = _post(api, "/v1/runs/bulk-replay", {"run_ids": [queued]})

    assert (response.status_code, response.json()) == (200, [])
    assert _skipped(response) == [f"{queued}:not_terminal"]


@pytest.mark.parametrize("body", [{"run_ids": []}, {"run_ids": ["run_x"] * 101}, {}, {"ids": ["a"]}])
def test_bulk_replay_body_is_validated(api: ApiClient, body: dict[str, Any]) -> None:
    assert_error(_post(api, "/v1/runs/bulk-replay", body), 422, "validation_failed")


def test_bulk_replay_leaves_what_its_work_budget_cannot_do_to_the_next_call(api: ApiClient) -> None:
    # Given a clock for the call's work that moves 25 s each time it is read (the budget is 20 s)
    ids = [run_in_status(api, S.FAILED) for _ in range(3)]
    ticks = itertools.count(step=25)
    api.services.bulk.timer = lambda: float(next(ticks))

    response = _post(api, "/v1/runs/bulk-replay", {"run_ids": ids})

    assert [run["replayed_from"] for run in response.json()] == ids[:1]
    assert _skipped(response) == [f"{ids[1]}:work_budget_exhausted", f"{ids[2]}:work_budget_exhausted"]


def test_bulk_replay_stops_before_the_response_would_pass_its_size_cap(api: ApiClient) -> None:
    ids = [run_in_status(api, S.FAILED) for _ in range(3)]
    room = iter([True, False, True])
    principal = api.services.access.authenticate(f"Bearer {api.key}")

    result = api.services.bulk.bulk_replay(principal, BulkRunIds(run_ids=ids), lambda _run: next(room))

    assert [run.replayed_from for run in result.runs] == [ids[0], ids[2]]
    assert result.skipped == [(ids[1], "response_size_limit")]


# Dead-letter replays ------------------------------------------------------------------------


def test_dlq_replay_re_executes_the_dead_lettered_run_to_completion(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    [run_id] = _dead_letters(api, engine, _failing_job(api, endpoint), 1)
    endpoint.answer_always(json_reply({"fixed": True}))

    response = _post(api, f"/v1/runs/{run_id}/dlq-replay")
    engine.drain()

    assert (response.status_code, response.json()["status"]) == (200, "queued")
    done = engine.run(run_id)
    assert (done.status, done.attempt) == (S.COMPLETED, 1)
    assert [r.header("X-Attempt") for r in endpoint.requests] == ["1", "2", "1"]


def test_bulk_dlq_replay_by_ids_re_executes_each_listed_dead_letter_and_skips_the_others(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    dead = _dead_letters(api, engine, _failing_job(api, endpoint), 3)
    completed = run_in_status(api, S.COMPLETED)
    endpoint.answer_always(json_reply({"fixed": True}))

    response = _post(api, "/v1/runs/bulk-dlq-replay", {"run_ids": [dead[2], completed, dead[0], dead[2]]})
    engine.drain()

    assert response.status_code == 200, response.text
    body = response.json()
    assert ([run["id"] for run in body["replayed"]], body["count"]) == ([dead[2], dead[0]], 2)
    assert {(run["status"], run["attempt"], run["error"]) for run in body["replayed"]} == {
        ("queued", 1, None)
    }
    assert _skipped(response) == [f"{completed}:not_dead_letter"]
    assert body["skipped"] == [{"id": completed, "reason": "not_dead_letter"}]
    assert [engine.run(run_id).status for run_id in dead] == [S.COMPLETED, S.DEAD_LETTER, S.COMPLETED]
    history = engine.status_history(dead[0])
    assert history[-5:-3] == [("dead_letter", "replay_staged"), ("replay_staged", "queued")]


def test_bulk_dlq_replay_by_project_takes_the_oldest_dead_letters_of_the_job(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    dead = _dead_letters(api, engine, _failing_job(api, endpoint), 3)
    other = _dead_letters(api, engine, _failing_job(api, endpoint, "other"), 1)
    endpoint.answer_always(json_reply({"fixed": True}))

    body = {"project_id": api.project_id, "limit": 2, "job_id": "flaky"}
    response = _post(api, "/v1/runs/bulk-dlq-replay", body)
    engine.drain()

    assert response.status_code == 200, response.text
    assert [run["id"] for run in response.json()["replayed"]] == dead[:2]
    statuses = [engine.run(run_id).status for run_id in [*dead, *other]]
    assert statuses == [S.COMPLETED, S.COMPLETED, S.DEAD_LETTER, S.DEAD_LETTER]


def test_bulk_dlq_replay_leaves_what_its_work_budget_cannot_do_to_the_next_call(api: ApiClient) -> None:
    dead = [run_in_status(api, S.DEAD_LETTER) for _ in range(3)]
    ticks = itertools.count(step=25)
    api.services.bulk.timer = lambda: float(next(ticks))

    response = _post(api, "/v1/runs/bulk-dlq-replay", {"run_ids": dead})

    assert [run["id"] for run in response.json()["replayed"]] == dead[:1]
    assert _skipped(response) == [f"{run_id}:work_budget_exhausted" for run_id in dead[1:]]
    assert {run.status for run in api.services.runs.get_many(dead[1:]).values()} == {S.DEAD_LETTER}


def test_bulk_dlq_replay_with_an_unknown_id_replays_nothing(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    [run_id] = _dead_letters(api, engine, _failing_job(api, endpoint), 1)

    body = assert_error(
        _post(api, "/v1/runs/bulk-dlq-replay", {"run_ids": [run_id, "run_01JZZZZZZZZZZZZZZZZZZZZZZZ"]}),
        404,
        "not_found",
    )

    assert body["details"] == [{"id": "run_01JZZZZZZZZZZZZZZZZZZZZZZZ", "error": "run not found"}]
    assert engine.run(run_id).status == S.DEAD_LETTER


def test_bulk_dlq_replay_of_another_projects_run_or_project_is_refused(api: ApiClient) -> None:
    run_id = run_in_status(api, S.DEAD_LETTER)
    other_project, other_key = api.new_project("other")
    other = {"Authorization": f"Bearer {other_key}"}

    by_ids = api.http.post("/v1/runs/bulk-dlq-replay", json={"run_ids": [run_id]}, headers=other)
    by_project = api.http.post(
        "/v1/runs/bulk-dlq-replay", json={"project_id": api.project_id, "limit": 5}, headers=other
    )

    assert_error(by_ids, 404, "not_found")
    assert_error(by_project, 403, "forbidden")
    assert other_project != api.project_id


def test_bulk_dlq_replay_with_nothing_eligible_is_409(api: ApiClient) -> None:
    completed = run_in_status(api, S.COMPLETED)

    by_ids = _post(api, "/v1/runs/bulk-dlq-replay", {"run_ids": [completed]})
    by_project = _post(api, "/v1/runs/bulk-dlq-replay", {"project_id": api.project_id, "limit": 10})

    assert assert_error(by_ids, 409, "conflict")["details"] == [{"id": completed, "error": "not_dead_letter"}]
    assert_error(by_project, 409, "conflict")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"run_ids": ["run_x"], "project_id": "proj_x", "limit": 1},
        {"project_id": "proj_x"},
        {"limit": 5},
        {"run_ids": []},
        {"run_ids": ["run_x"] * 501},
        {"project_id": "proj_x", "limit": 501},
        {"project_id": "proj_x", "limit": 0},
        {"project_id": "proj_x", "limit": "5"},
    ],
)
def test_bulk_dlq_replay_takes_exactly_one_well_formed_form(api: ApiClient, body: dict[str, Any]) -> None:
    assert_error(_post(api, "/v1/runs/bulk-dlq-replay", body), 422, "validation_failed")


class FailsOnceWhenQueueingStaged:
    """A DynamoDB client whose first `replay_staged -> queued` write of one run fails, as if the
    function died at that moment; every other call goes through."""

    def __init__(self, client: Any, run_id: str) -> None:
        self._client = client
        self.run_id = run_id
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **params: Any) -> Any:
        finishing = params.get("ExpressionAttributeValues", {}).get(":from") == {"S": "replay_staged"}
        if finishing and params["Key"]["pk"] == {"S": f"RUN#{self.run_id}"} and not self.failed:
            self.failed = True
            raise RuntimeError("the function died")
        return self._client.update_item(**params)


def test_bulk_dlq_replay_that_dies_part_way_leaves_every_run_dead_letter_or_queued_after_the_next_tick(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, moto_clients: tuple[Any, Any], clock: FrozenClock
) -> None:
    # Given five dead letters, and a service that dies while queueing the third after staging it
    dead = _dead_letters(api, engine, _failing_job(api, endpoint), 5)
    dynamodb, sqs = moto_clients
    dying = engine_services(FailsOnceWhenQueueingStaged(dynamodb, dead[2]), sqs, clock)
    http = TestClient(create_app(lambda: dying), raise_server_exceptions=False)

    # When a bulk DLQ replay of all five runs into that
    response = http.post("/v1/runs/bulk-dlq-replay", json={"run_ids": dead}, headers=api.auth)
    assert response.status_code == 500
    left = [engine.run(run_id).status for run_id in dead]
    assert left == [S.QUEUED, S.QUEUED, S.REPLAY_STAGED, S.DEAD_LETTER, S.DEAD_LETTER]

    # Then the scheduler's next look at the staged run finishes it
    clock.advance(api.services.policy.replay_staged_secs)
    done = engine.tick()
    assert done.get("replay-finished") == 1, done
    assert {engine.run(run_id).status for run_id in dead} == {S.QUEUED, S.DEAD_LETTER}

    # And repeating the call replays the rest; every run then completes
    endpoint.answer_always(json_reply({"fixed": True}))
    again = _post(api, "/v1/runs/bulk-dlq-replay", {"run_ids": dead})
    assert [run["id"] for run in again.json()["replayed"]] == dead[3:]
    assert sorted(_skipped(again)) == sorted(f"{run_id}:not_dead_letter" for run_id in dead[:3])
    engine.drain()
    assert {engine.run(run_id).status for run_id in dead} == {S.COMPLETED}


def test_staged_run_of_a_replay_is_finished_with_the_dlq_replay_resets(
    api: ApiClient, engine: Engine
) -> None:
    run_id = run_in_status(api, S.REPLAY_STAGED)
    api.clock.advance(api.services.policy.replay_staged_secs)

    engine.tick()

    run: Run = engine.run(run_id)
    assert (run.status, run.attempt, run.error, run.finished_at) == (S.QUEUED, 1, None, None)
    assert engine.status_history(run_id)[-1] == ("replay_staged", "queued")
    assert run_id in engine.visible_run_ids()
