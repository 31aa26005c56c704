"""An in-memory stand-in for the Strait Runs API behind httpx.MockTransport, and a way to run the
command line in-process against it (click's CliRunner, with a Runtime carrying the transport).

Routes are `(method, path)` -> a handler returning an httpx.Response, or a list of responses
answered in turn. Every request is recorded, so tests assert on what the command line sent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result

from strait_runs_cli.main import cli
from strait_runs_cli.runtime import Runtime

API_URL = "http://api.test"
KEY = "strait_" + "a" * 64
PROJECT = "proj_01TESTPROJECT0000000000000"
Handler = Callable[[httpx.Request], httpx.Response]


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=value, headers={"X-Request-Id": "req_test", **(headers or {})})


def error_response(status: int, message: str, code: str, request_id: str = "req_failed") -> httpx.Response:
    body = {"error": message, "message": message, "code": code, "request_id": request_id}
    return httpx.Response(status, json=body, headers={"X-Request-Id": request_id})


def sse(*frames: str) -> bytes:
    """SSE text of frames (each a block of field lines), as the API sends them."""
    return "".join(f"{frame}\n\n" for frame in (": keepalive", *frames)).encode()


def status_frame(sequence: int, before: str | None, after: str, attempt: int = 1) -> str:
    data = {
        "type": "status_change",
        "run_id": "run_1",
        "from": before,
        "to": after,
        "attempt": attempt,
        "timestamp": "2026-11-28T14:15:22.123456Z",
    }
    return f"id: {sequence}\nevent: status_change\ndata: {json.dumps(data)}"


def log_frame(sequence: int, message: str, level: str = "info") -> str:
    data = {
        "type": "event",
        "event_type": "log",
        "run_id": "run_1",
        "level": level,
        "message": message,
        "data": {},
        "timestamp": "2026-11-28T14:15:23.000000Z",
    }
    return f"id: {sequence}\nevent: event\ndata: {json.dumps(data)}"


def end_frame(status: str) -> str:
    return f"event: end\ndata: {json.dumps({'type': 'end', 'status': status})}"


class DroppedStream(httpx.SyncByteStream):
    """A response body that sends `body`, then fails as a dropped connection does."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self._body
        raise httpx.ReadError("connection reset by peer")


def stream_response(body: bytes, dropped: bool = False) -> httpx.Response:
    headers = {"Content-Type": "text/event-stream"}
    if dropped:
        return httpx.Response(200, headers=headers, stream=DroppedStream(body))
    return httpx.Response(200, headers=headers, content=body)


@dataclass
class FakeApi:
    routes: dict[tuple[str, str], Handler | list[httpx.Response]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Handler | httpx.Response | list[httpx.Response]) -> None:
        if isinstance(answer, httpx.Response):
            answer = [answer]
        self.routes[(method, path)] = answer

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return error_response(404, f"no route {request.method} {request.url.path}", "not_found")
        if callable(route):
            return route(request)
        return route.pop(0) if len(route) > 1 else route[0]

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]

    def invoke(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> Result:
        """Runs `strait-runs ARGS` against this API; `sleep` defaults to recording in `sleeps`."""
        environ = {
            "STRAIT_API_URL": API_URL,
            "STRAIT_API_KEY": KEY,
            "STRAIT_CONFIG": "/nonexistent/config.toml",
        }
        environ.update(env or {})
        runtime = Runtime(
            transport=httpx.MockTransport(self.handle), sleep=sleep or self.sleeps.append, environ=environ
        )
        return CliRunner().invoke(cli, list(args), obj=runtime, input=input)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def config_env(tmp_path: Path) -> dict[str, str]:
    return {"STRAIT_CONFIG": str(tmp_path / "config.toml")}
