"""The execution engine under `make dev`: the runner polls the local run queue and invokes the real
dispatcher handler, and ticks the real scheduler handler, so a triggered run reaches its endpoint
(a stdlib HTTP server of the test on loopback) and ends as it would on AWS."""

import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack
from tests.e2e.runner import Banner
from tests.support.endpoint import JobEndpoint, json_reply, slow_reply, status_reply

pytestmark = pytest.mark.e2e

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
# A run to a fast endpoint is picked up within one long poll and settled in well under a second.
COMPLETION_WITHIN_SECS = 5.0
SLOW_ENDPOINT_SECS = 2.0
API_ANSWERS_WITHIN_SECS = 0.5


def _job(http: httpx.Client, banner: Banner, slug: str, endpoint: JobEndpoint, **fields: Any) -> str:
    body = {"slug": slug, "name": slug, "endpoint_url": endpoint.url, **fields}
    response = http.post("/v1/jobs", json=body, headers=banner.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _trigger(http: httpx.Client, banner: Banner, job_id: str, payload: object) -> dict[str, Any]:
    response = http.post(f"/v1/jobs/{job_id}/trigger", json={"payload": payload}, headers=banner.auth)
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def _get(http: httpx.Client, banner: Banner, run_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/runs/{run_id}", headers=banner.auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def _wait_for_end(stack: RunningStack, run_id: str, within_secs: float) -> dict[str, Any]:
    """The run once terminal; fails naming the status it is stuck in after `within_secs`."""
    deadline = time.monotonic() + within_secs
    while (run := _get(stack.http, stack.banner, run_id))["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is still {run['status']} after {within_secs} s: {run}")
        time.sleep(0.05)
    return run


def test_triggered_run_completes_with_the_endpoints_json_as_result(
    dev_stack: RunningStack, endpoint: JobEndpoint
) -> None:
    http, banner = dev_stack.http, dev_stack.banner
    endpoint.answer_always(json_reply({"report": "sent", "pages": 3}))
    job_id = _job(http, banner, "engine-completes", endpoint)

    triggered = _trigger(http, banner, job_id, {"report": 42})
    run = _wait_for_end(dev_stack, triggered["id"], COMPLETION_WITHIN_SECS)

    assert (run["status"], run["result"], run["attempt"]) == ("completed", {"report": "sent", "pages": 3}, 1)
    [call] = endpoint.requests
    assert (call.header("X-Run-ID"), call.header("X-Attempt"), call.json()) == (
        triggered["id"],
        "1",
        {"report": 42},
    )
    assert call.header("X-Strait-Api-Url") == banner.api_url


def test_run_of_an_endpoint_answering_500_ends_dead_letter_after_its_two_attempts(
    dev_stack: RunningStack, endpoint: JobEndpoint
) -> None:
    http, banner = dev_stack.http, dev_stack.banner
    endpoint.answer_always(status_reply(500))
    job_id = _job(http, banner, "engine-dead-letters", endpoint, max_attempts=2, retry_initial_delay_secs=0)

    triggered = _trigger(http, banner, job_id, {"n": 1})
    run = _wait_for_end(dev_stack, triggered["id"], 2 * COMPLETION_WITHIN_SECS)

    assert (run["status"], run["attempt"], run["error_class"]) == ("dead_letter", 2, "server")
    assert [call.header("X-Attempt") for call in endpoint.requests] == ["1", "2"]
    dead_letters = http.get("/v1/runs/dlq", params={"project_id": banner.project_id}, headers=banner.auth)
    assert triggered["id"] in [listed["id"] for listed in dead_letters.json()]


def test_api_answers_at_once_while_a_dispatch_waits_on_a_slow_endpoint(
    dev_stack: RunningStack, endpoint: JobEndpoint
) -> None:
    http, banner = dev_stack.http, dev_stack.banner
    endpoint.answer_always(slow_reply(SLOW_ENDPOINT_SECS, json_reply({"slow": True})))
    job_id = _job(http, banner, "engine-slow-endpoint", endpoint)
    triggered = _trigger(http, banner, job_id, {"n": 1})
    assert endpoint.wait_for_requests(1, timeout=COMPLETION_WITHIN_SECS), "the endpoint was never called"

    started = time.perf_counter()
    during = _get(http, banner, triggered["id"])
    elapsed = time.perf_counter() - started

    assert during["status"] == "executing"
    assert elapsed < API_ANSWERS_WITHIN_SECS, f"GET /v1/runs/{{id}} took {elapsed:.3f} s during a dispatch"
    assert _wait_for_end(dev_stack, triggered["id"], COMPLETION_WITHIN_SECS)["status"] == "completed"
