"""`runs tail`: the SSE stream as lines, resumed with Last-Event-ID, ending with the run's exit code."""

import httpx
import pytest

from strait_runs_cli.commands.tail import frame_line
from strait_runs_cli.sse import MAX_CONSECUTIVE_FAILURES, parse_frames
from tests.cli.fake_api import (
    FakeApi,
    end_frame,
    error_response,
    json_response,
    log_frame,
    sse,
    status_frame,
    stream_response,
)

STREAM = "/v1/runs/run_1/stream"


def test_the_parser_joins_data_lines_skips_comments_and_keeps_ids() -> None:
    lines = [
        ": keepalive",
        "",
        "id: 3",
        "event: event",
        "data: one",
        "data: two",
        "",
        "retry: 1000",
        "",
        "event: end",
        "data: {}",
        "",
    ]

    frames = list(parse_frames(lines))

    assert [(f.event, f.data, f.id) for f in frames] == [("event", "one\ntwo", "3"), ("end", "{}", None)]


@pytest.mark.parametrize(
    ("status", "code"), [("completed", 0), ("failed", 3), ("dead_letter", 3), ("canceled", 3)]
)
def test_tail_prints_the_run_and_exits_by_how_it_ended(status: str, code: int) -> None:
    api = FakeApi()
    body = sse(
        status_frame(1, None, "queued"),
        status_frame(2, "queued", "executing"),
        log_frame(3, "charging the card"),
        status_frame(4, "executing", status),
        end_frame(status),
    )
    api.on("GET", STREAM, stream_response(body))

    result = api.invoke("runs", "tail", "run_1")

    assert result.exit_code == code, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "14:15:22.123  status    created → queued  attempt 1"
    assert lines[1] == "14:15:22.123  status    queued → executing  attempt 1"
    assert lines[2].startswith("14:15:23.000  info      log")
    assert lines[2].endswith("charging the card")
    assert lines[-1] == f"run_1 ended: {status}"
    assert api.sent("GET", STREAM)[0].headers["accept"] == "text/event-stream"


def test_a_dropped_connection_resumes_after_the_last_event_received() -> None:
    api = FakeApi()
    api.on(
        "GET",
        STREAM,
        [
            stream_response(
                sse(status_frame(1, None, "queued"), log_frame(2, "before the drop")), dropped=True
            ),
            stream_response(
                sse(
                    log_frame(3, "after the drop"),
                    status_frame(4, "queued", "completed"),
                    end_frame("completed"),
                )
            ),
        ],
    )

    result = api.invoke("runs", "tail", "run_1")

    assert result.exit_code == 0, result.output
    first, second = api.sent("GET", STREAM)
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "2"
    assert [line.split("  ")[-1] for line in result.stdout.splitlines() if " log " in line] == [
        "before the drop",
        "after the drop",
    ]
    assert "Stream interrupted (ReadError: connection reset by peer); resuming after event 2" in result.stderr


def test_the_server_closing_at_its_connection_bound_is_resumed_after_its_retry_delay() -> None:
    api = FakeApi()
    api.on(
        "GET",
        STREAM,
        [
            stream_response(sse(log_frame(1, "first"), "retry: 250")),
            stream_response(sse(log_frame(2, "second"), end_frame("completed"))),
        ],
    )

    result = api.invoke("runs", "tail", "run_1")

    assert result.exit_code == 0, result.output
    assert api.sleeps == [0.25]
    assert api.sent("GET", STREAM)[1].headers["last-event-id"] == "1"


def test_a_204_on_reconnect_means_the_run_ended_so_its_status_decides_the_exit_code() -> None:
    api = FakeApi()
    api.on(
        "GET",
        STREAM,
        [
            stream_response(sse(status_frame(1, "executing", "timed_out")), dropped=True),
            httpx.Response(204),
        ],
    )
    api.on("GET", "/v1/runs/run_1", json_response({"id": "run_1", "status": "timed_out"}))

    result = api.invoke("runs", "tail", "run_1")

    assert result.exit_code == 3, result.output
    assert result.stdout.splitlines()[-1] == "run_1 ended: timed_out"


def test_a_stream_that_cannot_be_reopened_gives_up_with_exit_1() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    api = FakeApi()
    api.on("GET", STREAM, refuse)

    result = api.invoke("runs", "tail", "run_1")

    assert result.exit_code == 1
    assert len(api.sent("GET", STREAM)) == MAX_CONSECUTIVE_FAILURES
    assert api.sleeps == sorted(api.sleeps)  # backs off...
    assert max(api.sleeps) <= 5.0  # ...up to a bound
    assert result.stderr.splitlines()[-1].startswith(
        "Error: lost the stream at http://api.test/v1/runs/run_1/stream"
    )


def test_too_many_streams_waits_for_retry_after_then_resumes() -> None:
    api = FakeApi()
    busy = httpx.Response(503, json={"error": "too many open streams"}, headers={"Retry-After": "2"})
    api.on("GET", STREAM, [busy, stream_response(sse(end_frame("completed")))])

    result = api.invoke("runs", "tail", "run_1")

    assert (result.exit_code, api.sleeps) == (0, [2.0])


def test_a_run_of_another_project_is_an_api_error_not_a_retry() -> None:
    api = FakeApi()
    api.on("GET", STREAM, error_response(404, "run not found", "not_found"))

    result = api.invoke("runs", "tail", "run_1")

    assert result.exit_code == 1
    assert len(api.sent("GET", STREAM)) == 1
    assert "run not found (HTTP 404 not_found" in result.stderr


def test_chunks_print_as_text_per_stream() -> None:
    api = FakeApi()
    chunk = '{{"type":"stream_chunk","stream_id":"answer","chunk":"{0}","done":{1},"sequence":{2}}}'
    body = sse(
        f"id: 1\nevent: chunk\ndata: {chunk.format('Hel', 'false', 1)}",
        f"id: 2\nevent: chunk\ndata: {chunk.format('lo', 'true', 2)}",
        end_frame("completed"),
    )
    api.on("GET", STREAM + "/chunks", stream_response(body))

    result = api.invoke("runs", "tail", "run_1", "--chunks", "--stream-id", "answer")

    assert result.exit_code == 0, result.output
    assert result.stdout == "[answer] Hello\n"
    assert api.sent("GET", STREAM + "/chunks")[0].url.params["stream_id"] == "answer"
    assert "run_1 ended: completed" in result.stderr


def test_jsonl_prints_each_frames_data() -> None:
    api = FakeApi()
    api.on("GET", STREAM, stream_response(sse(log_frame(1, "hi"), end_frame("failed"))))

    result = api.invoke("runs", "tail", "run_1", "--jsonl")

    assert result.exit_code == 3
    assert result.stdout.splitlines()[-1] == '{"type":"end","status":"failed"}'


def test_status_changes_are_coloured_by_where_the_run_went() -> None:
    line = frame_line({"type": "status_change", "from": "executing", "to": "failed", "attempt": 2})

    styles = {line.plain[span.start : span.end]: str(span.style) for span in line.spans}
    assert styles["failed"] == "bold red"
    assert styles["executing"] == "bold blue"
