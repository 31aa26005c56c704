"""Bulk operations on runs (spec 5 items 3, 8, 9, 10). Every route needs `runs:write`; each call
does bounded work and answers per run. Runs a replay call left out are named in `X-Strait-Skipped`
as `id:reason,...`."""

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from straitruns.api.body import JsonBody, body_schema, to_model
from straitruns.api.deps import RunsWriter, ServicesDep, requested_project
from straitruns.api.responses import JsonTextResponse
from straitruns.api.routers.runs_query import response_budget
from straitruns.api.schemas import ERRORS, BulkCancelAllOut, BulkCancelOut, BulkDlqReplayOut, RunOut
from straitruns.api.views import run_view
from straitruns.services.bulk import BulkCancelAll, BulkCancelResult, BulkDlqReplay, BulkRunIds

router = APIRouter(tags=["runs"], responses=ERRORS)

SKIPPED_HEADER = "X-Strait-Skipped"
_SKIPPED_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            SKIPPED_HEADER: {
                "description": "The ids left out, with reasons: `id:reason,...` (docs/operating-runs.md)",
                "schema": {"type": "string"},
            }
        }
    }
}


def _cancel_body(result: BulkCancelResult) -> dict[str, object]:
    return {
        "results": [{"id": item.id, "status": item.status, "error": item.error} for item in result.results],
        "total": len(result.results),
        "canceled": result.canceled,
        "failed": result.failed,
    }


def _skipped(skipped: Iterable[tuple[str, str]]) -> dict[str, str]:
    text = ",".join(f"{run_id}:{reason}" for run_id, reason in skipped)
    return {SKIPPED_HEADER: text} if text else {}


@router.post(
    "/v1/runs/bulk-cancel",
    response_model=BulkCancelOut,
    openapi_extra=body_schema(BulkRunIds),
    summary="Cancel up to 100 runs (and their descendants), answered per id",
)
def bulk_cancel(principal: RunsWriter, services: ServicesDep, body: JsonBody) -> Response:
    command = to_model(body, BulkRunIds)
    return JsonTextResponse(_cancel_body(services.bulk.bulk_cancel(principal, command)))


@router.post(
    "/v1/runs/bulk-cancel-all",
    response_model=BulkCancelAllOut,
    openapi_extra=body_schema(BulkCancelAll),
    summary="Cancel the project's non-terminal runs matching the filters, oldest first, 1,000 per call",
)
def bulk_cancel_all(
    request: Request,
    principal: RunsWriter,
    services: ServicesDep,
    body: JsonBody,
    project_id: str | None = Query(None, description="Required (or the X-Project-Id header)"),
) -> Response:
    command = to_model(body, BulkCancelAll, empty_ok=True)
    result = services.bulk.bulk_cancel_all(principal, project_id or requested_project(request), command)
    answer = {
        **_cancel_body(result),
        "has_more": result.has_more,
        "descendants_canceled": result.descendants_canceled,
    }
    return JsonTextResponse(answer)


@router.post(
    "/v1/runs/bulk-replay",
    response_model=list[RunOut],
    openapi_extra=body_schema(BulkRunIds),
    responses=_SKIPPED_DOC,
    summary="Replay up to 100 terminal runs as new runs, in input order (skipped: X-Strait-Skipped)",
)
def bulk_replay(principal: RunsWriter, services: ServicesDep, body: JsonBody) -> Response:
    command = to_model(body, BulkRunIds)
    result = services.bulk.bulk_replay(principal, command, response_budget())
    return JsonTextResponse([run_view(run) for run in result.runs], headers=_skipped(result.skipped))


@router.post(
    "/v1/runs/bulk-dlq-replay",
    response_model=BulkDlqReplayOut,
    openapi_extra=body_schema(BulkDlqReplay),
    responses=_SKIPPED_DOC,
    summary="Put up to 500 dead-lettered runs back in the queue in place (skipped: X-Strait-Skipped)",
)
def bulk_dlq_replay(principal: RunsWriter, services: ServicesDep, body: JsonBody) -> Response:
    command = to_model(body, BulkDlqReplay)
    result = services.bulk.bulk_dlq_replay(principal, command, response_budget())
    answer = {"replayed": [run_view(run) for run in result.runs], "count": len(result.runs)}
    return JsonTextResponse(answer, headers=_skipped(result.skipped))
