"""Requests the HTTP server cannot parse (issue point 12: a raw non-ASCII path got a text/plain 400
without X-Request-Id) get the API's JSON error envelope, over a real socket."""

import json
import socket
from urllib.parse import urlsplit

from straitruns.api.app import create_app
from straitruns.wiring import Services
from tests.support.live import serve


def raw_exchange(base_url: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)
    }
    return status_line, headers, body


def test_a_raw_non_ascii_path_gets_the_json_error_envelope_with_a_request_id(services: Services) -> None:
    with serve(create_app(lambda: services)) as base_url:
        status, headers, body = raw_exchange(
            base_url, b"GET /v1/runs/run_\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n"
        )

    assert status.startswith("HTTP/1.1 400")
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["code"] == "bad_request"
    assert answer["message"] == answer["error"]
    assert headers["x-request-id"] == answer["request_id"]
