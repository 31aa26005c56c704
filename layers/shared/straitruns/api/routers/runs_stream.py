"""Live streams as Server-Sent Events (spec 7): `GET /v1/runs/{runID}/stream` (the run's event log)
and `GET /v1/runs/{runID}/stream/chunks` (its stream chunks). The frames come from
services.streams; this module only authenticates, opens the stream and sends it.

Callers authenticate with an API key (`runs:read`) in the Authorization header, or, from a browser
`EventSource` (which cannot send headers), with `?token=<SSE token>` from `POST /v1/sse-token`.
Deployed, this group runs under the Lambda Web Adapter behind API Gateway response streaming.
"""

import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from straitruns.api.deps import RunIdPath, ServicesDep
from straitruns.domain.auth import Principal
from straitruns.domain.auth import Scope as AuthScope
from straitruns.domain.errors import Forbidden
from straitruns.services.streams import OpenStream, StreamKind
from straitruns.wiring import Services

logger = logging.getLogger("straitruns.api")

router = APIRouter(tags=["streams"])

_bearer = HTTPBearer(
    auto_error=False, description="An API key with runs:read, or `?token=` with an SSE token."
)

# Content-Type exactly as spec 7 names it; no caching or proxy buffering of frames; any origin may
# read (the credential is in the URL or a header, never a cookie).
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "Access-Control-Allow-Origin": "*",
}

# A browser asks before a cross-origin reconnect that carries Last-Event-ID (not a CORS-safelisted
# header): any origin may, with that header, for a day.
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "Last-Event-ID, Cache-Control, Accept",
    "Access-Control-Max-Age": "86400",
}

_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Server-Sent Events, until `event: end` or the connection bound (`retry:`)"},
    204: {"description": "Reconnect after the end: the run is terminal and Last-Event-ID is its last"},
    **{
        code: {"description": description, "content": _ERROR_BODY}
        for code, description in (
            (401, "No valid API key, or `?token=` is not a valid SSE token"),
            (403, "The API key lacks runs:read"),
            (404, "No such run in the caller's project"),
            (503, "Too many open streams (Retry-After)"),
        )
    },
}


def stream_reader(
    request: Request,
    services: ServicesDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[
        str | None, Query(description="An SSE token (POST /v1/sse-token); never an API key")
    ] = None,
) -> Principal:
    """The caller: an SSE token from `?token=` (401 if it is anything else), otherwise the
    Authorization header's API key or admin secret (401), with `runs:read` (403)."""
    if token is not None:
        return services.sse_tokens.authenticate(token)
    principal = services.access.authenticate(request.headers.get("authorization"))
    if not principal.has_scope(AuthScope.RUNS_READ):
        raise Forbidden("this API key lacks the 'runs:read' scope")
    return principal


StreamReader = Annotated[Principal, Depends(stream_reader)]
LastEventIdQuery = Annotated[
    str | None, Query(description="The last sequence received (the Last-Event-ID header wins)")
]


class EventStreamResponse(StreamingResponse):
    """A stream of SSE frames that calls `on_close` (giving back the stream's slot) once the
    response is over, however it ends: `end`, the bound, or the client going away."""

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        super().__init__(frames, headers=SSE_HEADERS)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(self._on_close)
                except Exception:
                    logger.exception("could not give back a stream slot")


def _sse(services: Services, stream: OpenStream | None) -> Response:
    if stream is None:
        return Response(status_code=204)
    return EventStreamResponse(services.streams.frames(stream), lambda: services.streams.close(stream))


def _last_event_id(request: Request, query_value: str | None) -> str | None:
    """The Last-Event-ID header (a browser's reconnect) wins over `?last_event_id=`."""
    return request.headers.get("last-event-id") or query_value


@router.get(
    "/v1/runs/{runID}/stream",
    status_code=200,
    response_class=EventStreamResponse,
    responses=STREAM_RESPONSES,
    summary="SSE event stream: the run's events (status changes included), then `end`",
)
def stream_events(
    run_id: RunIdPath,
    request: Request,
    principal: StreamReader,
    services: ServicesDep,
    last_event_id: LastEventIdQuery = None,
) -> Response:
    stream = services.streams.open(
        principal, run_id, StreamKind.EVENTS, _last_event_id(request, last_event_id)
    )
    return _sse(services, stream)


@router.get(
    "/v1/runs/{runID}/stream/chunks",
    status_code=200,
    response_class=EventStreamResponse,
    responses=STREAM_RESPONSES,
    summary="SSE stream of LLM chunks: the run's stream chunks, then `end`",
)
def stream_chunks(
    run_id: RunIdPath,
    request: Request,
    principal: StreamReader,
    services: ServicesDep,
    last_event_id: LastEventIdQuery = None,
    stream_id: Annotated[str | None, Query(description="Only the chunks of this stream")] = None,
) -> Response:
    stream = services.streams.open(
        principal, run_id, StreamKind.CHUNKS, _last_event_id(request, last_event_id), stream_id
    )
    return _sse(services, stream)


@router.options("/v1/runs/{runID}/stream", include_in_schema=False)
@router.options("/v1/runs/{runID}/stream/chunks", include_in_schema=False)
def stream_preflight() -> Response:
    """The CORS preflight of a stream (no credentials: a browser sends none with it)."""
    return Response(status_code=204, headers=PREFLIGHT_HEADERS)
