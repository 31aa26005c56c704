"""A real HTTP job endpoint for engine tests.

`JobEndpoint` is a stdlib ThreadingHTTPServer on 127.0.0.1 (a free port). Each request is answered
by the next scripted `Reply` (see `script`), else by a callable set with `respond`, else by the
default (200 `{"ok": true}`). It records every request (headers, body, arrival time) and the most
calls it ever had in flight at once, so tests assert on what the engine really sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# One byte over the result limit of spec 1.5 (256 KiB).
OVERSIZE_BYTES = 256 * 1024 + 1


@dataclass(frozen=True)
class Reply:
    """How the endpoint answers one request."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay_secs: float = 0.0  # wait this long before answering
    hang_up: bool = False  # close the connection without answering


def json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(value).encode())


def text_reply(text: str, status: int = 200, content_type: str = "text/plain") -> Reply:
    return Reply(status, text.encode(), content_type)


def status_reply(status: int) -> Reply:
    """An answer with this status and an empty body."""
    return Reply(status)


def redirect_reply(location: str, status: int = 302) -> Reply:
    return Reply(status, headers=(("Location", location),))


def slow_reply(delay_secs: float, then: Reply | None = None) -> Reply:
    """`then` (default 200 `{"ok": true}`) after `delay_secs`."""
    answer = then or json_reply({"ok": True})
    return Reply(answer.status, answer.body, answer.content_type, answer.headers, delay_secs)


def oversize_reply(size: int = OVERSIZE_BYTES) -> Reply:
    """A 200 whose body is a valid JSON string of `size` bytes."""
    return Reply(200, b'"' + b"x" * (size - 2) + b'"')


def hang_up_reply() -> Reply:
    return Reply(hang_up=True)


@dataclass(frozen=True)
class Request:
    """One request as the endpoint received it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    arrived_at: float  # time.monotonic() when the request line and headers were read

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[Request], Reply]


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Request] = field(default_factory=list)
    script: deque[Reply] = field(default_factory=deque)
    responder: Responder | None = None
    default: Reply = field(default_factory=lambda: json_reply({"ok": True}))
    in_flight: int = 0
    max_in_flight: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    state: _State

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout) makes the late answer fail; that is expected here."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `JobEndpoint.requests` instead."""

    def _serve(self) -> None:
        state = self.server.state
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, arrived
        )
        with state.lock:
            state.requests.append(request)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            if state.script:
                reply: Reply | None = state.script.popleft()
                responder = None
            else:
                reply, responder = None, state.responder
            default = state.default
        with state.arrived:
            state.arrived.notify_all()
        try:
            if reply is None:
                reply = responder(request) if responder is not None else default
            self._answer(reply, state)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _answer(self, reply: Reply, state: _State) -> None:
        if reply.delay_secs:
            state.stopping.wait(reply.delay_secs)
        if reply.hang_up:
            self.close_connection = True
            return
        self.send_response(reply.status)
        if reply.body or reply.status not in (204, 304):
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()


class JobEndpoint:
    """The server; use as a context manager (or the `endpoint` fixture)."""

    def __init__(self) -> None:
        self._state = _State()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self._state
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="job-endpoint")

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The job endpoint URL to give a job."""
        return f"{self.base_url}/run"

    def script(self, *replies: Reply) -> None:
        """Answers the next requests with `replies`, in order (then the responder or default)."""
        with self._state.lock:
            self._state.script.extend(replies)

    def respond(self, responder: Responder) -> None:
        """Answers every unscripted request with `responder(request)` (called in the server thread)."""
        with self._state.lock:
            self._state.responder = responder

    def answer_always(self, reply: Reply) -> None:
        """The answer of every unscripted request when no responder is set."""
        with self._state.lock:
            self._state.default = reply

    @property
    def requests(self) -> list[Request]:
        with self._state.lock:
            return list(self._state.requests)

    def requests_to(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]

    @property
    def max_in_flight(self) -> int:
        """The most requests that were being answered at the same moment."""
        with self._state.lock:
            return self._state.max_in_flight

    def reset_in_flight(self) -> None:
        """Starts counting `max_in_flight` afresh (for a second phase of a test)."""
        with self._state.lock:
            self._state.max_in_flight = self._state.in_flight

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        """Blocks until `count` requests arrived (or `timeout`); returns those seen."""
        deadline = time.monotonic() + timeout
        with self._state.arrived:
            while len(self.requests) < count and (left := deadline - time.monotonic()) > 0:
                self._state.arrived.wait(left)
        return self.requests

    def start(self) -> JobEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()  # slow answers in progress return at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> JobEndpoint:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@pytest.fixture
def endpoint() -> Iterator[JobEndpoint]:
    """A running job endpoint; stopped after the test."""
    with JobEndpoint() as server:
        yield server
