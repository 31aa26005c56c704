"""`bulk ...` and `dlq replay` against the bulk operations contract: dry run, confirmation,
start, progress, summary."""

import json

import httpx

from tests.cli.fake_api import FakeApi, body_of, error_response, json_response, sse, stream_response

OPERATION = "bulk_01OP"
BULK = "/v1/bulk-operations"


def _operation(status: str = "queued", **counts: int) -> dict[str, object]:
    return {
        "id": OPERATION,
        "project_id": "proj_1",
        "action": "cancel",
        "filter": {},
        "status": status,
        "total": 3,
        "processed": 0,
        "succeeded": 0,
        "failed": 0,
        "skipped": 0,
        "created_at": "x",
        "started_at": None,
        "finished_at": None,
        "error": None,
        **counts,
    }


def _progress(sequence: int, **counts: int) -> str:
    return f"id: {sequence}\nevent: progress\ndata: {json.dumps(_operation('running', **counts))}"


def _api_with_operation(final: dict[str, object]) -> FakeApi:
    api = FakeApi()

    def create(request: httpx.Request) -> httpx.Response:
        if body_of(request)["dry_run"]:
            return json_response({"matching": 3, "sample": [{"id": "run_a", "status": "queued"}]})
        return json_response(_operation(), status=202)

    api.on("POST", BULK, create)
    api.on(
        "GET",
        f"{BULK}/{OPERATION}/stream",
        stream_response(
            sse(
                _progress(1, processed=1, succeeded=1),
                _progress(2, processed=3, succeeded=2, skipped=1),
                'event: end\ndata: {"type": "end"}',
            )
        ),
    )
    api.on("GET", f"{BULK}/{OPERATION}", json_response(final))
    return api


def test_bulk_cancel_with_yes_counts_starts_follows_and_summarises() -> None:
    api = _api_with_operation(_operation("completed", processed=3, succeeded=2, skipped=1))

    result = api.invoke(
        "bulk", "cancel", "--job", "job_01X", "--status", "queued", "--metadata", "team=a", "--yes"
    )

    assert result.exit_code == 0, result.output
    dry_run, start = api.sent("POST", BULK)
    expected_filter = {"job_id": "job_01X", "status": "queued", "metadata_key": "team", "metadata_value": "a"}
    assert body_of(dry_run) == {"action": "cancel", "filter": expected_filter, "dry_run": True}
    assert body_of(start) == {"action": "cancel", "filter": expected_filter, "dry_run": False}
    assert result.stdout.startswith("3 runs match.")
    assert result.stdout.splitlines()[-2:] == [
        f"Bulk cancel {OPERATION} completed: 2 done, 1 skipped, 0 failed (of 3).",
        f"Per-run results: strait-runs bulk results {OPERATION}",
    ]


def test_dry_run_only_counts() -> None:
    api = _api_with_operation(_operation())

    result = api.invoke("bulk", "replay", "--status", "failed", "--dry-run")

    assert result.exit_code == 0, result.output
    assert [body_of(r)["dry_run"] for r in api.sent("POST", BULK)] == [True]
    assert "3 runs match." in result.stdout
    assert "run_a" in result.stdout


def test_without_yes_and_without_a_terminal_nothing_starts() -> None:
    api = _api_with_operation(_operation())

    result = api.invoke("bulk", "pause", "--job", "job_01X", input="y\n")

    assert result.exit_code == 2
    assert "pass --yes" in result.stderr
    assert [body_of(r)["dry_run"] for r in api.sent("POST", BULK)] == [True]


def test_no_filter_is_refused_unless_all_runs_says_so() -> None:
    api = _api_with_operation(_operation("completed"))

    refused = api.invoke("bulk", "cancel", "--yes")
    accepted = api.invoke("bulk", "cancel", "--all-runs", "--yes")

    assert refused.exit_code == 2
    assert "no filter given" in refused.stderr
    assert accepted.exit_code == 0, accepted.output
    assert body_of(api.sent("POST", BULK)[0])["filter"] == {"all": True}


def test_bulk_only_filters_and_action_fields_are_sent() -> None:
    api = _api_with_operation(_operation("completed"))

    result = api.invoke(
        "bulk",
        "replay",
        "--run-id",
        "run_a",
        "--run-id",
        "run_b",
        "--error-class",
        "timeout",
        "--payload-contains",
        '{"n": 1.50}',
        "--from-latest-checkpoint",
        "--dry-run",
    )
    reschedule = api.invoke(
        "bulk", "reschedule", "--job", "job_01X", "--at", "2026-12-01T09:00:00Z", "--dry-run"
    )

    assert (result.exit_code, reschedule.exit_code) == (0, 0), result.output + reschedule.output
    replay, rescheduled = api.sent("POST", BULK)
    assert replay.content.decode().count('"n":1.50') == 1  # digits kept as given
    assert body_of(replay)["filter"]["run_ids"] == ["run_a", "run_b"]
    assert body_of(replay)["filter"]["error_class"] == "timeout"
    assert body_of(replay)["from_latest_checkpoint"] is True
    assert body_of(rescheduled)["scheduled_at"] == "2026-12-01T09:00:00.000000Z"


def test_reschedule_needs_a_time() -> None:
    result = FakeApi().invoke("bulk", "reschedule", "--job", "job_01X", "--yes")

    assert result.exit_code == 2
    assert "exactly one of --at TIME and --in DURATION" in result.stderr


def test_a_failed_operation_exits_1_with_its_error() -> None:
    api = _api_with_operation(_operation("failed", processed=1, succeeded=1) | {"error": "store unavailable"})

    result = api.invoke("bulk", "cancel", "--job", "job_01X", "--yes")

    assert result.exit_code == 1
    assert f"Error: bulk operation {OPERATION} failed: store unavailable" in result.stderr


def test_without_a_progress_stream_the_operation_is_polled() -> None:
    api = _api_with_operation(_operation("completed", processed=3, succeeded=3))
    api.on("GET", f"{BULK}/{OPERATION}/stream", error_response(404, "not found", "not_found"))
    api.on(
        "GET",
        f"{BULK}/{OPERATION}",
        [
            json_response(_operation("running", processed=1)),
            json_response(_operation("completed", processed=3, succeeded=3)),
        ],
    )

    result = api.invoke("bulk", "cancel", "--job", "job_01X", "--yes")

    assert result.exit_code == 0, result.output
    assert api.sleeps == [1.0]
    assert "completed: 3 done, 0 skipped, 0 failed (of 3)." in result.stdout


def test_dlq_replay_is_the_dlq_replay_action_on_dead_letters() -> None:
    api = _api_with_operation(_operation("completed"))

    result = api.invoke("dlq", "replay", "--job", "job_01X", "--dry-run")

    assert result.exit_code == 0, result.output
    [dry_run] = api.sent("POST", BULK)
    assert body_of(dry_run) == {
        "action": "dlq-replay",
        "filter": {"job_id": "job_01X", "status": "dead_letter"},
        "dry_run": True,
    }


def test_nothing_matching_starts_nothing() -> None:
    api = FakeApi()
    api.on("POST", BULK, json_response({"matching": 0, "sample": []}))

    result = api.invoke("bulk", "resume", "--job", "job_01X", "--yes")

    assert (result.exit_code, result.stdout.strip()) == (0, "0 runs match.")
    assert len(api.sent("POST", BULK)) == 1


def test_results_are_listed_with_their_outcomes() -> None:
    api = FakeApi()
    api.on(
        "GET",
        f"{BULK}/{OPERATION}/results",
        [
            json_response(
                [{"run_id": "run_a", "outcome": "done", "new_run_id": "run_n", "error": None}],
                headers={"X-Next-Cursor": "c"},
            ),
            json_response(
                [{"run_id": "run_b", "outcome": "skipped", "error": "run already in terminal state"}]
            ),
        ],
    )

    result = api.invoke("bulk", "results", OPERATION, "--all")

    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()[1:]
    assert rows[0].split()[:3] == ["run_a", "done", "run_n"]
    assert rows[1].split()[:3] == ["run_b", "skipped", "-"]
