"""Request ids on every response and the request body limit (spec 1.2, 1.5), as plain ASGI
middleware so streaming responses pass through untouched."""

import secrets
from typing import Any

import simplejson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from straitruns.api.errors import CODES
from straitruns.domain import limits


def _request_id(scope: Scope) -> str:
    event = scope.get("aws.event") or {}
    context = event.get("requestContext") or {}
    return str(context.get("requestId") or f"req_{secrets.token_hex(12)}")


BODY_TOO_LARGE = "strait.body_too_large"


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
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(send, request_id)
            return
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

    async def _too_large(self, send: Send, request_id: str) -> None:
        message = f"request body is larger than {self.max_body} bytes"
        body: dict[str, Any] = {
            "error": message,
            "message": message,
            "code": CODES[413],
            "request_id": request_id,
        }
        payload = simplejson.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
