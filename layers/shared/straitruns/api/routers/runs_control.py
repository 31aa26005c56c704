"""Steering one run (spec 5 items 5-7, 19, 22-26): cancel, replay, dlq-replay, reschedule, pause,
resume, restart, debug mode and the idempotency-key reset. Every route needs `runs:write`."""

from fastapi import APIRouter, Query, Response

from straitruns.api.body import JsonBody, body_schema, to_model
from straitruns.api.deps import RunIdPath, RunsWriter, ServicesDep
from straitruns.api.responses import JsonTextResponse
from straitruns.api.schemas import ERRORS, IdempotencyResetOut, RunOut
from straitruns.api.views import run_view
from straitruns.domain.digits import bounded_int
from straitruns.domain.errors import ValidationFailed
from straitruns.services.commands import NoFields
from straitruns.services.steering import RescheduleRun, RestartRun, SetDebugMode

router = APIRouter(tags=["runs"], responses=ERRORS)

# Routes without fields still read their body: malformed JSON is 400 and any field 422 (spec 1.2).
_NO_FIELDS = body_schema(NoFields, required=False)


def _no_fields(body: object) -> None:
    to_model(body, NoFields, empty_ok=True)


def _checkpoint_sequence(text: str | None) -> int | None:
    if text is None:
        return None
    sequence = bounded_int(text)
    if sequence is None or sequence < 1:
        raise ValidationFailed(
            "from_checkpoint must be a checkpoint sequence (a positive integer of at most 18 digits)",
            [{"field": "from_checkpoint", "error": "not a positive integer"}],
        )
    return sequence


@router.delete(
    "/v1/runs/{runID}",
    status_code=204,
    openapi_extra=_NO_FIELDS,
    summary="Cancel a run and its non-terminal descendants (409 when terminal)",
)
def cancel_run(run_id: RunIdPath, principal: RunsWriter, services: ServicesDep, body: JsonBody) -> Response:
    _no_fields(body)
    services.steering.cancel(principal, run_id)
    return Response(status_code=204)


@router.post(
    "/v1/runs/{runID}/replay",
    status_code=201,
    response_model=RunOut,
    openapi_extra=_NO_FIELDS,
    summary="Replay a terminal run as a new run (from a checkpoint's state with ?from_checkpoint=N)",
)
def replay_run(
    run_id: RunIdPath,
    principal: RunsWriter,
    services: ServicesDep,
    body: JsonBody,
    from_checkpoint: str | None = Query(None, description="A checkpoint sequence of the run"),
) -> Response:
    _no_fields(body)
    run = services.steering.replay(principal, run_id, _checkpoint_sequence(from_checkpoint))
    return JsonTextResponse(run_view(run), status_code=201)


@router.post(
    "/v1/runs/{runID}/dlq-replay",
    response_model=RunOut,
    openapi_extra=_NO_FIELDS,
    summary="Put a dead-lettered run back in the queue in place (attempt 1)",
)
def dlq_replay(run_id: RunIdPath, principal: RunsWriter, services: ServicesDep, body: JsonBody) -> Response:
    _no_fields(body)
    return JsonTextResponse(run_view(services.steering.dlq_replay(principal, run_id)))


@router.post(
    "/v1/runs/{runID}/reschedule",
    response_model=RunOut,
    openapi_extra=body_schema(RescheduleRun),
    summary="Move a delayed or never-dispatched queued run to another time",
)
def reschedule(run_id: RunIdPath, principal: RunsWriter, services: ServicesDep, body: JsonBody) -> Response:
    command = to_model(body, RescheduleRun)
    return JsonTextResponse(run_view(services.steering.reschedule(principal, run_id, command)))


@router.post(
    "/v1/runs/{runID}/pause",
    response_model=RunOut,
    openapi_extra=_NO_FIELDS,
    summary="Pause a delayed, queued or executing run",
)
def pause(run_id: RunIdPath, principal: RunsWriter, services: ServicesDep, body: JsonBody) -> Response:
    _no_fields(body)
    return JsonTextResponse(run_view(services.steering.pause(principal, run_id)))


@router.post(
    "/v1/runs/{runID}/resume", response_model=RunOut, openapi_extra=_NO_FIELDS, summary="Resume a paused run"
)
def resume(run_id: RunIdPath, principal: RunsWriter, services: ServicesDep, body: JsonBody) -> Response:
    _no_fields(body)
    return JsonTextResponse(run_view(services.steering.resume(principal, run_id)))


@router.post(
    "/v1/runs/{runID}/restart",
    response_model=RunOut,
    openapi_extra=body_schema(RestartRun, required=False),
    summary="Queue a run again on a new generation, optionally on another machine preset",
)
def restart(run_id: RunIdPath, principal: RunsWriter, services: ServicesDep, body: JsonBody) -> Response:
    command = to_model(body, RestartRun, empty_ok=True)
    return JsonTextResponse(run_view(services.steering.restart(principal, run_id, command)))


@router.post(
    "/v1/runs/{runID}/debug",
    status_code=204,
    openapi_extra=body_schema(SetDebugMode, required=False),
    summary="Turn debug mode on or off (later attempts record debug.request/debug.response)",
)
def set_debug_mode(
    run_id: RunIdPath, principal: RunsWriter, services: ServicesDep, body: JsonBody
) -> Response:
    command = to_model(body, SetDebugMode, empty_ok=True)
    services.steering.set_debug_mode(principal, run_id, command.debug_mode)
    return Response(status_code=204)


@router.delete(
    "/v1/runs/{runID}/idempotency-key",
    response_model=IdempotencyResetOut,
    openapi_extra=_NO_FIELDS,
    summary="Free the run's idempotency key (409 while dequeued or executing)",
)
def reset_idempotency_key(
    run_id: RunIdPath, principal: RunsWriter, services: ServicesDep, body: JsonBody
) -> Response:
    _no_fields(body)
    run = services.steering.reset_idempotency_key(principal, run_id)
    return JsonTextResponse({"status": "reset", "run_id": run.id})
