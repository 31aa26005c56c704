"""A job endpoint that uses the in-run plane the way SDK code does (standard library and httpx).

    python examples/sdk_endpoint.py --port 9100

Each call of a run carries `X-Run-Token` (the run token) and `X-Strait-Api-Url` (where the in-run
plane is); every in-run call is `POST|GET <api>/sdk/v1/runs/<run id>/<call>` with
`Authorization: Bearer <run token>`.

- `POST /run` (a parent job): answers 202 at once and works in a thread: it logs, reports progress,
  checkpoints, reports model usage and a tool call, saves an output (with its JSON Schema) and a
  state entry, streams a chunk, and spawns one child of the job named by the payload's `child_job`
  (default `sdk-child`) with `await_completion`: the run then waits. Once the child has ended, the
  service calls `POST /run` again with `X-Resumed-After: <child id>`; the endpoint answers 202 and
  then calls `complete` with the children's ids and the state it kept.
- `POST /child` (a child job): answers 200 with `{"child_of": <parent run id>, "payload": ...}` (the
  parent puts its id in the child's payload), so the child completes with that result.

Every in-run call and its answer is printed on stderr, and kept in `Recorder.calls` by run id
(tests compare them with what the read endpoints return).
"""

import argparse
import json
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "words": {"type": "integer", "minimum": 0}},
    "required": ["title", "words"],
}


@dataclass
class Call:
    """One in-run call the endpoint made, and the service's answer."""

    method: str
    name: str  # the path after /sdk/v1/runs/<run id>/
    body: Any
    status: int
    answer: Any


@dataclass
class Recorder:
    calls: dict[str, list[Call]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class InRunClient:
    """The in-run plane of one run, with its run token."""

    def __init__(self, api_url: str, run_id: str, token: str, recorder: Recorder) -> None:
        self.base = f"{api_url.rstrip('/')}/sdk/v1/runs/{run_id}"
        self.run_id = run_id
        self.headers = {"Authorization": f"Bearer {token}"}
        self.recorder = recorder

    def call(self, method: str, name: str, body: Any = None) -> Any:
        """One call; raises httpx.HTTPStatusError unless it succeeded."""
        response = httpx.request(method, f"{self.base}/{name}", json=body, headers=self.headers, timeout=30)
        answer = response.json() if response.content else None
        with self.recorder.lock:
            self.recorder.calls[self.run_id].append(Call(method, name, body, response.status_code, answer))
        print(f"{self.run_id} {method} {name} -> {response.status_code}", file=sys.stderr, flush=True)
        response.raise_for_status()
        return answer

    def post(self, name: str, body: Any = None) -> Any:
        return self.call("POST", name, body)


def first_call(client: InRunClient, payload: dict[str, Any]) -> None:
    """The work of a parent's first dispatch: record everything, then spawn and await a child."""
    client.post("log", {"message": "report started", "data": {"payload": payload}})
    client.post("progress", {"percent": 10, "message": "collecting", "step": "collect", "eta_seconds": 5})
    client.post("checkpoint", {"state": {"step": "collect", "done": 0}})
    client.post(
        "usage",
        {
            "provider": "acme-ai",
            "model": "writer-1",
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "cost_microusd": 450,
        },
    )
    client.post(
        "tool-call",
        {
            "tool_name": "search",
            "input": {"q": "invoices"},
            "output": {"hits": 3},
            "duration_ms": 42,
            "status": "ok",
        },
    )
    client.post(
        "output", {"output_key": "summary", "value": {"title": "Report", "words": 3}, "schema": OUTPUT_SCHEMA}
    )
    client.post("state", {"key": "cursor", "value": {"page": 2}})
    client.post("stream", {"chunk": "Report ", "stream_id": "text"})
    client.post("log", {"message": "waiting for the child", "level": "debug"})
    child_job = payload.get("child_job", "sdk-child")
    client.post(
        "spawn",
        {
            "job_slug": child_job,
            "payload": {"part": 1, "parent_run_id": client.run_id},
            "await_completion": True,
            "await_timeout_secs": 600,
        },
    )


def resumed_call(client: InRunClient, children: list[str]) -> None:
    """The work after the awaited children ended: finish through the in-run plane."""
    client.post("progress", {"percent": 100, "message": "children done", "step": "finish"})
    state = client.call("GET", "state/cursor")
    client.post("complete", {"result": {"children": children, "cursor": state["value"]}})


def _work(client: InRunClient, payload: dict[str, Any], resumed_after: str | None) -> None:
    try:
        if resumed_after:
            resumed_call(client, resumed_after.split(","))
        else:
            first_call(client, payload)
    except Exception as exc:  # shown on stderr and kept for tests; the run then times out
        print(f"{client.run_id}: {exc!r}", file=sys.stderr, flush=True)
        with client.recorder.lock:
            client.recorder.errors.append(f"{client.run_id}: {exc!r}")


class SdkEndpointHandler(BaseHTTPRequestHandler):
    server_version = "sdk-endpoint/1"
    recorder: Recorder

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if self.path == "/child":
            # X-Run-ID is the child's own id: the parent is the one that spawned it.
            self._send(200, {"child_of": payload.get("parent_run_id"), "payload": payload})
            return
        if self.path != "/run":
            self._send(404, {"error": "unknown path"})
            return
        client = InRunClient(
            self._header("X-Strait-Api-Url"),
            self._header("X-Run-ID"),
            self._header("X-Run-Token"),
            self.recorder,
        )
        # 202: accepted; the run is finished later through the in-run plane.
        self._send(202, {"accepted": True})
        args = (client, payload if isinstance(payload, dict) else {}, self.headers.get("X-Resumed-After"))
        threading.Thread(target=_work, args=args, daemon=True).start()

    def _header(self, name: str) -> str:
        return self.headers.get(name) or ""

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the in-run calls are printed instead."""


def make_server(host: str, port: int, recorder: Recorder | None = None) -> ThreadingHTTPServer:
    """The endpoint's HTTP server (not started); `port` 0 picks a free one."""
    handler = type("Handler", (SdkEndpointHandler,), {"recorder": recorder or Recorder()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="A job endpoint that uses the in-run plane.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="port to listen on (default 9100)")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port)
    print(
        f"sdk endpoint on http://{args.host}:{args.port}/run (Ctrl-C stops it)", file=sys.stderr, flush=True
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
