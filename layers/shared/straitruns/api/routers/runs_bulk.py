"""Bulk operations on runs (spec 5 items 3, 8, 9, 10). Every route needs `runs:write`; each call
does bounded work and answers per run. Runs a replay call left out are named in `X-Strait-Skipped`
as `id:reason,...` (ids percent-encoded) and in the body: `skipped` of bulk-dlq-replay, and
bulk-replay's `?verbose=true` object (docs/operating-runs.md#x-strait-skipped)."""

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from straitruns.api.body import JsonBody, body_schema, to_model
from straitruns.api.deps import RunsWriter, ServicesDep, requested_project
from straitruns.api.responses import JsonTextResponse
from straitruns.api.routers.runs_query import response_budget
from straitruns.api.schemas import (
    ERRORS,
    BulkCancelAllOut,
    BulkCancelOut,
    BulkDlqReplayOut,
    BulkReplayVerboseOut,
    RunOut,
)
from straitruns.api.views import run_view
from straitruns.domain.errors import BadRequest
from straitruns.services.bulk import BulkCancelAll, BulkCancelResult, BulkDlqReplay, BulkRunIds

router = APIRouter(tags=["runs"], responses=ERRORS)

SKIPPED_HEADER = "X-Strait-Skipped"
_SKIPPED_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            SKIPPED_HEADER: {
                "description": (
                    "The ids left out, with reasons: `id:reason,...`, ids percent-encoded; past 4 KiB"
                    " it ends with `...:<n more>` (the body names them all; docs/operating-runs.md)"
                ),
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


# Response headers stay far below API Gateway's 10 KB: the body carries the whole list.
SKIPPED_HEADER_BYTES = 4096


def _skipped(skipped: Sequence[tuple[str, str]]) -> dict[str, str]:
    """`X-Strait-Skipped`: ASCII only (ids are user text: percent-encoded), at most 4 KiB; when the
    list is longer it ends with `...:<n> more`, never silently short."""
    entries = [f"{quote(run_id, safe='')}:{reason}" for run_id, reason in skipped]
    shown: list[str] = []
    used = 0
    for position, entry in enumerate(entries):
        rest = len(entries) - position
        marker = f"...:{rest} more"
        if used + len(entry) + 1 + (len(marker) + 1 if rest > 1 else 0) > SKIPPED_HEADER_BYTES:
            shown.append(marker)
            break
        shown.append(entry)
        used += len(entry) + 1
    return {SKIPPED_HEADER: ",".join(shown)} if shown else {}


def _skipped_body(skipped: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"id": run_id, "reason": reason} for run_id, reason in skipped]


def _flag(name: str, text: str | None) -> bool:
    if text is None or text == "false":
        return False
    if text == "true":
        return True
    raise BadRequest(f"{name} must be true or false")


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
    responses={200: {**_SKIPPED_DOC[200], "model": list[RunOut] | BulkReplayVerboseOut}},
    summary="Replay up to 100 terminal runs as new runs, in input order (skipped: X-Strait-Skipped)",
)
def bulk_replay(
    principal: RunsWriter,
    services: ServicesDep,
    body: JsonBody,
    verbose: str | None = Query(
        None,
        description='`true`: answer `{"runs": [...], "skipped": [{"id", "reason"}]}` instead of the array',
        json_schema_extra={"enum": ["true", "false"]},
    ),
) -> Response:
    show_skipped = _flag("verbose", verbose)
    command = to_model(body, BulkRunIds)
    result = services.bulk.bulk_replay(principal, command, response_budget())
    runs = [run_view(run) for run in result.runs]
    answer: Any = {"runs": runs, "skipped": _skipped_body(result.skipped)} if show_skipped else runs
    return JsonTextResponse(answer, headers=_skipped(result.skipped))


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
    answer = {
        "replayed": [run_view(run) for run in result.runs],
        "count": len(result.runs),
        "skipped": _skipped_body(result.skipped),
    }
    return JsonTextResponse(answer, headers=_skipped(result.skipped))
