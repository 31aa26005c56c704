"""Which statuses each single-run steering endpoint accepts (spec 3, 5 items 5-7, 19, 22-26): one
test per allowed source status (the status it leaves the run in, and its status_change event) and
one per refused status (409, the run untouched). One moto API for the module: every test makes its
own runs."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from straitruns.domain.statuses import RunStatus
from tests.support.app import ApiClient, assert_error, moto_api
from tests.support.statuses import (
    ALL_STATUSES,
    NON_TERMINAL_STATUSES,
    TERMINAL_STATUSES,
    others,
    run_in_status,
)

S = RunStatus


@pytest.fixture(scope="module")
def api() -> Iterator[ApiClient]:
    with moto_api() as client:
        yield client


def _call(api: ApiClient, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return api.http.request(method, path, json=body, headers=api.auth)


def _run(api: ApiClient, run_id: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/runs/{run_id}", headers=api.auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def _last_change(api: ApiClient, run_id: str) -> dict[str, Any]:
    """The data of the run's latest status_change event."""
    changes = [
        event
        for event in api.services.event_log.events_after(run_id, 0, 1000)
        if event.type == "status_change"
    ]
    data: dict[str, Any] = json.loads(changes[-1].data or "{}")
    return data


def _assert_refused(api: ApiClient, response: httpx.Response, run_id: str, status: RunStatus) -> None:
    assert_error(response, 409, "conflict")
    assert _run(api, run_id)["status"] == status.value


# Cancel -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", NON_TERMINAL_STATUSES)
def test_cancel_of_non_terminal_run_cancels_it(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    response = _call(api, "DELETE", f"/v1/runs/{run_id}")

    assert response.status_code == 204, response.text
    assert response.content == b""
    run = _run(api, run_id)
    assert (run["status"], run["error"], run["error_class"]) == ("canceled", "canceled by user", "canceled")
    assert run["finished_at"] is not None
    change = _last_change(api, run_id)
    assert (change["from"], change["to"], change["reason"]) == (status.value, "canceled", "canceled by user")


@pytest.mark.parametrize("status", TERMINAL_STATUSES)
def test_cancel_of_terminal_run_is_409(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    _assert_refused(api, _call(api, "DELETE", f"/v1/runs/{run_id}"), run_id, status)


# Replay -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", TERMINAL_STATUSES)
def test_replay_of_terminal_run_creates_a_new_run(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status, metadata={"customer": "acme"}, priority=7)

    response = _call(api, "POST", f"/v1/runs/{run_id}/replay")

    assert response.status_code == 201, response.text
    replay = response.json()
    assert replay["id"] != run_id
    assert (replay["status"], replay["attempt"], replay["triggered_by"]) == ("queued", 1, "retry")
    assert (replay["replayed_from"], replay["payload"], replay["priority"]) == (run_id, {"n": 1}, 7)
    assert replay["metadata"] == {"customer": "acme"}
    assert _run(api, run_id)["status"] == status.value


@pytest.mark.parametrize("status", NON_TERMINAL_STATUSES)
def test_replay_of_non_terminal_run_is_409(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    _assert_refused(api, _call(api, "POST", f"/v1/runs/{run_id}/replay"), run_id, status)


# Dead-letter replay -------------------------------------------------------------------------


def test_dlq_replay_of_dead_letter_run_queues_it_in_place(api: ApiClient) -> None:
    run_id = run_in_status(api, S.DEAD_LETTER)

    response = _call(api, "POST", f"/v1/runs/{run_id}/dlq-replay")

    assert response.status_code == 200, response.text
    run = response.json()
    assert (run["id"], run["status"], run["attempt"]) == (run_id, "queued", 1)
    assert (run["error"], run["error_class"], run["started_at"], run["finished_at"]) == (
        None,
        None,
        None,
        None,
    )
    assert (run["heartbeat_at"], run["next_retry_at"]) == (None, None)
    assert _last_change(api, run_id)["from"] == "dead_letter"


@pytest.mark.parametrize("status", others(S.DEAD_LETTER))
def test_dlq_replay_of_a_run_not_in_dead_letter_is_409(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    _assert_refused(api, _call(api, "POST", f"/v1/runs/{run_id}/dlq-replay"), run_id, status)


# Reschedule ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.DELAYED, S.QUEUED])
def test_reschedule_of_delayed_or_never_dispatched_queued_run_delays_it(
    api: ApiClient, status: RunStatus
) -> None:
    run_id = run_in_status(api, status)
    later = "2026-11-30T12:00:00.000000Z"

    response = _call(api, "POST", f"/v1/runs/{run_id}/reschedule", {"scheduled_at": later})

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["scheduled_at"]) == ("delayed", later)
    assert _run(api, run_id)["status"] == "delayed"


@pytest.mark.parametrize("status", others(S.DELAYED, S.QUEUED))
def test_reschedule_of_other_statuses_is_409(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    response = _call(api, "POST", f"/v1/runs/{run_id}/reschedule", {"scheduled_at": "2026-11-30T12:00:00Z"})

    _assert_refused(api, response, run_id, status)


# Pause --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.DELAYED, S.QUEUED, S.EXECUTING])
def test_pause_of_delayed_queued_or_executing_run_pauses_it(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    response = _call(api, "POST", f"/v1/runs/{run_id}/pause")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paused"
    assert (_last_change(api, run_id)["from"], _last_change(api, run_id)["to"]) == (status.value, "paused")


def test_pause_of_paused_run_answers_200_and_changes_nothing(api: ApiClient) -> None:
    run_id = run_in_status(api, S.PAUSED)
    events_before = len(api.services.event_log.events_after(run_id, 0, 1000))

    response = _call(api, "POST", f"/v1/runs/{run_id}/pause")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paused"
    assert len(api.services.event_log.events_after(run_id, 0, 1000)) == events_before


@pytest.mark.parametrize("status", others(S.DELAYED, S.QUEUED, S.EXECUTING, S.PAUSED))
def test_pause_of_other_statuses_is_409(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    _assert_refused(api, _call(api, "POST", f"/v1/runs/{run_id}/pause"), run_id, status)


# Resume -------------------------------------------------------------------------------------


def test_resume_of_paused_run_queues_it_with_the_same_attempt(api: ApiClient) -> None:
    run_id = run_in_status(api, S.PAUSED)

    response = _call(api, "POST", f"/v1/runs/{run_id}/resume")

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["attempt"]) == ("queued", 1)
    assert (_last_change(api, run_id)["from"], _last_change(api, run_id)["to"]) == ("paused", "queued")


@pytest.mark.parametrize("status", others(S.PAUSED))
def test_resume_of_a_run_not_paused_is_409(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    _assert_refused(api, _call(api, "POST", f"/v1/runs/{run_id}/resume"), run_id, status)


# Restart ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.QUEUED, S.EXECUTING, S.PAUSED, S.WAITING])
def test_restart_queues_the_run_on_a_new_generation(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)
    before = api.services.runs.get(run_id)
    assert before is not None

    response = _call(api, "POST", f"/v1/runs/{run_id}/restart", {"machine_preset": "large-1x"})

    assert response.status_code == 200, response.text
    run = response.json()
    assert (run["status"], run["attempt"], run["machine_preset"]) == ("queued", 1, "large-1x")
    assert (run["started_at"], run["finished_at"], run["heartbeat_at"]) == (None, None, None)
    after = api.services.runs.get(run_id)
    assert after is not None
    assert after.generation == before.generation + 1
    assert (_last_change(api, run_id)["from"], _last_change(api, run_id)["reason"]) == (
        status.value,
        "restarted",
    )


@pytest.mark.parametrize("status", others(S.QUEUED, S.EXECUTING, S.PAUSED, S.WAITING))
def test_restart_of_other_statuses_is_409(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    _assert_refused(api, _call(api, "POST", f"/v1/runs/{run_id}/restart"), run_id, status)


# Debug mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_debug_mode_can_be_turned_on_in_every_status(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status)

    response = _call(api, "POST", f"/v1/runs/{run_id}/debug", {"debug_mode": True})

    assert response.status_code == 204, response.text
    run = _run(api, run_id)
    assert (run["debug_mode"], run["status"]) == (True, status.value)


# Idempotency-key reset ----------------------------------------------------------------------


@pytest.mark.parametrize("status", others(S.DEQUEUED, S.EXECUTING))
def test_idempotency_key_reset_frees_the_key(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status, idempotency_key=f"key-{status.value}")

    response = _call(api, "DELETE", f"/v1/runs/{run_id}/idempotency-key")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "reset", "run_id": run_id}
    run = _run(api, run_id)
    assert (run["idempotency_key"], run["status"]) == (None, status.value)


@pytest.mark.parametrize("status", [S.DEQUEUED, S.EXECUTING])
def test_idempotency_key_reset_of_dequeued_or_executing_run_is_409(api: ApiClient, status: RunStatus) -> None:
    run_id = run_in_status(api, status, idempotency_key=f"key-{status.value}")

    _assert_refused(api, _call(api, "DELETE", f"/v1/runs/{run_id}/idempotency-key"), run_id, status)
    assert _run(api, run_id)["idempotency_key"] == f"key-{status.value}"
