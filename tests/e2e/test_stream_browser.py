"""A browser's EventSource on the local stack (spec 7, 1.1): headless Chromium (Debian's `chromium`,
installed by `make install`) loads a tiny page served by this test; the page opens an EventSource on
`/v1/runs/{id}/stream?token=<SSE token>` of the real runner (`python -m straitruns.local.dev`),
writes every frame it receives into the DOM and reports them back to the test.

The runner bounds each connection to 1.5 s, so while the run executes the browser is sent `retry:`
and reconnects cross-origin with Last-Event-ID (through the CORS preflight): the page must still see
every event exactly once, in order, then `end`. The test causes that order: the job endpoint answers
only once the page says its EventSource opened a second time (never a race of two timers)."""

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import http_client
from tests.e2e.runner import Banner, DevRunner
from tests.support.endpoint import JobEndpoint, Reply, json_reply

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
BROWSER_TIMEOUT_SECS = 60
REPORT_TIMEOUT_SECS = 40
CONNECTION_BOUND_SECS = "1.5"
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>strait stream</title></head>
<body>
<ol id="frames"></ol>
<script>
const list = document.getElementById("frames");
const seen = [];
let opens = 0;
let errors = 0;
const source = new EventSource(STREAM_URL);
source.onopen = () => {
  opens += 1;
  if (opens === 2) { fetch("/reconnected", {method: "POST"}); }
};
source.onerror = () => { errors += 1; };
function add(kind, message) {
  const item = document.createElement("li");
  item.dataset.kind = kind;
  item.dataset.id = message.lastEventId;
  item.textContent = message.data;
  list.appendChild(item);
  seen.push({kind: kind, id: message.lastEventId, data: JSON.parse(message.data)});
}
for (const kind of ["status_change", "event", "progress"]) {
  source.addEventListener(kind, (message) => add(kind, message));
}
source.addEventListener("end", (message) => {
  add("end", message);
  source.close();
  fetch("/report", {method: "POST", body: JSON.stringify({seen: seen, opens: opens, errors: errors})});
});
</script>
<!-- The load event (after which Chromium dumps the DOM) waits for this until the page reported. -->
<img src="/hold" alt="">
</body></html>
"""


@dataclass
class PageState:
    """The page's server: `/` the page, `/report` what the page saw, `/hold` held until then."""

    stream_url: str = ""
    reported: threading.Event = field(default_factory=threading.Event)
    reconnected: threading.Event = field(default_factory=threading.Event)
    report: dict[str, Any] = field(default_factory=dict)


def page_server(page: PageState) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/":
                html = PAGE.replace("STREAM_URL", json.dumps(page.stream_url))
                self._send(200, html.encode(), "text/html; charset=utf-8")
            elif self.path == "/hold":
                page.reported.wait(REPORT_TIMEOUT_SECS)
                self._send(200, GIF, "image/gif")
            else:
                self._send(404, b"", "text/plain")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/reconnected":
                page.reconnected.set()
            else:
                page.report.update(json.loads(body))
                page.reported.set()
            self._send(204, b"", "text/plain")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


@pytest.fixture(scope="module")
def bounded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Banner, httpx.Client]]:
    """The runner with stream connections bounded to CONNECTION_BOUND_SECS."""
    base = tmp_path_factory.mktemp("stream-stack")
    runner = DevRunner(
        base / "data",
        base / "runner.log",
        extra_env={"STRAIT_SSE_MAX_CONNECTION_SECS": CONNECTION_BOUND_SECS, "STRAIT_SSE_KEEPALIVE_SECS": "1"},
    )
    try:
        banner = runner.start()
        with http_client(banner) as http:
            yield banner, http
        runner.stop()
    finally:
        runner.kill()


def run_chromium(url: str, profile: Path) -> str:
    """The DOM of `url` once loaded, as headless Chromium dumps it."""
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: `make install` installs Debian's chromium"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_SECS, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_browser_event_source_with_an_sse_token_receives_a_runs_events_across_reconnects(
    bounded_stack: tuple[Banner, httpx.Client], endpoint: JobEndpoint, tmp_path: Path
) -> None:
    banner, http = bounded_stack
    page = PageState()

    def answer_once_the_browser_reconnected(_request: Any) -> Reply:
        page.reconnected.wait(REPORT_TIMEOUT_SECS)
        return json_reply({"ok": True})

    endpoint.respond(answer_once_the_browser_reconnected)
    job = http.post(
        "/v1/jobs",
        json={"slug": "browser", "name": "browser", "endpoint_url": endpoint.url},
        headers=banner.auth,
    )
    assert job.status_code == 201, job.text
    run = http.post(f"/v1/jobs/{job.json()['id']}/trigger", json={"payload": {}}, headers=banner.auth)
    assert run.status_code == 201, run.text
    token = http.post("/v1/sse-token", headers=banner.auth)
    assert token.status_code == 200, token.text
    page.stream_url = f"{banner.api_url}/v1/runs/{run.json()['id']}/stream?token={token.json()['token']}"
    server = page_server(page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dom = run_chromium(f"http://127.0.0.1:{server.server_address[1]}/", tmp_path / "profile")
    finally:
        server.shutdown()
        server.server_close()

    assert page.reported.is_set(), f"the page never saw `end`; its DOM: {dom[-2000:]}"
    seen = page.report["seen"]
    numbered = [int(frame["id"]) for frame in seen[:-1]]
    assert numbered == list(range(1, len(numbered) + 1)), "every event exactly once, in order"
    changes = [
        (frame["data"]["from"], frame["data"]["to"]) for frame in seen if frame["kind"] == "status_change"
    ]
    assert changes == [
        (None, "queued"),
        ("queued", "dequeued"),
        ("dequeued", "executing"),
        ("executing", "completed"),
    ]
    assert seen[-1] == {
        "kind": "end",
        "id": str(numbered[-1]),
        "data": {"type": "end", "status": "completed"},
    }
    assert page.reconnected.is_set(), "the bounded connection made the browser reconnect"
    assert page.report["opens"] >= 2
    assert 'data-kind="end"' in dom
