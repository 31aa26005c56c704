"""The official Python SDK (`strait-python` from PyPI, unmodified; imported as `strait`) drives the
in-run plane of a live server on DynamoDB Local: every `sdk_runs` call on one run, `continue` on a
second, `fail` on a third, with the bodies the SDK's own RunContext sends."""

from collections.abc import Iterator
from typing import Any

import pytest
from strait import Client
from strait._errors import ApiError, NotFoundError, UnauthorizedError

from straitruns.wiring import Services
from tests.support.app import ApiClient
from tests.support.engine import Engine
from tests.support.in_run import run_token

pytestmark = pytest.mark.ddblocal


@pytest.fixture
def start(local_api: ApiClient, local_services: Services, live_url: str) -> Iterator[Any]:
    """Starts a run of the `job` job (executing, as dispatched) and returns (run id, SDK client)."""
    local_api.create_job("job")
    local_api.create_job("child")
    clients: list[Client] = []

    def started(payload: dict[str, Any]) -> tuple[str, Client]:
        triggered = local_api.trigger(local_api.jobs["job"], {"payload": payload}).json()
        run = Engine(local_services).start_attempt(triggered["id"])
        client = Client(base_url=live_url, run_token=run_token(local_services, run))
        clients.append(client)
        return run.id, client

    yield started
    for client in clients:
        client.close()


def _run(local_api: ApiClient, run_id: str) -> dict[str, Any]:
    response = local_api.http.get(f"/v1/runs/{run_id}", headers=local_api.auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def test_every_sdk_runs_call_succeeds_on_one_run(local_api: ApiClient, start: Any) -> None:
    run_id, client = start({"report": 42})
    sdk = client.sdk_runs

    assert sdk.get_payload(run_id) == {"report": 42}
    assert sdk.heartbeat_run(run_id) == {"status": "ok"}
    logged = sdk.log_run(run_id, {"level": "warn", "message": "disk almost full"})
    critical = sdk.log_run(run_id, {"level": "critical", "message": "on fire"})
    progress = sdk.progress_run(run_id, {"percent": 42.5, "message": "halfway"})
    checkpoint = sdk.checkpoint_run(run_id, {"state": {"page": 3}, "source": "sdk"})
    usage = sdk.usage_run(
        run_id,
        {"provider": "acme", "model": "m-1", "prompt_tokens": 10, "completion_tokens": 5, "cost_microusd": 7},
    )
    tool_call = sdk.tool_call_run(
        run_id,
        {"tool_name": "search", "input": {"q": "x"}, "output": {"n": 1}, "duration_ms": 3, "status": "ok"},
    )
    by_key = sdk.output_run(run_id, {"key": "summary", "value": {"words": 3}, "schema": {"type": "object"}})
    by_output_key = sdk.output_run(run_id, {"output_key": "report", "value": {"pages": 2}})
    entry = sdk.set_state(run_id, {"key": "cursor", "value": {"page": 4}})
    got = sdk.get_state(run_id, "cursor")
    listed = sdk.list_state(run_id)
    deleted = sdk.delete_state(run_id, "cursor")
    with pytest.raises(NotFoundError):
        sdk.get_state(run_id, "cursor")
    with pytest.raises(NotFoundError):  # not offered by the service (docs/in-run-plane.md)
        sdk.wait_for_event_run(run_id, {"event_key": "approved"})
    streamed = sdk.stream_run(run_id, {"chunk": "Hello", "stream_id": "answer", "done": True})
    annotated = sdk.annotate_run(run_id, {"annotations": {"stage": "review"}})
    child = sdk.spawn_run(
        run_id,
        {"job_slug": "child", "project_id": local_api.project_id, "payload": {"part": 1}, "priority": 3},
    )
    completed = sdk.complete_run(run_id, None)

    assert (logged["level"], critical["level"], progress["data"]["percent"]) == ("warn", "error", 42.5)
    assert (checkpoint["sequence"], checkpoint["state"]) == (1, {"page": 3})
    assert (usage["total_tokens"], tool_call["tool_name"]) == (15, "search")
    assert (by_key["output_key"], by_output_key["output_key"]) == ("summary", "report")
    assert got == entry
    assert listed == [entry]
    assert deleted == {}
    assert streamed == {"status": "ok"}
    assert annotated["metadata"] == {"stage": "review"}
    assert (child["parent_run_id"], child["triggered_by"]) == (run_id, "spawn")
    assert (completed["status"], completed["result"]) == ("completed", None)
    assert _run(local_api, run_id)["usage_totals"]["total_tokens"] == 15


def test_continue_through_the_sdk_starts_the_next_run(local_api: ApiClient, start: Any) -> None:
    run_id, client = start({"page": 1})

    successor = client.sdk_runs.continue_run(run_id)

    assert (successor["continuation_of"], successor["lineage_depth"], successor["payload"]) == (
        run_id,
        1,
        {"page": 1},
    )
    assert _run(local_api, run_id)["result"] == {"continued_as": successor["id"]}
    with pytest.raises(ApiError) as gone:
        client.sdk_runs.log_run(run_id, {"message": "after the end"})
    assert gone.value.status == 410


def test_fail_through_the_sdk_ends_the_run_failed(local_api: ApiClient, start: Any) -> None:
    run_id, client = start({})

    failed = client.sdk_runs.fail_run(run_id, {"error": "the upstream API refused us"})

    assert (failed["status"], failed["error"]) == ("failed", "the upstream API refused us")
    assert _run(local_api, run_id)["status"] == "failed"


def test_sdk_with_a_token_of_another_run_is_refused(start: Any) -> None:
    first, _ = start({})
    _, other_client = start({})

    with pytest.raises(UnauthorizedError) as refused:
        other_client.sdk_runs.heartbeat_run(first)

    assert refused.value.status == 403
