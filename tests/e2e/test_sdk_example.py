"""The example job endpoint (examples/sdk_endpoint.py) on the local stack (`make dev`): it reads its
run token and the API URL from the call's headers, records everything through the in-run plane,
spawns an awaited child, answers 202, is dispatched again with X-Resumed-After once the child has
ended, and completes. Every read endpoint then returns exactly what it wrote, in order, and the
debug bundle holds all of it."""

import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack
from tests.e2e.runner import Banner

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sdk_endpoint.py"
FINISHED_WITHIN_SECS = 30.0
TERMINAL = {
    "completed",
    "failed",
    "timed_out",
    "crashed",
    "system_failed",
    "canceled",
    "expired",
    "dead_letter",
}


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sdk_endpoint_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example() -> Iterator[tuple[Any, str]]:
    """The example endpoint served from a thread of this test; yields (its recorder, base URL)."""
    module = _load_example()
    recorder = module.Recorder()
    server = module.make_server("127.0.0.1", 0, recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(http: httpx.Client, banner: Banner, path: str) -> Any:
    response = http.get(path, headers=banner.auth)
    assert response.status_code == 200, f"{path}: {response.text}"
    return response.json()


def _job(http: httpx.Client, banner: Banner, slug: str, url: str) -> None:
    body = {"slug": slug, "name": slug, "endpoint_url": url}
    response = http.post("/v1/jobs", json=body, headers=banner.auth)
    assert response.status_code == 201, response.text


def test_example_endpoint_runs_end_to_end_and_every_read_returns_what_it_wrote(
    dev_stack: RunningStack, example: tuple[Any, str]
) -> None:
    # Given the example's parent and child jobs
    http, banner = dev_stack.http, dev_stack.banner
    recorder, base_url = example
    _job(http, banner, "sdk-report", f"{base_url}/run")
    _job(http, banner, "sdk-part", f"{base_url}/child")

    # When a parent run is triggered and left to the engine
    triggered = http.post(
        "/v1/jobs/sdk-report/trigger", json={"payload": {"child_job": "sdk-part"}}, headers=banner.auth
    )
    assert triggered.status_code == 201, triggered.text
    run_id = triggered.json()["id"]
    deadline = time.monotonic() + FINISHED_WITHIN_SECS
    while (run := _get(http, banner, f"/v1/runs/{run_id}"))["status"] not in TERMINAL:
        assert time.monotonic() < deadline, f"run still {run['status']}; endpoint errors: {recorder.errors}"
        time.sleep(0.1)

    # Then it completed after its awaited child, as the endpoint asked
    assert recorder.errors == []
    calls = recorder.calls[run_id]
    [spawned] = [call.answer for call in calls if call.name == "spawn"]
    assert (run["status"], run["result"]) == (
        "completed",
        {"children": [spawned["id"]], "cursor": {"page": 2}},
    )
    child = _get(http, banner, f"/v1/runs/{spawned['id']}")
    # The child's answer names its parent (the run that spawned it), not itself.
    assert (child["status"], child["parent_run_id"], child["result"]["child_of"]) == (
        "completed",
        run_id,
        run_id,
    )
    assert [c["id"] for c in _get(http, banner, f"/v1/runs/{run_id}/children")] == [spawned["id"]]

    # And every read endpoint returns exactly what the endpoint wrote, in order
    def written(*names: str) -> list[Any]:
        return [call.answer for call in calls if call.method == "POST" and call.name in names]

    events = _get(http, banner, f"/v1/runs/{run_id}/events")
    assert [e for e in events if e["type"] in ("log", "progress")] == written("log", "progress")
    assert [e["sequence"] for e in events] == sorted({e["sequence"] for e in events})
    reads = {
        "checkpoints": written("checkpoint"),
        "usage": written("usage"),
        "tool-calls": written("tool-call"),
        "outputs": written("output"),
        "state": written("state"),
    }
    for what, expected in reads.items():
        assert _get(http, banner, f"/v1/runs/{run_id}/{what}") == expected, what
    assert run["usage_totals"] == {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "cost_microusd": 450,
    }
    statuses = [(e["data"]["from"], e["data"]["to"]) for e in events if e["type"] == "status_change"]
    assert ("executing", "waiting") in statuses
    assert ("waiting", "queued") in statuses

    # And the debug bundle holds all of it in one response
    bundle = _get(http, banner, f"/v1/runs/{run_id}/debug-bundle")
    assert bundle["run"] == run
    assert bundle["events"] == events
    assert bundle["checkpoints"] == reads["checkpoints"]
    assert bundle["usage"] == reads["usage"]
    assert bundle["tool_calls"] == reads["tool-calls"]
    assert bundle["outputs"] == reads["outputs"]
    assert bundle["truncated"] is False
