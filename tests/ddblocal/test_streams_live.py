"""Live streams over real HTTP (uvicorn) on DynamoDB Local, with writers in other threads (spec 7,
2.3): a client connected while a run executes sees every status change and SDK event in order, then
`end`; reconnecting with Last-Event-ID after a drop anywhere delivers every later event exactly once;
keepalives, the connection bound and its `retry:`, gaps left by slow or failed writers, chunks, and
the per-project cap of open streams. Timings are set short through Settings."""

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from straitruns.adapters.clock import SystemClock
from straitruns.api.app import create_app
from straitruns.domain.statuses import RunStatus
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client, make_services
from tests.support.backends import dynamodb_local_client
from tests.support.endpoint import JobEndpoint, Reply, Request, json_reply
from tests.support.engine import Engine
from tests.support.live import serve
from tests.support.streams import (
    Frame,
    SseReader,
    finish,
    in_background,
    sdk_chunk,
    sdk_event,
    stream_url,
    take_number,
    wait_until,
    write_taken_event,
)

pytestmark = pytest.mark.ddblocal

FAST = {
    "sse_poll_min_secs": 0.02,
    "sse_poll_max_secs": 0.1,
    "sse_keepalive_secs": 0.3,
    "sse_gap_wait_secs": 0.5,
    "sse_status_check_secs": 0.1,
}
READ_TIMEOUT = 10.0
SDK_FRAMES = ("event", "progress")


@dataclass
class Stack:
    services: Services
    api: ApiClient
    http: httpx.Client
    url: str

    def stream(self, run_id: str, chunks: bool = False, **request: Any) -> Any:
        """A streamed GET of the run's stream (a context manager yielding the response)."""
        request.setdefault("headers", {})
        request["headers"] = {**self.api.auth, **request["headers"]}
        return self.http.stream("GET", stream_url(run_id, chunks), **request)

    def queued_run(self) -> str:
        return str(self.api.run()["id"])


@pytest.fixture
def make_stack(dynamodb_local: str, sqs_server: str) -> Iterator[Callable[..., Stack]]:
    """Builds the app on a fresh DynamoDB Local table behind a live uvicorn server, with FAST
    stream timings and `overrides`; everything is torn down after the test."""
    with ExitStack() as cleanup:

        def make(**overrides: Any) -> Stack:
            dynamodb = dynamodb_local_client(dynamodb_local)
            sqs: Any = boto3.client(
                "sqs",
                endpoint_url=sqs_server,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            table_name = f"runs-{uuid.uuid4().hex[:12]}"
            services = make_services(
                dynamodb, sqs, SystemClock(), table_name=table_name, **(FAST | overrides)
            )
            cleanup.callback(dynamodb.delete_table, TableName=table_name)
            url = cleanup.enter_context(serve(create_app(lambda: services)))
            http = cleanup.enter_context(httpx.Client(base_url=url, timeout=READ_TIMEOUT))
            return Stack(services, api_client(services, SystemClock()), http, url)  # type: ignore[arg-type]

        yield make


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack()


def sent(frames: list[Frame]) -> list[Frame]:
    """The frames that carry something (keepalive comments left out)."""
    return [frame for frame in frames if frame.comment is None]


def read_until_end(stack: Stack, run_id: str, chunks: bool = False, **request: Any) -> list[Frame]:
    with stack.stream(run_id, chunks, **request) as response:
        assert response.status_code == 200
        return list(SseReader(response))


# --- a run executing ----------------------------------------------------------------------------


def test_client_connected_during_execution_gets_every_status_change_and_sdk_event_then_end(
    stack: Stack, endpoint: JobEndpoint
) -> None:
    def job(request: Request) -> Reply:
        run_id = str(request.header("X-Run-ID"))
        for step in range(3):
            sdk_event(stack.services, run_id, f"step {step}", step=step)
            time.sleep(0.05)
        sdk_event(stack.services, run_id, "half way", event_type="progress", percent=50)
        return json_reply({"ok": True})

    endpoint.respond(job)
    stack.api.create_job("streamed", endpoint_url=endpoint.url)
    run_id = str(stack.api.run(job="streamed")["id"])
    frames: list[Frame] = []
    connected = threading.Event()

    def client() -> None:
        with stack.stream(run_id) as response:
            for frame in SseReader(response):
                frames.append(frame)
                connected.set()

    reader = in_background(client)
    assert connected.wait(READ_TIMEOUT)
    Engine(stack.services).drain()
    reader.join(READ_TIMEOUT)

    assert not reader.is_alive(), "the server closes the stream after `end`"
    events = sent(frames)
    assert [frame.sequence for frame in events[:-1]] == list(range(1, len(events)))
    changes = [
        (frame.json()["from"], frame.json()["to"]) for frame in events if frame.event == "status_change"
    ]
    assert changes == [
        (None, "queued"),
        ("queued", "dequeued"),
        ("dequeued", "executing"),
        ("executing", "completed"),
    ]
    positions = {
        frame.json().get("to"): n for n, frame in enumerate(events) if frame.event == "status_change"
    }
    sdk = [
        (n, frame.event, frame.json()["message"])
        for n, frame in enumerate(events)
        if frame.event in SDK_FRAMES
    ]
    sdk = [(n, name, message) for n, name, message in sdk if message.startswith(("step", "half"))]
    assert [(name, message) for _, name, message in sdk] == [
        ("event", "step 0"),
        ("event", "step 1"),
        ("event", "step 2"),
        ("progress", "half way"),
    ]
    assert all(positions["executing"] < n < positions["completed"] for n, _, _ in sdk)
    assert events[-1] == Frame(event="end", data='{"type":"end","status":"completed"}')


def test_sdk_events_and_chunks_posted_through_the_in_run_plane_reach_open_streams(
    stack: Stack, endpoint: JobEndpoint
) -> None:
    def job(request: Request) -> Reply:
        sdk = f"{stack.url}/sdk/v1/runs/{request.header('X-Run-ID')}"
        auth = {"Authorization": f"Bearer {request.header('X-Run-Token')}"}
        with httpx.Client(base_url=sdk, headers=auth, timeout=READ_TIMEOUT) as http:
            calls = [
                ("/log", {"message": "loading", "data": {"rows": 3}}),
                ("/stream", {"chunk": "Hel", "stream_id": "answer"}),
                ("/progress", {"percent": 50, "step": "half"}),
                ("/stream", {"chunk": "lo", "stream_id": "answer", "done": True}),
                ("/log", {"message": "done", "level": "warn"}),
            ]
            for path, body in calls:
                answer = http.post(path, json=body)
                assert answer.status_code in (200, 201), answer.text
        return json_reply({"ok": True})

    endpoint.respond(job)
    stack.api.create_job("in-run", endpoint_url=endpoint.url)
    run_id = str(stack.api.run(job="in-run")["id"])
    events: list[Frame] = []
    chunks: list[Frame] = []

    def read(into: list[Frame], **request: Any) -> None:
        into.extend(sent(read_until_end(stack, run_id, **request)))

    readers = [in_background(read, events), in_background(read, chunks, chunks=True)]
    wait_until(lambda: stack.services.streams.limiter.open_streams(stack.api.project_id) == 2)
    Engine(stack.services).drain()
    for reader in readers:
        reader.join(READ_TIMEOUT)

    posted = [(frame.event, frame.json()["message"]) for frame in events if frame.event in SDK_FRAMES]
    assert [entry for entry in posted if entry[1] in ("loading", "done", None)] == [
        ("event", "loading"),
        ("progress", None),
        ("event", "done"),
    ]
    assert [frame.json()["chunk"] for frame in chunks[:-1]] == ["Hel", "lo"]
    assert [frame.json()["done"] for frame in chunks[:-1]] == [False, True]
    assert events[-1] == chunks[-1] == Frame(event="end", data='{"type":"end","status":"completed"}')


# --- reconnects ---------------------------------------------------------------------------------

WRITERS = 3
EVENTS_PER_WRITER = 8


def write_concurrently_then_finish(stack: Stack, run_id: str) -> threading.Thread:
    """WRITERS threads append SDK events at once; the run is canceled once they are done."""

    def writer(number: int) -> None:
        for n in range(EVENTS_PER_WRITER):
            sdk_event(stack.services, run_id, f"writer {number} event {n}")
            time.sleep(0.002 * ((n + number) % 3))

    def all_writers() -> None:
        threads = [in_background(writer, number) for number in range(WRITERS)]
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a writer did not finish"
        finish(stack.services, run_id, RunStatus.CANCELED)

    return in_background(all_writers)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    drops=st.lists(
        st.integers(min_value=0, max_value=2 + WRITERS * EVENTS_PER_WRITER), min_size=1, max_size=4
    ),
    by_header=st.booleans(),
)
def test_reconnecting_after_a_drop_anywhere_delivers_every_later_event_exactly_once(
    stack: Stack, drops: list[int], by_header: bool
) -> None:
    run_id = stack.queued_run()
    writers = write_concurrently_then_finish(stack, run_id)
    received: list[int] = []
    ended: Frame | None = None
    last: str | None = None
    for drop_after in [*drops, None]:  # events read on each connection; the last reads to the end
        resume: dict[str, Any] = {}
        if last is not None:
            resume = (
                {"headers": {"Last-Event-ID": last}} if by_header else {"params": {"last_event_id": last}}
            )
        with stack.stream(run_id, **resume) as response:
            if response.status_code == 204:
                break
            assert response.status_code == 200
            taken = 0
            for frame in SseReader(response):
                if drop_after is not None and taken >= drop_after:
                    break  # the client goes away here (0: before any event)
                if frame.event == "end":
                    ended = frame
                    break
                if frame.id is not None:
                    received.append(frame.sequence)
                    last = frame.id
                    taken += 1
        if ended is not None:
            break
    writers.join(READ_TIMEOUT)

    final = stack.services.streams.reads.counters(run_id).event_sequence
    assert received == list(range(1, final + 1)), "every event exactly once, in order"
    assert final == 2 + WRITERS * EVENTS_PER_WRITER
    assert ended is None or ended.json() == {"type": "end", "status": "canceled"}


# --- keepalives and the connection bound ----------------------------------------------------------


def test_idle_stream_sends_its_first_bytes_at_once_then_keepalives(stack: Stack) -> None:
    run_id = stack.queued_run()
    opened = time.monotonic()
    comments: list[float] = []

    with stack.stream(run_id) as response:
        for frame in SseReader(response):
            if frame.comment is not None:
                comments.append(time.monotonic() - opened)
            if time.monotonic() - opened > 1.4:
                break

    assert comments[0] < 0.5, "the first bytes go out at once"
    gaps = [later - earlier for earlier, later in itertools.pairwise(comments)]
    assert len(comments) >= 4
    assert max(gaps) < FAST["sse_keepalive_secs"] + 0.25


def test_connection_bound_ends_with_retry_and_the_resumed_client_loses_nothing(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(sse_max_connection_secs=0.5)
    run_id = stack.queued_run()

    def slow_writer() -> None:
        for n in range(12):
            sdk_event(stack.services, run_id, f"event {n}")
            time.sleep(0.1)
        finish(stack.services, run_id)

    writer = in_background(slow_writer)
    received: list[int] = []
    retries = 0
    last: str | None = None
    ended = False
    while not ended:
        headers = {"Last-Event-ID": last} if last else {}
        with stack.stream(run_id, headers=headers) as response:
            frames = list(SseReader(response))  # read until the server closes the connection
        for frame in frames:
            if frame.id is not None:
                received.append(frame.sequence)
                last = frame.id
        ended = frames[-1].event == "end"
        if not ended:
            assert frames[-1] == Frame(retry="1000"), "a bounded connection closes after `retry:`"
            retries += 1
    writer.join(READ_TIMEOUT)

    assert retries >= 2
    assert received == list(range(1, 2 + 12 + 1))


# --- gaps in the numbering ------------------------------------------------------------------------


def test_a_number_still_being_written_holds_back_the_next_one_until_it_is_written(stack: Stack) -> None:
    run_id = stack.queued_run()
    slow = take_number(stack.services, run_id)  # 2: taken, not written yet
    sdk_event(stack.services, run_id, "after the slow one")  # 3
    arrivals: dict[str, float] = {}
    opened = time.monotonic()

    def late_write() -> None:
        time.sleep(0.25)
        write_taken_event(stack.services, run_id, slow, "slow one")

    in_background(late_write)
    with stack.stream(run_id) as response:
        for frame in SseReader(response):
            if frame.id is not None:
                arrivals[frame.id] = time.monotonic() - opened
            if "3" in arrivals:
                break

    assert list(arrivals) == ["1", "2", "3"]
    assert arrivals["3"] >= 0.25


def test_a_number_whose_writer_failed_is_passed_over_after_the_wait(stack: Stack) -> None:
    run_id = stack.queued_run()
    take_number(stack.services, run_id)  # 2: its writer failed
    sdk_event(stack.services, run_id, "after the failed one")  # 3
    arrivals: dict[str, float] = {}
    opened = time.monotonic()

    with stack.stream(run_id) as response:
        for frame in SseReader(response):
            if frame.id is not None:
                arrivals[frame.id] = time.monotonic() - opened
            if "3" in arrivals:
                break

    assert list(arrivals) == ["1", "3"]
    assert arrivals["3"] >= FAST["sse_gap_wait_secs"]


def test_stream_ends_after_waiting_for_a_number_taken_before_the_end(stack: Stack) -> None:
    run_id = stack.queued_run()
    take_number(stack.services, run_id)  # 2: a writer that failed before the run ended
    finish(stack.services, run_id)  # 3
    opened = time.monotonic()

    frames = sent(read_until_end(stack, run_id))

    assert [(frame.id, frame.event) for frame in frames] == [
        ("1", "status_change"),
        ("3", "status_change"),
        (None, "end"),
    ]
    assert time.monotonic() - opened >= FAST["sse_gap_wait_secs"]


# --- chunks ---------------------------------------------------------------------------------------


def test_chunk_streams_deliver_chunks_in_order_and_end_when_the_run_ends(stack: Stack) -> None:
    run_id = stack.queued_run()
    every: list[Frame] = []
    answer: list[Frame] = []

    def read(into: list[Frame], **request: Any) -> None:
        into.extend(sent(read_until_end(stack, run_id, chunks=True, **request)))

    readers = [in_background(read, every), in_background(read, answer, params={"stream_id": "answer"})]
    wait_until(lambda: stack.services.streams.limiter.open_streams(stack.api.project_id) == 2)
    written = []
    for n in range(10):
        written.append(
            sdk_chunk(stack.services, run_id, f"token {n}", stream_id="answer" if n % 2 else "notes")
        )
        time.sleep(0.02)
    finish(stack.services, run_id, RunStatus.CANCELED)
    for reader in readers:
        reader.join(READ_TIMEOUT)

    assert [frame.sequence for frame in every[:-1]] == [chunk.sequence for chunk in written]
    assert [frame.json()["chunk"] for frame in every[:-1]] == [f"token {n}" for n in range(10)]
    assert [frame.json()["chunk"] for frame in answer[:-1]] == [f"token {n}" for n in range(1, 10, 2)]
    assert every[-1] == answer[-1] == Frame(event="end", data='{"type":"end","status":"canceled"}')


# --- caps -----------------------------------------------------------------------------------------


def test_a_client_going_away_gives_its_slot_back(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(sse_max_connections_per_project=2)
    run_id = stack.queued_run()
    limiter = stack.services.streams.limiter

    with stack.stream(run_id) as first, stack.stream(run_id) as second:
        assert (first.status_code, second.status_code) == (200, 200)
        refused = stack.http.get(stream_url(run_id), headers=stack.api.auth)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
    wait_until(lambda: limiter.open_streams(stack.api.project_id) == 0)

    with stack.stream(run_id) as again:
        assert again.status_code == 200
