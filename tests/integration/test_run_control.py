"""Pause, resume, restart, reschedule, debug mode and the idempotency-key reset (spec 5 items 19,
22-26) end to end through the engine; scopes and validation of every steering endpoint. Moto, a
FrozenClock, the engine driven by hand."""

from datetime import timedelta
from typing import Any

import jwt
import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.domain.debug_capture import REDACTED
from straitruns.domain.limits import EVENT_DATA_BYTES
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import format_ts
from straitruns.wiring import Services
from tests.support.app import ApiClient, assert_error
from tests.support.endpoint import JobEndpoint, Reply, Request, json_reply
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


def _job(api: ApiClient, endpoint: JobEndpoint, slug: str = "work", **fields: Any) -> str:
    return str(api.create_job(slug, endpoint_url=endpoint.url, **fields)["id"])


def _trigger(api: ApiClient, job_id: str, body: dict[str, Any] | None = None) -> str:
    response = api.trigger(job_id, body or {"payload": {"n": 1}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _post(api: ApiClient, path: str, body: Any = None) -> Any:
    return api.http.post(path, json=body, headers=api.auth)


def _at(api: ApiClient, seconds: float) -> str:
    return format_ts(api.clock.now() + timedelta(seconds=seconds))


# Pause and resume ---------------------------------------------------------------------------


def test_paused_queued_run_is_not_dispatched_until_resumed(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a queued run, its message on the queue, paused
    run_id = _trigger(api, _job(api, endpoint))
    assert _post(api, f"/v1/runs/{run_id}/pause").json()["status"] == "paused"

    # When its message is delivered and the scheduler ticks, long after
    deliveries = engine.drain()
    api.clock.advance(3600)
    engine.tick()
    engine.drain()

    # Then nothing called the endpoint and the run is still paused
    assert [d.outcome for d in deliveries] == ["stale"]
    assert endpoint.requests == []
    assert engine.run(run_id).status == S.PAUSED

    # When it is resumed, it runs
    resumed = _post(api, f"/v1/runs/{run_id}/resume").json()
    engine.drain()

    assert (resumed["status"], resumed["attempt"]) == ("queued", 1)
    assert engine.run(run_id).status == S.COMPLETED
    assert len(endpoint.requests) == 1


def test_paused_executing_run_keeps_its_sdk_calls_but_not_its_late_outcome(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given an executing run whose endpoint is paused mid-call, then heartbeats and checkpoints
    seen: dict[str, Any] = {}

    def answer(request: Request) -> Reply:
        run_id = request.header("X-Run-ID")
        sdk = {"Authorization": f"Bearer {request.header('X-Run-Token')}"}
        seen["pause"] = _post(api, f"/v1/runs/{run_id}/pause").json()["status"]
        seen["heartbeat"] = api.http.post(f"/sdk/v1/runs/{run_id}/heartbeat", headers=sdk).json()
        seen["checkpoint"] = api.http.post(
            f"/sdk/v1/runs/{run_id}/checkpoint", json={"state": {"at": 3}}, headers=sdk
        ).status_code
        seen["complete"] = api.http.post(f"/sdk/v1/runs/{run_id}/complete", json={}, headers=sdk).status_code
        return json_reply({"done": True})

    endpoint.respond(answer)
    run_id = _trigger(api, _job(api, endpoint, max_concurrency=1))

    # When the call's 200 comes back
    [delivery] = engine.drain()

    # Then the pause held the SDK's heartbeat answer and checkpoint, and refused its complete
    assert seen == {
        "pause": "paused",
        "heartbeat": {"status": "ok", "action": "pause"},
        "checkpoint": 201,
        "complete": 409,
    }
    # and the 200 is a late outcome: the run stays paused, its slot given back
    assert delivery.outcome == "late_outcome"
    run = engine.run(run_id)
    assert (run.status, run.slots) == (S.PAUSED, ())


def test_resume_of_a_run_paused_before_its_time_makes_it_delayed_again(api: ApiClient) -> None:
    run_id = run_in_status(api, S.DELAYED)
    _post(api, f"/v1/runs/{run_id}/pause")

    resumed = _post(api, f"/v1/runs/{run_id}/resume").json()

    assert resumed["status"] == "delayed"


# Restart ------------------------------------------------------------------------------------


def test_restart_abandons_the_attempt_and_runs_again_with_the_new_preset(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a run restarted on large-1x while its first call is in flight
    tokens: list[str] = []

    def answer(request: Request) -> Reply:
        tokens.append(request.header("X-Run-Token") or "")
        if len(tokens) == 1:
            restarted = _post(
                api, f"/v1/runs/{request.header('X-Run-ID')}/restart", {"machine_preset": "large-1x"}
            )
            assert restarted.status_code == 200, restarted.text
            return json_reply({"first": True})
        return json_reply({"second": True})

    endpoint.respond(answer)
    run_id = _trigger(api, _job(api, endpoint))

    # When the queue is drained
    outcomes = [delivery.outcome for delivery in engine.drain()]

    # Then the first call's answer was late, and the run executed again with the preset header
    assert outcomes == ["late_outcome", "completed"]
    assert [r.header("X-Machine-Preset") for r in endpoint.requests] == [None, "large-1x"]
    run = api.http.get(f"/v1/runs/{run_id}", headers=api.auth).json()
    assert (run["status"], run["result"], run["attempt"], run["machine_preset"]) == (
        "completed",
        {"second": True},
        1,
        "large-1x",
    )
    # And the first attempt's token is stale: its generation is behind, the SDK answers 401
    first, second = (jwt.decode(token, options={"verify_signature": False}) for token in tokens)
    assert first["gen"] < second["gen"]
    engine_run = engine.run(run_id)
    assert engine_run.generation > first["gen"]


def test_old_token_of_a_restarted_run_gets_401(api: ApiClient, engine: Engine, endpoint: JobEndpoint) -> None:
    endpoint.answer_always(Reply(202))
    run_id = _trigger(api, _job(api, endpoint))
    engine.drain()
    sdk = {"Authorization": f"Bearer {endpoint.requests[0].header('X-Run-Token')}"}

    assert _post(api, f"/v1/runs/{run_id}/restart").status_code == 200

    assert_error(
        api.http.post(f"/sdk/v1/runs/{run_id}/heartbeat", headers=sdk), 401, "authentication_required"
    )


def test_restart_with_an_unknown_machine_preset_is_422(api: ApiClient) -> None:
    run_id = run_in_status(api, S.QUEUED)

    response = _post(api, f"/v1/runs/{run_id}/restart", {"machine_preset": "huge-9x"})

    assert_error(response, 422, "validation_failed", "machine_preset")
    assert api.http.get(f"/v1/runs/{run_id}", headers=api.auth).json()["machine_preset"] is None


def test_restart_without_a_preset_keeps_the_runs_preset(api: ApiClient) -> None:
    run_id = run_in_status(api, S.QUEUED)
    _post(api, f"/v1/runs/{run_id}/restart", {"machine_preset": "micro"})

    again = api.http.post(f"/v1/runs/{run_id}/restart", headers=api.auth)

    assert (again.status_code, again.json()["machine_preset"]) == (200, "micro")


# Reschedule ---------------------------------------------------------------------------------


def test_reschedule_moves_expires_at_with_scheduled_at(api: ApiClient) -> None:
    run_id = _trigger(api, api.create_job("later")["id"], {"scheduled_at": _at(api, 3600), "ttl_secs": 600})
    before = api.http.get(f"/v1/runs/{run_id}", headers=api.auth).json()
    assert before["expires_at"] == _at(api, 3600 + 600)

    moved = _post(api, f"/v1/runs/{run_id}/reschedule", {"scheduled_at": _at(api, 7200)}).json()

    assert (moved["status"], moved["scheduled_at"], moved["expires_at"]) == (
        "delayed",
        _at(api, 7200),
        _at(api, 7200 + 600),
    )


def test_reschedule_to_a_past_time_queues_the_run_at_once(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    run_id = _trigger(api, _job(api, endpoint), {"scheduled_at": _at(api, 3 * 3600)})
    assert engine.drain() == []

    moved = _post(api, f"/v1/runs/{run_id}/reschedule", {"scheduled_at": "2020-01-01T00:00:00Z"}).json()
    engine.drain()

    assert (moved["status"], moved["scheduled_at"]) == ("queued", _at(api, 0))
    assert moved["expires_at"] == _at(api, 86_400)
    assert engine.run(run_id).status == S.COMPLETED
    assert engine.status_history(run_id)[1] == ("delayed", "queued")


def test_reschedule_replaces_the_payload_and_its_filter_index(api: ApiClient) -> None:
    run_id = run_in_status(api, S.QUEUED)

    moved = _post(
        api, f"/v1/runs/{run_id}/reschedule", {"scheduled_at": _at(api, 60), "payload": {"order": {"id": 9}}}
    ).json()

    assert moved["payload"] == {"order": {"id": 9}}
    found = api.list_runs(payload_contains={"order": {"id": 9}}).json()
    assert [run["id"] for run in found] == [run_id]
    assert api.list_runs(payload_contains={"n": 1}).json() == []


def test_reschedule_of_a_queued_run_that_was_dispatched_before_is_409(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a run queued for its retry after a failed first attempt
    endpoint.script(Reply(500))
    run_id = _trigger(api, _job(api, endpoint, retry_initial_delay_secs=30))
    engine.drain()
    assert engine.run(run_id).status == S.QUEUED

    response = _post(api, f"/v1/runs/{run_id}/reschedule", {"scheduled_at": _at(api, 60)})

    assert "dispatched" in assert_error(response, 409, "conflict")["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "scheduled_at"),
        ({"scheduled_at": "tomorrow"}, "scheduled_at"),
        ({"scheduled_at": "2026-11-28T12:00:00Z", "when": 1}, "when"),
    ],
)
def test_reschedule_body_is_validated(api: ApiClient, body: dict[str, Any], field: str) -> None:
    run_id = run_in_status(api, S.QUEUED)

    assert_error(_post(api, f"/v1/runs/{run_id}/reschedule", body), 422, "validation_failed", field)


def test_reschedule_more_than_30_days_ahead_is_422(api: ApiClient) -> None:
    run_id = run_in_status(api, S.QUEUED)

    response = _post(api, f"/v1/runs/{run_id}/reschedule", {"scheduled_at": _at(api, 31 * 86_400)})

    assert_error(response, 422, "validation_failed", "scheduled_at")


# Debug mode ---------------------------------------------------------------------------------


def test_debug_mode_records_the_request_and_response_with_secrets_redacted(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    endpoint.answer_always(
        Reply(200, b'{"ok": true}', headers=(("Set-Cookie", "session=abc"), ("X-Trace", "t-1")))
    )
    run_id = _trigger(api, _job(api, endpoint, timeout_secs=45), {"payload": {"secret_free": True}})
    engine.lose_messages(run_id)
    assert (
        api.http.post(f"/v1/runs/{run_id}/debug", json={"debug_mode": True}, headers=api.auth).status_code
        == 204
    )

    engine.redeliver(run_id)

    [request] = engine.events(run_id, "debug.request")
    [response] = engine.events(run_id, "debug.response")
    token = endpoint.requests[0].header("X-Run-Token")
    assert token
    assert token not in str(request)
    assert request["data"]["headers"]["X-Run-Token"] == REDACTED
    assert request["data"]["headers"]["X-Run-ID"] == run_id
    assert request["data"]["body"] == '{"secret_free":true}'
    assert request["data"]["job"]["timeout_secs"] == 45
    assert request["data"]["job"]["endpoint_url"] == endpoint.url
    assert response["data"]["status"] == 200
    assert response["data"]["body"] == '{"ok": true}'
    assert response["data"]["headers"]["set-cookie"] == REDACTED
    assert response["data"]["headers"]["x-trace"] == "t-1"
    levels = {
        event.level
        for event in api.services.event_log.events_after(run_id, 0, 100)
        if event.type.startswith("debug.")
    }
    assert levels == {"debug"}


def test_debug_bodies_are_cut_so_an_event_stays_within_its_data_limit(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    endpoint.answer_always(Reply(200, b'"' + b"y" * 100_000 + b'"'))
    run_id = _trigger(api, _job(api, endpoint), {"payload": {"blob": "x" * 100_000}, "debug_mode": True})

    engine.drain()

    for kind in ("debug.request", "debug.response"):
        [event] = [e for e in api.services.event_log.events_after(run_id, 0, 100) if e.type == kind]
        assert event.data is not None
        assert len(event.data.encode()) <= EVENT_DATA_BYTES
        assert '"body_truncated":true' in event.data


def test_without_debug_mode_no_debug_events_are_recorded(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    run_id = _trigger(api, _job(api, endpoint), {"payload": {}, "debug_mode": True})
    engine.lose_messages(run_id)
    assert api.http.post(f"/v1/runs/{run_id}/debug", headers=api.auth).status_code == 204  # absent: off

    engine.redeliver(run_id)

    assert engine.run(run_id).debug_mode is False
    assert [e for e in engine.events(run_id) if e["type"].startswith("debug.")] == []


@pytest.mark.parametrize(
    "body", [{"debug_mode": "true"}, {"debug_mode": 1}, {"debug_mode": None}, {"other": True}]
)
def test_debug_mode_must_be_a_boolean(api: ApiClient, body: dict[str, Any]) -> None:
    run_id = run_in_status(api, S.QUEUED)

    assert_error(_post(api, f"/v1/runs/{run_id}/debug", body), 422, "validation_failed")


# Idempotency-key reset ----------------------------------------------------------------------


def test_after_a_key_reset_a_trigger_with_the_same_key_creates_a_new_run(api: ApiClient) -> None:
    first = api.run({"payload": {}, "idempotency_key": "nightly"})
    repeat = api.trigger(api.jobs["job"], {"payload": {}, "idempotency_key": "nightly"})
    assert (repeat.status_code, repeat.json()["id"]) == (200, first["id"])

    reset = api.http.delete(f"/v1/runs/{first['id']}/idempotency-key", headers=api.auth)
    fresh = api.trigger(api.jobs["job"], {"payload": {}, "idempotency_key": "nightly"})

    assert reset.json() == {"status": "reset", "run_id": first["id"]}
    assert fresh.status_code == 201
    assert fresh.json()["id"] != first["id"]
    again = api.trigger(api.jobs["job"], {"payload": {}, "idempotency_key": "nightly"})
    assert (again.status_code, again.json()["id"]) == (200, fresh.json()["id"])


def test_key_reset_of_a_run_without_a_key_answers_200(api: ApiClient) -> None:
    run_id = run_in_status(api, S.COMPLETED)

    response = api.http.delete(f"/v1/runs/{run_id}/idempotency-key", headers=api.auth)

    assert (response.status_code, response.json()) == (200, {"status": "reset", "run_id": run_id})


def test_key_reset_does_not_free_a_key_another_run_holds_now(api: ApiClient) -> None:
    # Given a run whose key was reset and taken by a newer run
    first = api.run({"payload": {}, "idempotency_key": "k"})
    api.http.delete(f"/v1/runs/{first['id']}/idempotency-key", headers=api.auth)
    holder = api.trigger(api.jobs["job"], {"payload": {}, "idempotency_key": "k"}).json()

    # When the first run's key is reset again
    api.http.delete(f"/v1/runs/{first['id']}/idempotency-key", headers=api.auth)

    # Then the newer run still holds the key
    repeat = api.trigger(api.jobs["job"], {"payload": {}, "idempotency_key": "k"})
    assert (repeat.status_code, repeat.json()["id"]) == (200, holder["id"])


# Scopes and visibility ----------------------------------------------------------------------

STEERING_CALLS = [
    ("DELETE", "/v1/runs/{id}", None),
    ("POST", "/v1/runs/{id}/replay", None),
    ("POST", "/v1/runs/{id}/dlq-replay", None),
    ("POST", "/v1/runs/{id}/reschedule", {"scheduled_at": "2026-11-29T00:00:00Z"}),
    ("POST", "/v1/runs/{id}/pause", None),
    ("POST", "/v1/runs/{id}/resume", None),
    ("POST", "/v1/runs/{id}/restart", None),
    ("POST", "/v1/runs/{id}/debug", {"debug_mode": True}),
    ("DELETE", "/v1/runs/{id}/idempotency-key", None),
    ("POST", "/v1/runs/bulk-cancel", {"run_ids": ["{id}"]}),
    ("POST", "/v1/runs/bulk-cancel-all?project_id={project}", {"status": "queued"}),
    ("POST", "/v1/runs/bulk-replay", {"run_ids": ["{id}"]}),
    ("POST", "/v1/runs/bulk-dlq-replay", {"run_ids": ["{id}"]}),
]


def _request(api: ApiClient, call: tuple[str, str, Any], run_id: str, key: str) -> Any:
    method, path, body = call
    filled = path.format(id=run_id, project=api.project_id)
    payload = {k: [run_id] if isinstance(v, list) else v for k, v in body.items()} if body else None
    return api.http.request(method, filled, json=payload, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize("call", STEERING_CALLS, ids=lambda call: f"{call[0]} {call[1]}")
def test_steering_needs_the_runs_write_scope(api: ApiClient, call: tuple[str, str, Any]) -> None:
    run_id = run_in_status(api, S.QUEUED)
    reader = api.new_key(api.project_id, ["runs:read", "jobs:write", "jobs:trigger"])

    assert_error(_request(api, call, run_id, reader), 403, "forbidden")
    assert api.http.get(f"/v1/runs/{run_id}", headers=api.auth).json()["status"] == "queued"


@pytest.mark.parametrize("call", STEERING_CALLS[:9], ids=lambda call: f"{call[0]} {call[1]}")
def test_steering_a_run_of_another_project_is_404(api: ApiClient, call: tuple[str, str, Any]) -> None:
    run_id = run_in_status(api, S.QUEUED)
    _, other_key = api.new_project("other")

    assert_error(_request(api, call, run_id, other_key), 404, "not_found")


@pytest.mark.parametrize("call", STEERING_CALLS[:9], ids=lambda call: f"{call[0]} {call[1]}")
def test_steering_a_malformed_run_id_is_404(api: ApiClient, call: tuple[str, str, Any]) -> None:
    assert_error(_request(api, call, "not-a-run", api.key), 404, "not_found")


def test_steering_with_the_admin_secret_acts_on_any_project(api: ApiClient) -> None:
    run_id = run_in_status(api, S.QUEUED)

    response = api.http.post(f"/v1/runs/{run_id}/pause", headers=api.admin)

    assert (response.status_code, response.json()["status"]) == (200, "paused")
