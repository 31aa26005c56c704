"""uvicorn's HTTP/1.1 protocol, answering requests it cannot parse (a raw non-ASCII path, a broken
request line) with the API's JSON error envelope and an `X-Request-Id`, like every other answer."""

import secrets

import h11
import simplejson
from uvicorn.protocols.http.h11_impl import H11Protocol

from straitruns.api.errors import CODES


class JsonErrorH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        request_id = f"req_{secrets.token_hex(12)}"
        message = f"malformed HTTP request: {msg} (a path must be ASCII; percent-encode other bytes)"
        payload = simplejson.dumps(
            {"error": message, "message": message, "code": CODES[400], "request_id": request_id}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=payload),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()
