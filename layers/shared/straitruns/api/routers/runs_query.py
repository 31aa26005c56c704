"""Reading runs: lists with filters, the dead-letter list, one run, children, lineage (spec 5)."""

from collections.abc import Callable

from fastapi import APIRouter, Query, Request, Response

from straitruns.api.deps import RunIdPath, RunsReader, ServicesDep, requested_project
from straitruns.api.responses import JsonTextResponse, next_page_headers
from straitruns.api.schemas import ERRORS, RunOut
from straitruns.api.views import run_view, run_view_size
from straitruns.domain import limits
from straitruns.domain.auth import Principal
from straitruns.domain.errors import BadRequest
from straitruns.domain.jsonvalue import InvalidJsonValue, MalformedJson, parse_json
from straitruns.domain.models import Run, TriggeredBy
from straitruns.domain.run_filter import RunFilter
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import parse_ts
from straitruns.services.pagination import decode_cursor, parse_limit
from straitruns.services.projects import acting_project
from straitruns.services.run_queries import Page
from straitruns.wiring import Services

router = APIRouter(tags=["runs"], responses=ERRORS)

_STATUS_VALUES = " | ".join(status.value for status in RunStatus)
_TRIGGERED_BY_VALUES = " | ".join(value.value for value in TriggeredBy)


def response_budget() -> Callable[[Run], bool]:
    """Refuses the run that would push a response past the 5 MB cap (spec 1.3)."""
    used = 0

    def fits(run: Run) -> bool:
        nonlocal used
        used += run_view_size(run)
        return used <= limits.RESPONSE_BYTES

    return fits


def page_response(request: Request, page: Page) -> Response:
    """The page as a JSON array, with `X-Next-Cursor` and `Link` when more may follow."""
    headers = next_page_headers(request, page.next_cursor)
    return JsonTextResponse([run_view(run) for run in page.runs], headers=headers)


_NO_SUCH_JOB = "\x00no such job"


def _job_filter(services: Services, principal: Principal, project: str, job_ref: str | None) -> str | None:
    """The `job_id` filter as a job id (a slug is resolved in the project); `_NO_SUCH_JOB` when
    the project has no such job, so the list is empty without reading any run."""
    if job_ref is None:
        return None
    return services.jobs.resolve_id(principal, job_ref, project) or _NO_SUCH_JOB


def _triggered_by(text: str | None) -> str | None:
    if text is None:
        return None
    if text not in set(TriggeredBy):
        raise BadRequest(f"invalid triggered_by; expected one of {_TRIGGERED_BY_VALUES}")
    return text


def _status(text: str | None) -> RunStatus | None:
    if text is None:
        return None
    try:
        return RunStatus(text)
    except ValueError:
        raise BadRequest(f"invalid status '{text}'; expected one of {_STATUS_VALUES}") from None


def _time(name: str, text: str | None) -> object:
    if text is None:
        return None
    try:
        return parse_ts(text)
    except ValueError:
        raise BadRequest(f"{name} must be an RFC 3339 date-time") from None


def _payload_query(text: str | None) -> object:
    if text is None:
        return None
    try:
        value = parse_json(text)
    except (MalformedJson, InvalidJsonValue) as exc:
        raise BadRequest(f"payload_contains is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("payload_contains must be a JSON object")
    return value


@router.get("/v1/runs", response_model=list[RunOut], summary="List runs, newest first")
def list_runs(
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    project_id: str | None = Query(None, description="Required"),
    status: str | None = Query(None, description=_STATUS_VALUES),
    metadata_key: str | None = Query(None),
    metadata_value: str | None = Query(None, description="Needs metadata_key"),
    triggered_by: str | None = Query(None),
    batch_id: str | None = Query(None),
    payload_contains: str | None = Query(None, description="A JSON object the payload must contain"),
    job_id: str | None = Query(None),
    tag_key: str | None = Query(None),
    tag_value: str | None = Query(None, description="Needs tag_key"),
    created_after: str | None = Query(None, description="RFC 3339; strictly after"),
    created_before: str | None = Query(None, description="RFC 3339; strictly before"),
    limit: str | None = Query(None, description="1..100, default 50"),
    cursor: str | None = Query(None, description="X-Next-Cursor of the previous page, or a date-time"),
) -> Response:
    project = str(acting_project(principal, project_id or requested_project(request), required=True))
    job = _job_filter(services, principal, project, job_id)
    if job is _NO_SUCH_JOB:
        return page_response(request, Page([], None))
    if metadata_value is not None and metadata_key is None:
        raise BadRequest("metadata_value needs metadata_key")
    if tag_value is not None and tag_key is None:
        raise BadRequest("tag_value needs tag_key")
    run_filter = RunFilter(
        project_id=project,
        status=_status(status),
        metadata_key=metadata_key,
        metadata_value=metadata_value,
        triggered_by=_triggered_by(triggered_by),
        batch_id=batch_id,
        payload_contains=_payload_query(payload_contains),
        job_id=job,
        tag_key=tag_key,
        tag_value=tag_value,
        created_after=_time("created_after", created_after),  # type: ignore[arg-type]
        created_before=_time("created_before", created_before),  # type: ignore[arg-type]
    )
    page_size = parse_limit(limit, limits.RUN_LIST_DEFAULT_LIMIT, limits.RUN_LIST_MAX_LIMIT)
    page = services.queries.list_runs(run_filter, page_size, decode_cursor(cursor), fits=response_budget())
    return page_response(request, page)


@router.get("/v1/runs/dlq", response_model=list[RunOut], summary="List dead-lettered runs, newest first")
def list_dead_letters(
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    project_id: str | None = Query(None, description="Required"),
    job_id: str | None = Query(None),
    limit: str | None = Query(None, description="1..100, default 50"),
    cursor: str | None = Query(None),
) -> Response:
    project = str(acting_project(principal, project_id or requested_project(request), required=True))
    page_size = parse_limit(limit, limits.RUN_LIST_DEFAULT_LIMIT, limits.RUN_LIST_MAX_LIMIT)
    job = _job_filter(services, principal, project, job_id)
    if job is _NO_SUCH_JOB:
        return page_response(request, Page([], None))
    page = services.queries.dead_letters(project, job, page_size, decode_cursor(cursor), response_budget())
    return page_response(request, page)


@router.get("/v1/runs/{runID}", response_model=RunOut, summary="Get a run")
def get_run(run_id: RunIdPath, principal: RunsReader, services: ServicesDep) -> Response:
    return JsonTextResponse(run_view(services.queries.get(principal, run_id)))


@router.get("/v1/runs/{runID}/children", response_model=list[RunOut], summary="List child runs, oldest first")
def list_children(
    run_id: RunIdPath,
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    limit: str | None = Query(None, description="1..1000, default 1000"),
    cursor: str | None = Query(None),
) -> Response:
    page_size = parse_limit(limit, limits.SUB_LIST_DEFAULT_LIMIT, limits.SUB_LIST_MAX_LIMIT)
    page = services.queries.children(principal, run_id, page_size, decode_cursor(cursor), response_budget())
    return page_response(request, page)


@router.get("/v1/runs/{runID}/lineage", response_model=list[RunOut], summary="The continue-as-new chain")
def lineage(
    run_id: RunIdPath,
    request: Request,
    principal: RunsReader,
    services: ServicesDep,
    limit: str | None = Query(None, description="1..1000, default 1000"),
    cursor: str | None = Query(None, description="X-Next-Cursor of the previous page, or a date-time"),
) -> Response:
    page_size = parse_limit(limit, limits.SUB_LIST_DEFAULT_LIMIT, limits.SUB_LIST_MAX_LIMIT)
    page = services.queries.lineage_page(principal, run_id, page_size, decode_cursor(cursor))
    return page_response(request, page)
