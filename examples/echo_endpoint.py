"""A tiny job endpoint to try the local stack with (standard library only).

    python examples/echo_endpoint.py --port 9000

Every POST is answered 200 with a JSON body that echoes the run's payload and the X-Run-ID and
X-Attempt headers the dispatcher sent, so the run completes with that body as its `result`:

    {"echo": <payload>, "run_id": "run_...", "attempt": 1}

Anything else is 405. Each call is printed on stderr.
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class EchoHandler(BaseHTTPRequestHandler):
    """Answers a job call with its payload and run headers."""

    server_version = "echo-endpoint/1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            payload: Any = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", errors="replace")
        attempt = self.headers.get("X-Attempt")
        answer = {
            "echo": payload,
            "run_id": self.headers.get("X-Run-ID"),
            "attempt": int(attempt) if attempt and attempt.isdigit() else attempt,
        }
        self._send(200, answer)

    def do_GET(self) -> None:
        self._send(405, {"error": "job endpoints are called with POST"})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="A job endpoint that echoes each run's payload.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on (default 9000)")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), EchoHandler)
    print(f"echo endpoint on http://{args.host}:{args.port}/ (Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
