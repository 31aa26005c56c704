"""The in-run plane (spec 6): `/sdk/v1/runs/{runID}/...`, called by job code with the run token the
dispatcher sent (`Authorization: Bearer <X-Run-Token>`). The token and the run's status are checked
first (spec 1.1), then the body: unknown body fields are ignored, types are strict."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from straitruns.api.body import JsonBody, body_schema, to_model
from straitruns.api.deps import RunIdPath, ServicesDep
from straitruns.api.responses import JsonTextResponse, next_page_headers
from straitruns.api.schemas import ERRORS, RunOut
from straitruns.api.telemetry_schemas import (
    CheckpointOut,
    EventOut,
    OutputOut,
    StateEntryOut,
    StatusOut,
    ToolCallOut,
    UsageOut,
)
from straitruns.api.telemetry_views import (
    checkpoint_view,
    output_view,
    state_view,
    tool_call_view,
    usage_view,
)
from straitruns.api.views import event_view, raw, run_view
from straitruns.domain import limits
from straitruns.domain.in_run import SdkCall
from straitruns.domain.models import Run
from straitruns.services import sdk_commands as bodies
from straitruns.services.pagination import parse_limit

router = APIRouter(prefix="/sdk/v1/runs/{runID}", tags=["in-run plane (run token)"], responses=ERRORS)

_run_token = HTTPBearer(
    auto_error=False,
    scheme_name="runToken",
    description="The run token the dispatcher sent to the job endpoint as `X-Run-Token`.",
)


def authorized(call: SdkCall) -> Callable[..., Run]:
    """A dependency that yields the run when the request's run token may make `call` on it."""

    def check(
        request: Request,
        run_id: RunIdPath,
        services: ServicesDep,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_run_token)],
    ) -> Run:
        return services.in_run.authorize(request.headers.get("authorization"), run_id, call)

    return check


def _run(call: SdkCall) -> object:
    return Depends(authorized(call))


StateKeyPath = Annotated[str, Path(alias="key")]
_OK = {"status": "ok"}


@router.get("/payload", summary="The run's payload")
def payload(run: Annotated[Run, _run(SdkCall.PAYLOAD)]) -> Response:
    return JsonTextResponse(raw(run.payload))


@router.post("/heartbeat", response_model=StatusOut, summary="Heartbeat of the current attempt")
def heartbeat(run: Annotated[Run, _run(SdkCall.HEARTBEAT)], services: ServicesDep) -> Response:
    paused = services.in_run.heartbeat(run)
    return JsonTextResponse({**_OK, "action": "pause"} if paused else _OK)


@router.post(
    "/log",
    status_code=201,
    response_model=EventOut,
    summary="Append an event",
    openapi_extra=body_schema(bodies.LogBody),
)
def log(run: Annotated[Run, _run(SdkCall.LOG)], body: JsonBody, services: ServicesDep) -> Response:
    event = services.in_run.log(run, to_model(body, bodies.LogBody))
    return JsonTextResponse(event_view(event), status_code=201)


@router.post(
    "/progress",
    status_code=201,
    response_model=EventOut,
    summary="Append a progress event",
    openapi_extra=body_schema(bodies.ProgressBody),
)
def progress(run: Annotated[Run, _run(SdkCall.PROGRESS)], body: JsonBody, services: ServicesDep) -> Response:
    event = services.in_run.progress(run, to_model(body, bodies.ProgressBody))
    return JsonTextResponse(event_view(event), status_code=201)


@router.post(
    "/checkpoint",
    status_code=201,
    response_model=CheckpointOut,
    summary="Store the next checkpoint",
    openapi_extra=body_schema(bodies.CheckpointBody),
)
def checkpoint(
    run: Annotated[Run, _run(SdkCall.CHECKPOINT)], body: JsonBody, services: ServicesDep
) -> Response:
    stored = services.in_run.checkpoint(run, to_model(body, bodies.CheckpointBody))
    return JsonTextResponse(checkpoint_view(stored), status_code=201)


@router.get("/checkpoints/latest", response_model=CheckpointOut, summary="The latest checkpoint (404: none)")
def latest_checkpoint(
    run: Annotated[Run, _run(SdkCall.LATEST_CHECKPOINT)], services: ServicesDep
) -> Response:
    return JsonTextResponse(checkpoint_view(services.in_run.latest_checkpoint(run)))


@router.post(
    "/usage",
    status_code=201,
    response_model=UsageOut,
    summary="Record AI model usage (added to the run's usage_totals)",
    openapi_extra=body_schema(bodies.UsageBody),
)
def usage(run: Annotated[Run, _run(SdkCall.USAGE)], body: JsonBody, services: ServicesDep) -> Response:
    record = services.in_run.usage(run, to_model(body, bodies.UsageBody))
    return JsonTextResponse(usage_view(record), status_code=201)


@router.post(
    "/tool-call",
    status_code=201,
    response_model=ToolCallOut,
    summary="Record a tool call",
    openapi_extra=body_schema(bodies.ToolCallBody),
)
@router.post(
    "/tool-calls",
    status_code=201,
    response_model=ToolCallOut,
    summary="Record a tool call (the same as /tool-call)",
    openapi_extra=body_schema(bodies.ToolCallBody),
)
def tool_call(
    run: Annotated[Run, _run(SdkCall.TOOL_CALL)], body: JsonBody, services: ServicesDep
) -> Response:
    call = services.in_run.tool_call(run, to_model(body, bodies.ToolCallBody))
    return JsonTextResponse(tool_call_view(call), status_code=201)


@router.post(
    "/output",
    status_code=201,
    response_model=OutputOut,
    summary="Store (upsert) an output, checked against its JSON Schema",
    openapi_extra=body_schema(bodies.OutputBody),
)
def output(run: Annotated[Run, _run(SdkCall.OUTPUT)], body: JsonBody, services: ServicesDep) -> Response:
    stored = services.in_run.output(run, to_model(body, bodies.OutputBody))
    return JsonTextResponse(output_view(stored), status_code=201)


@router.post(
    "/state",
    status_code=201,
    response_model=StateEntryOut,
    summary="Store (upsert) a state entry",
    openapi_extra=body_schema(bodies.StateBody),
)
def set_state(
    run: Annotated[Run, _run(SdkCall.STATE_WRITE)], body: JsonBody, services: ServicesDep
) -> Response:
    entry = services.in_run.set_state(run, to_model(body, bodies.StateBody))
    return JsonTextResponse(state_view(entry), status_code=201)


@router.get("/state", response_model=list[StateEntryOut], summary="The run's state entries, by key")
def list_state(
    run: Annotated[Run, _run(SdkCall.STATE_READ)],
    request: Request,
    services: ServicesDep,
    limit: str | None = Query(None, description="1..1000, default 1000"),
    cursor: str | None = Query(None, description="X-Next-Cursor of the previous page"),
) -> Response:
    size = parse_limit(limit, limits.SUB_LIST_DEFAULT_LIMIT, limits.SUB_LIST_MAX_LIMIT)
    page = services.in_run.list_state(run, size, cursor)
    headers = next_page_headers(request, page.next_cursor)
    return JsonTextResponse([state_view(entry) for entry in page.items], headers=headers)


@router.get("/state/{key}", response_model=StateEntryOut, summary="One state entry (404: none)")
def get_state(
    run: Annotated[Run, _run(SdkCall.STATE_READ)], key: StateKeyPath, services: ServicesDep
) -> Response:
    return JsonTextResponse(state_view(services.in_run.get_state(run, key)))


@router.delete("/state/{key}", status_code=204, summary="Remove a state entry")
def delete_state(
    run: Annotated[Run, _run(SdkCall.STATE_DELETE)], key: StateKeyPath, services: ServicesDep
) -> Response:
    services.in_run.delete_state(run, key)
    return Response(status_code=204)


@router.post(
    "/stream",
    response_model=StatusOut,
    summary="Store a stream chunk (served by /v1/runs/{runID}/stream/chunks)",
    openapi_extra=body_schema(bodies.StreamBody),
)
def stream(run: Annotated[Run, _run(SdkCall.STREAM)], body: JsonBody, services: ServicesDep) -> Response:
    services.in_run.stream(run, to_model(body, bodies.StreamBody))
    return JsonTextResponse(_OK)


@router.post(
    "/annotate",
    response_model=RunOut,
    summary="Merge annotations into the run's metadata",
    openapi_extra=body_schema(bodies.AnnotateBody),
)
def annotate(run: Annotated[Run, _run(SdkCall.ANNOTATE)], body: JsonBody, services: ServicesDep) -> Response:
    return JsonTextResponse(run_view(services.in_run.annotate(run, to_model(body, bodies.AnnotateBody))))


@router.post(
    "/spawn",
    status_code=201,
    response_model=RunOut,
    summary="Create a child run (optionally awaited)",
    openapi_extra=body_schema(bodies.SpawnBody),
)
def spawn(run: Annotated[Run, _run(SdkCall.SPAWN)], body: JsonBody, services: ServicesDep) -> Response:
    child = services.in_run.spawn(run, to_model(body, bodies.SpawnBody))
    return JsonTextResponse(run_view(child), status_code=201)


@router.post(
    "/continue",
    status_code=201,
    response_model=RunOut,
    summary="Continue as a new run of the same job; this run completes",
    openapi_extra=body_schema(bodies.ContinueBody, required=False),
)
def continue_run(
    run: Annotated[Run, _run(SdkCall.CONTINUE)], body: JsonBody, services: ServicesDep
) -> Response:
    successor = services.in_run.continue_as_new(run, to_model(body, bodies.ContinueBody, empty_ok=True))
    return JsonTextResponse(run_view(successor), status_code=201)


@router.post(
    "/complete",
    response_model=RunOut,
    summary="Complete the run",
    openapi_extra=body_schema(bodies.CompleteBody, required=False),
)
def complete(run: Annotated[Run, _run(SdkCall.COMPLETE)], body: JsonBody, services: ServicesDep) -> Response:
    done = services.in_run.complete(run, to_model(body, bodies.CompleteBody, empty_ok=True))
    return JsonTextResponse(run_view(done))


@router.post(
    "/fail",
    response_model=RunOut,
    summary="Fail the run (no retry)",
    openapi_extra=body_schema(bodies.FailBody),
)
def fail(run: Annotated[Run, _run(SdkCall.FAIL)], body: JsonBody, services: ServicesDep) -> Response:
    return JsonTextResponse(run_view(services.in_run.fail(run, to_model(body, bodies.FailBody))))
