"""What job code records through the in-run plane (spec 6, 2.3) and the management reads of it
(spec 5 items 13-17, 28): each write is visible at once, exactly as written, in order; limits are
413 (bytes) and 422 (counts, ranges, shapes); unknown body fields are ignored."""

from typing import Any

import pytest

from straitruns.domain.statuses import RunStatus
from tests.support.app import ApiClient
from tests.support.in_run import Sdk, read, start_run

KIB = 1024


@pytest.fixture
def sdk(api: ApiClient) -> Sdk:
    return start_run(api)[1]


def _later(api: ApiClient) -> None:
    """Moves the frozen clock on, so records written next are later (ties are ordered by id)."""
    api.clock.advance(0.001)


def test_logged_events_are_listed_as_written_after_the_engines_events(api: ApiClient, sdk: Sdk) -> None:
    written = []
    for body in (
        {"message": "starting", "data": {"n": 1.50, "big": 123456789012345678901234567890}},
        {"message": "careful", "level": "warning", "type": "audit"},
        {"message": "boom", "level": "critical", "data": None},
    ):
        written.append(sdk.ok("log", body))

    events = read(api, sdk.run_id, "events")

    assert events[-3:] == written
    assert [e["type"] for e in events[:3]] == ["status_change"] * 3  # created, dequeued, executing
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert [(e["level"], e["type"]) for e in written] == [
        ("info", "log"),
        ("warn", "audit"),
        ("error", "log"),
    ]
    assert written[0]["data"] == {"n": 1.50, "big": 123456789012345678901234567890}


def test_events_filter_by_level_and_type(api: ApiClient, sdk: Sdk) -> None:
    info = sdk.ok("log", {"message": "a"})
    warn = sdk.ok("log", {"message": "b", "level": "warn"})
    progress = sdk.ok("progress", {"percent": 40})

    assert read(api, sdk.run_id, "events", level="warn") == [warn]
    assert read(api, sdk.run_id, "events", type="log") == [info, warn]
    assert read(api, sdk.run_id, "events", type="progress", level="info") == [progress]
    assert read(api, sdk.run_id, "events", level="critical") == []


def test_progress_is_an_event_with_percent_step_and_eta(api: ApiClient, sdk: Sdk) -> None:
    event = sdk.ok("progress", {"percent": 12.5, "message": "indexing", "step": "index", "eta_seconds": 30})

    assert (event["type"], event["level"], event["message"]) == ("progress", "info", "indexing")
    assert event["data"] == {"percent": 12.5, "step": "index", "eta_seconds": 30}


def test_checkpoints_are_numbered_and_the_latest_is_readable(api: ApiClient, sdk: Sdk) -> None:
    written = [sdk.ok("checkpoint", {"state": {"page": n}}) for n in range(3)]
    written.append(sdk.ok("checkpoint", {"state": None, "source": "manual"}))

    latest = sdk.get("checkpoints/latest")

    assert [c["sequence"] for c in written] == [1, 2, 3, 4]
    assert read(api, sdk.run_id, "checkpoints") == written
    assert (latest.status_code, latest.json()) == (200, written[-1])
    assert (written[0]["source"], written[-1]["source"], written[-1]["state"]) == ("sdk", "manual", None)


def test_latest_checkpoint_of_a_run_without_one_is_404(sdk: Sdk) -> None:
    assert sdk.get("checkpoints/latest").status_code == 404


def test_usage_is_listed_and_summed_on_the_run(api: ApiClient, sdk: Sdk) -> None:
    first = sdk.ok(
        "usage", {"provider": "acme", "model": "m1", "prompt_tokens": 100, "completion_tokens": 20}
    )
    _later(api)
    second = sdk.ok(
        "usage",
        {"provider": "acme", "model": "m2", "prompt_tokens": 5, "total_tokens": 9, "cost_microusd": 1234},
    )

    run = api.http.get(f"/v1/runs/{sdk.run_id}", headers=api.auth).json()

    assert read(api, sdk.run_id, "usage") == [first, second]
    assert (first["total_tokens"], second["total_tokens"], second["completion_tokens"]) == (120, 9, 0)
    assert run["usage_totals"] == {
        "prompt_tokens": 105,
        "completion_tokens": 20,
        "total_tokens": 129,
        "cost_microusd": 1234,
    }


def test_tool_calls_are_listed_through_either_path(api: ApiClient, sdk: Sdk) -> None:
    first = sdk.ok(
        "tool-call",
        {"tool_name": "search", "input": {"q": "x"}, "output": [1, 2], "duration_ms": 15, "status": "ok"},
    )
    _later(api)
    second = sdk.ok("tool-calls", {"tool_name": "fetch"})

    assert read(api, sdk.run_id, "tool-calls") == [first, second]
    assert (second["input"], second["output"], second["duration_ms"], second["status"]) == (
        None,
        None,
        None,
        None,
    )


def test_outputs_take_key_or_output_key_and_an_upsert_keeps_its_place(api: ApiClient, sdk: Sdk) -> None:
    summary = sdk.ok("output", {"key": "summary", "value": {"v": 1}})
    _later(api)
    report = sdk.ok("output", {"output_key": "report", "value": "text", "schema": {"type": "string"}})
    _later(api)

    replaced = sdk.ok("output", {"output_key": "summary", "value": {"v": 2}, "schema": {"type": "object"}})

    assert (replaced["id"], replaced["created_at"]) == (summary["id"], summary["created_at"])
    assert (replaced["value"], replaced["schema"]) == ({"v": 2}, {"type": "object"})
    assert read(api, sdk.run_id, "outputs") == [replaced, report]


def test_output_not_matching_its_schema_is_422_naming_the_path_and_is_not_stored(
    api: ApiClient, sdk: Sdk
) -> None:
    schema = {"type": "object", "properties": {"rows": {"type": "array", "items": {"type": "integer"}}}}

    response = sdk.post("output", {"key": "table", "value": {"rows": [1, 2, "three"]}, "schema": schema})

    assert response.status_code == 422
    assert "$.rows[2]" in response.json()["error"]
    assert response.json()["details"][0]["path"] == "$.rows[2]"
    assert read(api, sdk.run_id, "outputs") == []


def test_state_is_upserted_listed_by_key_read_and_deleted(api: ApiClient, sdk: Sdk) -> None:
    sdk.ok("state", {"key": "zeta", "value": 1})
    alpha = sdk.ok("state", {"key": "alpha", "value": {"a": [1]}})
    _later(api)
    zeta = sdk.ok("state", {"key": "zeta", "value": 2})

    assert read(api, sdk.run_id, "state") == [alpha, zeta]
    assert sdk.get("state").json() == [alpha, zeta]
    assert sdk.get("state/zeta").json() == zeta

    assert sdk.delete("state/zeta").status_code == 204
    assert sdk.get("state/zeta").status_code == 404
    assert sdk.delete("state/zeta").status_code == 204
    assert read(api, sdk.run_id, "state") == [alpha]


def test_stream_chunks_are_numbered_across_streams(api: ApiClient, sdk: Sdk) -> None:
    answers = [
        sdk.ok("stream", {"chunk": "Hel"}, status=200),
        sdk.ok("stream", {"chunk": "{}", "stream_id": "json"}, status=200),
        sdk.ok("stream", {"chunk": "lo", "done": True}, status=200),
    ]

    chunks = api.services.event_log.chunks_after(sdk.run_id, 0, None, 10)
    default = api.services.event_log.chunks_after(sdk.run_id, 0, "default", 10)

    assert answers == [{"status": "ok"}] * 3
    assert [(c.sequence, c.stream_id, c.chunk, c.done) for c in chunks] == [
        (1, "default", "Hel", False),
        (2, "json", "{}", False),
        (3, "default", "lo", True),
    ]
    assert [c.sequence for c in default] == [1, 3]


def test_annotations_merge_into_metadata_and_filters_follow(api: ApiClient) -> None:
    run, sdk = start_run(api, {"payload": {}, "metadata": {"customer": "acme", "tier": "gold"}})

    annotated = sdk.ok("annotate", {"annotations": {"tier": "silver", "stage": "2"}}, status=200)

    assert annotated["metadata"] == {"customer": "acme", "tier": "silver", "stage": "2"}
    found = api.list_runs(metadata_key="tier", metadata_value="silver").json()
    assert [listed["id"] for listed in found] == [run.id]
    assert api.list_runs(metadata_key="tier", metadata_value="gold").json() == []


def test_annotations_survive_a_status_change_written_from_an_older_copy(api: ApiClient) -> None:
    # Given the dispatcher's copy of the run, read before its endpoint annotated the run
    run, sdk = start_run(api)
    sdk.ok("annotate", {"annotations": {"invoice": "42"}}, status=200)

    # When the dispatcher records the call's outcome from its copy
    api.services.state.change(run, RunStatus.COMPLETED, "completed", finished_at=api.clock.now())

    # Then the annotation is still there
    after = api.http.get(f"/v1/runs/{run.id}", headers=api.auth).json()
    assert (after["status"], after["metadata"]) == ("completed", {"invoice": "42"})


def test_annotations_past_32_metadata_entries_are_422(api: ApiClient) -> None:
    metadata = {f"k{n}": "v" for n in range(30)}
    _, sdk = start_run(api, {"payload": {}, "metadata": metadata})

    refused = sdk.post("annotate", {"annotations": {"a": "1", "b": "2", "c": "3"}})
    replaced = sdk.post("annotate", {"annotations": {"k1": "w", "a": "1", "b": "2"}})

    assert refused.status_code == 422
    assert replaced.status_code == 200
    assert len(replaced.json()["metadata"]) == 32


def test_unknown_body_fields_are_ignored(sdk: Sdk) -> None:
    event = sdk.ok("log", {"message": "m", "trace_id": "abc", "nested": {"x": 1}})

    assert "trace_id" not in event


OVERSIZE: list[tuple[str, Any, str]] = [
    ("log", {"message": "m" * (8 * KIB + 1)}, "message"),
    ("log", {"message": "m", "data": "d" * (64 * KIB)}, "data"),
    ("progress", {"percent": 1, "message": "é" * (4 * KIB + 1)}, "message"),
    ("checkpoint", {"state": "s" * (256 * KIB)}, "state"),
    ("output", {"key": "o", "value": "v" * (256 * KIB)}, "value"),
    ("output", {"key": "o", "value": 1, "schema": {"description": "d" * (64 * KIB)}}, "schema"),
    ("state", {"key": "k", "value": ["v" * (256 * KIB)]}, "value"),
    ("tool-call", {"tool_name": "t", "input": "i" * (128 * KIB)}, "input"),
    ("stream", {"chunk": "c" * (64 * KIB + 1)}, "chunk"),
    ("fail", {"error": "e" * (8 * KIB + 1)}, "error"),
    ("complete", {"result": "r" * (256 * KIB)}, "result"),
    ("spawn", {"job_slug": "job", "payload": "p" * (256 * KIB)}, "payload"),
]


def test_each_field_over_its_size_limit_is_413_naming_it(sdk: Sdk) -> None:
    answered = {}
    for call, body, field in OVERSIZE:
        response = sdk.post(call, body)
        answered[f"{call} {field}"] = (response.status_code, response.json()["details"][0]["field"])

    assert answered == {f"{call} {field}": (413, field) for call, _, field in OVERSIZE}


MISSHAPEN: list[tuple[str, Any]] = [
    ("log", {}),
    ("log", {"message": 5}),
    ("log", {"message": "m", "level": "loud"}),
    ("log", {"message": "m", "type": "status_change"}),
    ("progress", {"percent": 101}),
    ("progress", {"percent": "50"}),
    ("progress", {"percent": True}),
    ("checkpoint", {}),
    ("usage", {"provider": "p"}),
    ("usage", {"provider": "p", "model": "m", "prompt_tokens": -1}),
    ("usage", {"provider": "p", "model": "m", "prompt_tokens": "5"}),
    ("output", {"value": 1}),
    ("output", {"key": "a", "output_key": "b", "value": 1}),
    ("output", {"key": "bad key!", "value": 1}),
    ("state", {"key": "k"}),
    ("stream", {"chunk": "c", "done": 1}),
    ("stream", {"chunk": "c", "stream_id": "s" * 65}),
    ("annotate", {"annotations": {}}),
    ("annotate", {"annotations": {"k": 1}}),
    ("fail", {}),
    ("spawn", {"payload": {}}),
    ("spawn", {"job_slug": "job", "await_completion": "yes"}),
]


def test_each_body_of_the_wrong_shape_is_422(sdk: Sdk) -> None:
    answered = {f"{call} {body}": sdk.post(call, body).status_code for call, body in MISSHAPEN}

    assert answered == {f"{call} {body}": 422 for call, body in MISSHAPEN}


def test_malformed_json_is_400(sdk: Sdk) -> None:
    response = sdk.http.post(
        sdk.url("log"), content=b'{"message": ', headers={**sdk.headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 400


def test_payload_is_the_runs_payload_exactly(api: ApiClient) -> None:
    _, sdk = start_run(api, {"payload": {"n": 123456789012345678901234567890, "f": 0.1}})

    assert sdk.get("payload").text == '{"n":123456789012345678901234567890,"f":0.1}'
