"""The in-run plane and the telemetry reads as deployed: functions/sdk/app.py and
functions/runs_telemetry/app.py invoked with the API Gateway events of events/sdk/ and
events/runs_telemetry/ on moto (test_lambda_entry.py checks every event's status; here, what each
one did)."""

from typing import Any

import pytest

from tests.integration.test_lambda_entry import (
    Deployment,
    body_of,
    deployed_env,  # noqa: F401 - the fixture, used by deployment
    deployment,  # noqa: F401 - the fixture
)


@pytest.fixture
def deployed(request: pytest.FixtureRequest) -> Deployment:
    """test_lambda_entry's deployment, with an executing run and its run token."""
    found: Deployment = request.getfixturevalue("deployment")
    return found


def _run(deployed: Deployment) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {deployed.values['API_KEY']}"}
    response = deployed.http.get(f"/v1/runs/{deployed.values['EXECUTING_RUN_ID']}", headers=auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def test_log_event_appends_an_event_the_events_event_lists(deployed: Deployment) -> None:
    logged = body_of(deployed.invoke("sdk/log.json"))

    listed = body_of(deployed.invoke("runs_telemetry/events.json"))

    assert (logged["type"], logged["message"], logged["data"]) == (
        "log",
        "invoice 42 sent",
        {"invoice_id": 42, "pages": 3},
    )
    assert listed == [logged]


def test_complete_event_completes_the_run_and_its_token_is_then_refused(deployed: Deployment) -> None:
    done = body_of(deployed.invoke("sdk/complete.json"))

    again = deployed.invoke("sdk/log.json")

    assert (done["status"], done["result"]) == ("completed", {"sent": 3})
    assert _run(deployed)["status"] == "completed"
    assert (again["statusCode"], body_of(again)["code"]) == (410, "gone")


def test_checkpoint_and_debug_bundle_events_show_what_the_run_recorded(deployed: Deployment) -> None:
    logged = body_of(deployed.invoke("sdk/log.json"))
    stored = body_of(deployed.invoke("sdk/checkpoint.json"))

    checkpoints = body_of(deployed.invoke("runs_telemetry/checkpoints.json"))
    bundle = body_of(deployed.invoke("runs_telemetry/debug_bundle.json"))

    assert (stored["sequence"], stored["state"]) == (1, {"page": 3, "cursor": "inv_0042"})
    assert checkpoints == [stored]
    assert bundle["run"] == _run(deployed)
    assert bundle["events"][-1] == logged
    assert bundle["checkpoints"] == [stored]
    assert (bundle["usage"], bundle["tool_calls"], bundle["outputs"], bundle["truncated"]) == (
        [],
        [],
        [],
        False,
    )


def test_each_function_serves_its_own_group_and_documents_every_route(deployed: Deployment) -> None:
    everything = deployed.http.get("/openapi.json").json()
    misrouted = {
        (name, group): deployed.invoke(name, group=group)["statusCode"]
        for name, group in (
            ("sdk/log.json", "runs_telemetry"),
            ("sdk/log.json", "runs_query"),
            ("runs_telemetry/events.json", "sdk"),
        )
    }

    documents = [
        body_of(deployed.invoke("runs_query/openapi.json", group=g)) for g in ("sdk", "runs_telemetry")
    ]

    assert set(misrouted.values()) == {404}
    assert [document["paths"] for document in documents] == [everything["paths"]] * 2
    assert {"/sdk/v1/runs/{runID}/log", "/v1/runs/{runID}/debug-bundle"} <= set(everything["paths"])
