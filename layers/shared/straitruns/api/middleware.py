"""Request ids on every response, the request body limit (spec 1.2, 1.5), query parameters given
twice (400), and HEAD on every GET route (the GET's headers, no body), as plain ASGI middleware so
streaming responses pass through untouched."""

import secrets
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import anyio
import simplejson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from straitruns.api.errors import CODES
from straitruns.domain import limits
from straitruns.domain.digits import bounded_int, is_ascii_digits


def _request_id(scope: Scope) -> str:
    event = scope.get("aws.event") or {}
    context = event.get("requestContext") or {}
    return str(context.get("requestId") or f"req_{secrets.token_hex(12)}")


BODY_TOO_LARGE = "strait.body_too_large"


def _declares_more_than(content_length: str, max_body: int) -> bool:
    """A Content-Length over `max_body` (one with more digits than any size is over it)."""
    if not is_ascii_digits(content_length):
        return False
    length = bounded_int(content_length)
    return length is None or length > max_body


def _stage_prefix(scope: Scope) -> str:
    """`/<stage>` when API Gateway was called through its own URL, which carries the stage."""
    context = (scope.get("aws.event") or {}).get("requestContext") or {}
    stage, path = context.get("stage"), context.get("path") or ""
    return f"/{stage}" if stage and path.startswith(f"/{stage}/") else ""


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body: int = limits.REQUEST_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        stage_prefix = _stage_prefix(scope)
        if stage_prefix and not scope.get("root_path"):
            # Called through the execute-api URL (`/<stage>/...`): links and /docs need the prefix.
            scope["root_path"] = stage_prefix
        scope["strait.request_id"] = request_id
        scope.setdefault("state", {})["request_id"] = request_id
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and _declares_more_than(declared.decode("latin-1"), self.max_body):
            await send_error(send, request_id, 413, f"request body is larger than {self.max_body} bytes")
            return
        repeated = _repeated_parameters(scope.get("query_string", b""))
        if repeated:
            names = ", ".join(repeated)
            await send_error(send, request_id, 400, f"query parameter given more than once: {names}")
            return
        if scope["method"] == "HEAD":
            scope["method"] = "GET"
            head = _HeadSend(send)
            send, receive = head, _disconnect_after_start(receive, head)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # Stop reading here; the body parser sees the mark and answers 413.
                    scope[BODY_TOO_LARGE] = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *[(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        await self.app(scope, limited_receive, send_with_id)


def _repeated_parameters(query_string: bytes) -> list[str]:
    """Names given more than once (every parameter of the API takes one value; spec 1.2). Names are
    shown only when they are short printable ASCII (they are user text in an error message)."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    counts = Counter(name for name, _ in pairs)
    repeated = [name for name, count in counts.items() if count > 1]
    return [name if name.isascii() and name.isprintable() and len(name) <= 64 else "?" for name in repeated]


class _HeadSend:
    """Sends a GET's response start and an empty body in its place. Later body messages are
    dropped: a streaming body ends when it hears the disconnect that follows the headers (raising
    here instead would escape a stream that writes before it listens)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.finished = anyio.Event()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            if self.finished.is_set():
                return
            self.finished.set()
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await self.send(message)


def _disconnect_after_start(receive: Receive, head: _HeadSend) -> Receive:
    """Once a HEAD's headers are out the exchange is over: a stream waiting for the client to go
    hears a disconnect at once."""

    async def head_receive() -> Message:
        received: list[Message] = []
        async with anyio.create_task_group() as group:

            async def from_client() -> None:
                received.append(await receive())
                group.cancel_scope.cancel()

            async def until_sent() -> None:
                await head.finished.wait()
                group.cancel_scope.cancel()

            group.start_soon(from_client)
            group.start_soon(until_sent)
        return received[0] if received else {"type": "http.disconnect"}

    return head_receive


async def send_error(send: Send, request_id: str, status: int, message: str) -> None:
    """The error envelope, from middleware (before any route runs)."""
    body: dict[str, Any] = {
        "error": message,
        "message": message,
        "code": CODES[status],
        "request_id": request_id,
    }
    payload = simplejson.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
