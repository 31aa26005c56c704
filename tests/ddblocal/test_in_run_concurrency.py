"""The in-run plane under concurrent callers, on DynamoDB Local behind a real HTTP server: SDK events
take their sequence with an atomic add (ARCHITECTURE.md), so a burst of log calls on one run gets
distinct numbers and the events list shows each event once, in order (spec 2.3)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from straitruns.adapters.store.runs import event_item
from straitruns.domain import limits
from straitruns.domain.models import Event, EventLevel
from straitruns.wiring import Services
from tests.support.app import ApiClient
from tests.support.engine import Engine
from tests.support.in_run import Sdk, run_token

pytestmark = pytest.mark.ddblocal

CALLERS = 100


def _executing_sdk(local_api: ApiClient, local_services: Services, http: httpx.Client) -> Sdk:
    triggered = local_api.run({"payload": {"burst": True}})
    run = Engine(local_services).start_attempt(triggered["id"])
    return Sdk(http, run.id, run_token(local_services, run))


def test_concurrent_log_calls_get_distinct_sequences_listed_once_in_order(
    local_api: ApiClient, local_services: Services, live_url: str
) -> None:
    # Given an executing run and 100 callers released at once
    with httpx.Client(base_url=live_url, timeout=30) as http:
        sdk = _executing_sdk(local_api, local_services, http)
        start = threading.Barrier(CALLERS)

        def log(n: int) -> dict[str, Any]:
            start.wait(timeout=30)
            response = sdk.post("log", {"message": f"line {n}", "data": {"n": n}})
            assert response.status_code == 201, response.text
            event: dict[str, Any] = response.json()
            return event

        # When each logs one line
        with ThreadPoolExecutor(CALLERS) as pool:
            written = list(pool.map(log, range(CALLERS)))

        listed = http.get(f"/v1/runs/{sdk.run_id}/events", headers=local_api.auth)

    # Then every event has its own number, and the list shows each once in increasing order
    sequences = [event["sequence"] for event in written]
    assert len(set(sequences)) == CALLERS
    assert listed.status_code == 200
    events = listed.json()
    listed_sequences = [event["sequence"] for event in events]
    assert listed_sequences == sorted(set(listed_sequences)), "not strictly increasing"
    logs = [event for event in events if event["type"] == "log"]
    assert sorted(logs, key=lambda event: event["data"]["n"]) == sorted(written, key=lambda e: e["data"]["n"])
    assert listed_sequences == list(range(1, CALLERS + 4))  # the 3 status changes, then the burst


def test_concurrent_writes_of_one_output_key_leave_one_output(
    local_api: ApiClient, local_services: Services, live_url: str
) -> None:
    with httpx.Client(base_url=live_url, timeout=30) as http:
        sdk = _executing_sdk(local_api, local_services, http)
        start = threading.Barrier(10)

        def save(n: int) -> dict[str, Any]:
            start.wait(timeout=30)
            response = sdk.post("output", {"key": "answer", "value": n})
            assert response.status_code == 201, response.text
            output: dict[str, Any] = response.json()
            return output

        with ThreadPoolExecutor(10) as pool:
            saved = list(pool.map(save, range(10)))
        [listed] = http.get(f"/v1/runs/{sdk.run_id}/outputs", headers=local_api.auth).json()

    assert {output["id"] for output in saved} == {listed["id"]}
    assert listed["value"] in range(10)


def test_debug_bundle_lists_at_most_10000_events_and_says_it_was_truncated(
    local_api: ApiClient, local_services: Services
) -> None:
    # Given a run with 10,002 events (seeded in bulk) and a tool call recorded after them
    sdk = _executing_sdk(local_api, local_services, local_api.http)  # type: ignore[arg-type]
    sdk.ok("tool-call", {"tool_name": "after the events"})
    now = local_services.clock.now()
    local_services.table.batch_write(
        [
            event_item(
                Event(
                    id=f"evt_{n}",
                    run_id=sdk.run_id,
                    sequence=n,
                    type="log",
                    level=EventLevel.INFO,
                    created_at=now,
                )
            )
            for n in range(4, 10_003)
        ]
    )

    bundle = local_api.http.get(f"/v1/runs/{sdk.run_id}/debug-bundle", headers=local_api.auth).json()

    assert len(bundle["events"]) == limits.DEBUG_BUNDLE_LIST_ITEMS
    assert [event["sequence"] for event in bundle["events"][:4]] == [1, 2, 3, 4]
    assert bundle["truncated"] is True
    assert [call["tool_name"] for call in bundle["tool_calls"]] == ["after the events"]
