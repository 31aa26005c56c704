"""The steering functions as deployed: functions/runs_control/app.py and functions/runs_bulk/app.py
invoked with the API Gateway events of events/runs_control/ and events/runs_bulk/ on moto (the
status of every event is checked by test_lambda_entry.py; here, what each one did)."""

from typing import Any

import pytest

import straitruns.entry
from tests.integration.test_lambda_entry import (
    Deployment,
    body_of,
    deployed_env,  # noqa: F401 - the fixture, used by deployment
    deployment,  # noqa: F401 - the fixture
    headers_of,
)


@pytest.fixture
def deployed(request: pytest.FixtureRequest) -> Deployment:
    """test_lambda_entry's deployment: a project, a key, a job and runs the events name."""
    found: Deployment = request.getfixturevalue("deployment")
    return found


def _run(deployed: Deployment, run_id: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {deployed.values['API_KEY']}"}
    response = deployed.http.get(f"/v1/runs/{run_id}", headers=auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def _queued_run_ids(deployed: Deployment) -> list[str]:
    sqs = straitruns.entry.shared_services().queue.client
    messages = sqs.receive_message(QueueUrl=deployed.run_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [message["Body"] for message in messages.get("Messages", [])]


def test_cancel_run_event_cancels_the_run(deployed: Deployment) -> None:
    response = deployed.invoke("runs_control/cancel_run.json")

    assert response["body"] == ""
    run = _run(deployed, deployed.values["RUN_ID"])
    assert (run["status"], run["error"]) == ("canceled", "canceled by user")


def test_replay_run_event_creates_a_replay_of_the_dead_lettered_run(deployed: Deployment) -> None:
    replay = body_of(deployed.invoke("runs_control/replay_run.json"))

    assert (replay["replayed_from"], replay["triggered_by"], replay["status"]) == (
        deployed.values["DEAD_RUN_ID"],
        "retry",
        "queued",
    )
    assert replay["payload"] == {"order": {"id": 8}}


def test_dlq_replay_event_queues_the_run_in_place_and_sends_it(deployed: Deployment) -> None:
    run = body_of(deployed.invoke("runs_control/dlq_replay.json"))

    assert (run["id"], run["status"], run["attempt"]) == (deployed.values["DEAD_RUN_ID"], "queued", 1)
    assert any(run["id"] in body for body in _queued_run_ids(deployed))


def test_reschedule_event_delays_the_run(deployed: Deployment) -> None:
    run = body_of(deployed.invoke("runs_control/reschedule.json"))

    assert (run["status"], run["scheduled_at"]) == ("delayed", deployed.values["SCHEDULED_AT"])


@pytest.mark.parametrize(
    ("name", "run", "field", "value"),
    [
        ("runs_control/pause.json", "RUN_ID", "status", "paused"),
        ("runs_control/resume.json", "PAUSED_RUN_ID", "status", "queued"),
        ("runs_control/restart.json", "RUN_ID", "machine_preset", "medium-1x"),
        ("runs_control/debug.json", "RUN_ID", "debug_mode", True),
        ("runs_control/reset_idempotency_key.json", "RUN_ID", "idempotency_key", None),
    ],
)
def test_control_event_changes_the_run(
    deployed: Deployment, name: str, run: str, field: str, value: Any
) -> None:
    deployed.invoke(name)

    assert _run(deployed, deployed.values[run])[field] == value


def test_bulk_cancel_event_answers_each_id(deployed: Deployment) -> None:
    result = body_of(deployed.invoke("runs_bulk/bulk_cancel.json"))

    assert result["results"] == [
        {"id": deployed.values["RUN_ID"], "status": "canceled", "error": None},
        {
            "id": deployed.values["DEAD_RUN_ID"],
            "status": "dead_letter",
            "error": "run already in terminal state",
        },
    ]
    assert (result["total"], result["canceled"], result["failed"]) == (2, 1, 1)


def test_bulk_cancel_all_event_cancels_the_projects_queued_runs(deployed: Deployment) -> None:
    result = body_of(deployed.invoke("runs_bulk/bulk_cancel_all.json"))

    assert deployed.values["RUN_ID"] in [item["id"] for item in result["results"]]
    assert (result["failed"], result["has_more"], result["descendants_canceled"]) == (0, False, 0)
    assert _run(deployed, deployed.values["PAUSED_RUN_ID"])["status"] == "paused"


def test_bulk_replay_event_returns_the_new_runs(deployed: Deployment) -> None:
    response = deployed.invoke("runs_bulk/bulk_replay.json")

    assert [run["replayed_from"] for run in body_of(response)] == [deployed.values["DEAD_RUN_ID"]]
    assert "x-strait-skipped" not in headers_of(response)


def test_bulk_dlq_replay_event_replays_the_dead_letter_in_place(deployed: Deployment) -> None:
    result = body_of(deployed.invoke("runs_bulk/bulk_dlq_replay.json"))

    assert ([run["id"] for run in result["replayed"]], result["count"]) == (
        [deployed.values["DEAD_RUN_ID"]],
        1,
    )
    assert _run(deployed, deployed.values["DEAD_RUN_ID"])["status"] == "queued"


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("runs_bulk/bulk_cancel.json", "runs_control"),
        ("runs_control/pause.json", "runs_bulk"),
        ("runs_control/cancel_run.json", "jobs"),
    ],
)
def test_a_function_does_not_serve_another_groups_routes(deployed: Deployment, name: str, group: str) -> None:
    response = deployed.invoke(name, group=group)

    assert response["statusCode"] in (404, 405)
    assert _run(deployed, deployed.values["RUN_ID"])["status"] == "queued"


@pytest.mark.parametrize("group", ["runs_control", "runs_bulk"])
def test_steering_functions_document_every_route(deployed: Deployment, group: str) -> None:
    everything = deployed.http.get("/openapi.json").json()

    document = body_of(deployed.invoke("runs_query/openapi.json", group=group))

    assert document["paths"] == everything["paths"]
