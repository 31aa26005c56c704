"""`runs watch` (a live table until Ctrl-C) and `jobs list` / `jobs trigger [--wait]`."""

import json

import httpx
import pytest

from strait_runs_cli.commands.watch import RunsView
from strait_runs_cli.errors import NetworkError
from tests.cli.fake_api import PROJECT, FakeApi, body_of, end_frame, json_response, sse, stream_response


def test_the_live_view_marks_the_runs_that_changed_since_the_last_refresh() -> None:
    pages = [
        [{"id": "run_a", "status": "queued"}, {"id": "run_b", "status": "queued"}],
        [{"id": "run_a", "status": "executing"}, {"id": "run_b", "status": "queued"}],
    ]
    view = RunsView(lambda: pages.pop(0), lambda: {})

    view.refresh()
    first = set(view.changed)
    view.refresh()

    assert (first, view.changed) == (set(), {"run_a"})


def test_watch_refreshes_until_ctrl_c_and_exits_0() -> None:
    api = FakeApi()
    api.on(
        "GET",
        "/v1/runs",
        [
            json_response([{"id": "run_a", "status": "queued"}]),
            json_response([{"id": "run_a", "status": "completed"}]),
        ],
    )
    ticks: list[float] = []

    def sleep(seconds: float) -> None:
        ticks.append(seconds)
        if len(ticks) == 3:
            raise KeyboardInterrupt

    result = api.invoke("--project", PROJECT, "runs", "watch", "--interval", "0.5", sleep=sleep)

    assert result.exit_code == 0, result.output
    assert len(api.sent("GET", "/v1/runs")) == 3
    assert ticks == [0.5, 0.5, 0.5]
    assert "completed" in result.stdout


def test_a_watch_that_loses_the_api_keeps_the_last_page_and_says_why() -> None:
    answers: list[list[object] | Exception] = [[{"id": "run_a"}], httpx.ConnectError("refused")]

    def read() -> list[object]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise NetworkError.from_exception("http://api.test", answer)
        return answer

    view = RunsView(read, lambda: {})
    view.refresh(strict=True)
    view.refresh()

    assert view.runs == [{"id": "run_a"}]
    assert view.problem == "cannot reach the API at http://api.test: refused"


def test_trigger_sends_the_options_as_the_trigger_body() -> None:
    api = FakeApi()
    api.on("POST", "/v1/jobs/send-report/trigger", json_response({"id": "run_1", "status": "queued"}, 201))

    result = api.invoke(
        "jobs",
        "trigger",
        "send-report",
        "--payload",
        '{"report": 42}',
        "--metadata",
        "customer=acme",
        "--tag",
        "tier=gold",
        "--priority",
        "5",
        "--idempotency-key",
        "k-1",
    )

    assert result.exit_code == 0, result.output
    assert body_of(api.sent("POST", "/v1/jobs/send-report/trigger")[0]) == {
        "payload": {"report": 42},
        "metadata": {"customer": "acme"},
        "tags": {"tier": "gold"},
        "priority": 5,
        "idempotency_key": "k-1",
    }
    assert result.stdout.strip() == "run_1 triggered: queued"


@pytest.mark.parametrize(("status", "code"), [("completed", 0), ("failed", 3)])
def test_trigger_wait_exits_by_how_the_run_ended(status: str, code: int) -> None:
    api = FakeApi()
    api.on("POST", "/v1/jobs/send-report/trigger", json_response({"id": "run_1", "status": "queued"}, 201))
    api.on("GET", "/v1/runs/run_1/stream", stream_response(sse(end_frame(status))))
    api.on("GET", "/v1/runs/run_1", json_response({"id": "run_1", "status": status, "error": None}))

    result = api.invoke("jobs", "trigger", "send-report", "--wait")

    assert result.exit_code == code, result.output
    assert result.stdout.splitlines() == ["run_1 triggered: queued", f"run_1 ended: {status}"]


def test_an_idempotent_repeat_says_the_run_already_exists() -> None:
    api = FakeApi()
    api.on("POST", "/v1/jobs/j/trigger", json_response({"id": "run_1", "status": "executing"}, 200))

    result = api.invoke("jobs", "trigger", "j", "--idempotency-key", "k")

    assert result.stdout.strip() == "run_1 already exists (idempotency key held): executing"


def test_a_payload_that_is_not_json_is_a_usage_error() -> None:
    result = FakeApi().invoke("jobs", "trigger", "j", "--payload", "{report: 42}")

    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr


def test_jobs_list_reads_every_page() -> None:
    api = FakeApi()
    api.on(
        "GET",
        "/v1/jobs",
        [
            json_response([{"id": "job_1", "slug": "a"}], headers={"X-Next-Cursor": "c"}),
            json_response([{"id": "job_2", "slug": "b"}]),
        ],
    )

    result = api.invoke("jobs", "list", "--json")

    assert result.exit_code == 0, result.output
    assert [job["slug"] for job in json.loads(result.stdout)] == ["a", "b"]
