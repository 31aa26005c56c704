"""What a run recorded (spec 5 items 13-18, 28): events, checkpoints, usage, tool calls, outputs,
state, and the debug bundle. Lists are JSON arrays, oldest first, paged with `limit` (1..1000,
default 1000) and `cursor` (X-Next-Cursor)."""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from straitruns.api.deps import RunIdPath, RunsReader, ServicesDep
from straitruns.api.responses import JsonTextResponse, next_page_headers
from straitruns.api.schemas import ERRORS
from straitruns.api.telemetry_schemas import (
    CheckpointOut,
    DebugBundleOut,
    EventOut,
    OutputOut,
    StateEntryOut,
    ToolCallOut,
    UsageOut,
)
from straitruns.api.telemetry_views import (
    checkpoint_view,
    output_view,
    response_budget,
    state_view,
    tool_call_view,
    usage_view,
)
from straitruns.api.views import event_view, run_view
from straitruns.domain import limits
from straitruns.services.pagination import parse_limit
from straitruns.services.sub_lists import SubPage

router = APIRouter(tags=["run telemetry"], responses=ERRORS)

_LIMIT = Query(None, description="1..1000, default 1000")
_CURSOR = Query(None, description="X-Next-Cursor of the previous page, or a date-time (strictly after)")


def _size(limit: str | None) -> int:
    return parse_limit(limit, limits.SUB_LIST_DEFAULT_LIMIT, limits.SUB_LIST_MAX_LIMIT)


def _page[T](request: Request, page: SubPage[T], view: Callable[[T], dict[str, Any]]) -> Response:
    return JsonTextResponse(
        [view(item) for item in page.items], headers=next_page_headers(request, page.next_cursor)
    )


@router.get("/v1/runs/{runID}/events", response_model=list[EventOut], summary="The run's events, by sequence")
def list_events(
    run_id: RunIdPath,
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    level: str | None = Query(None, description="debug | info | warn | error"),
    type: str | None = Query(None, description="An event type, such as log, progress or status_change"),
    limit: str | None = _LIMIT,
    cursor: str | None = _CURSOR,
) -> Response:
    page = services.telemetry.events(
        principal,
        run_id,
        level=level,
        event_type=type,
        limit=_size(limit),
        cursor=cursor,
        fits=response_budget(),
    )
    return _page(request, page, event_view)


@router.get(
    "/v1/runs/{runID}/checkpoints",
    response_model=list[CheckpointOut],
    summary="The run's checkpoints, by sequence",
)
def list_checkpoints(
    run_id: RunIdPath,
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    limit: str | None = _LIMIT,
    cursor: str | None = _CURSOR,
) -> Response:
    page = services.telemetry.checkpoints(
        principal, run_id, limit=_size(limit), cursor=cursor, fits=response_budget()
    )
    return _page(request, page, checkpoint_view)


@router.get("/v1/runs/{runID}/usage", response_model=list[UsageOut], summary="The run's AI model usage")
def list_usage(
    run_id: RunIdPath,
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    limit: str | None = _LIMIT,
    cursor: str | None = _CURSOR,
) -> Response:
    page = services.telemetry.usage(
        principal, run_id, limit=_size(limit), cursor=cursor, fits=response_budget()
    )
    return _page(request, page, usage_view)


@router.get("/v1/runs/{runID}/tool-calls", response_model=list[ToolCallOut], summary="The run's tool calls")
def list_tool_calls(
    run_id: RunIdPath,
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    limit: str | None = _LIMIT,
    cursor: str | None = _CURSOR,
) -> Response:
    page = services.telemetry.tool_calls(
        principal, run_id, limit=_size(limit), cursor=cursor, fits=response_budget()
    )
    return _page(request, page, tool_call_view)


@router.get(
    "/v1/runs/{runID}/outputs",
    response_model=list[OutputOut],
    summary="The run's structured outputs, by created_at",
)
def list_outputs(
    run_id: RunIdPath,
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    limit: str | None = _LIMIT,
    cursor: str | None = _CURSOR,
) -> Response:
    page = services.telemetry.outputs(
        principal, run_id, limit=_size(limit), cursor=cursor, fits=response_budget()
    )
    return _page(request, page, output_view)


@router.get("/v1/runs/{runID}/state", response_model=list[StateEntryOut], summary="The run's state, by key")
def list_state(
    run_id: RunIdPath,
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    limit: str | None = _LIMIT,
    cursor: str | None = _CURSOR,
) -> Response:
    page = services.telemetry.state(
        principal, run_id, limit=_size(limit), cursor=cursor, fits=response_budget()
    )
    return _page(request, page, state_view)


@router.get(
    "/v1/runs/{runID}/debug-bundle",
    response_model=DebugBundleOut,
    summary="The run and everything it recorded, in one response",
)
def debug_bundle(run_id: RunIdPath, principal: RunsReader, services: ServicesDep) -> Response:
    bundle = services.telemetry.debug_bundle(principal, run_id, fits=response_budget())
    return JsonTextResponse(
        {
            "run": run_view(bundle.run),
            "events": [event_view(event) for event in bundle.events],
            "checkpoints": [checkpoint_view(checkpoint) for checkpoint in bundle.checkpoints],
            "usage": [usage_view(record) for record in bundle.usage],
            "tool_calls": [tool_call_view(call) for call in bundle.tool_calls],
            "outputs": [output_view(output) for output in bundle.outputs],
            "truncated": bundle.truncated,
        }
    )
