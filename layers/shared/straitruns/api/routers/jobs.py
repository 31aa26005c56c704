"""Jobs, triggers and batches (spec 2.2, 8)."""

from fastapi import APIRouter, Query, Request, Response

from straitruns.api.body import JsonBody, body_schema, to_model
from straitruns.api.deps import (
    BatchIdPath,
    JobIdPath,
    JobsReader,
    JobsTrigger,
    JobsWriter,
    RunsReader,
    ServicesDep,
    requested_project,
    utf8_header,
)
from straitruns.api.responses import JsonTextResponse
from straitruns.api.schemas import ERRORS, BatchOut, BulkTriggerOut, JobOut, RunOut
from straitruns.api.views import batch_view, job_view, run_view
from straitruns.domain.errors import ValidationFailed
from straitruns.services.commands import BulkTrigger, CreateJob, TriggerRun, UpdateJob
from straitruns.services.pagination import decode_cursor, encode_cursor, parse_limit
from straitruns.services.projects import acting_project

router = APIRouter(tags=["jobs"], responses=ERRORS)

_JOB_LIST_MAX = 100


@router.post(
    "/v1/jobs",
    status_code=201,
    response_model=JobOut,
    openapi_extra=body_schema(CreateJob),
    summary="Create a job",
)
def create_job(request: Request, principal: JobsWriter, services: ServicesDep, body: JsonBody) -> Response:
    project_id = acting_project(principal, requested_project(request), required=principal.is_admin)
    command = to_model(body, CreateJob)
    job = services.jobs.create(str(project_id), command)
    return JsonTextResponse(job_view(job), status_code=201)


@router.get("/v1/jobs", response_model=list[JobOut], summary="List the jobs of a project, oldest first")
def list_jobs(
    request: Request,
    principal: JobsReader,
    services: ServicesDep,
    project_id: str | None = Query(None),
    limit: str | None = Query(None, description="1..100 (default 100)"),
    cursor: str | None = Query(None),
) -> Response:
    project = acting_project(principal, project_id or requested_project(request), required=principal.is_admin)
    page_size = parse_limit(limit, _JOB_LIST_MAX, _JOB_LIST_MAX)
    decoded = decode_cursor(cursor)
    after = decoded.bound(ascending=True) if decoded else None
    jobs, last = services.jobs.list_jobs(str(project), page_size, after)
    headers = {"X-Next-Cursor": encode_cursor(last)} if last else {}
    return JsonTextResponse([job_view(job) for job in jobs], headers=headers)


@router.get("/v1/jobs/{jobID}", response_model=JobOut, summary="Get a job by id or slug")
def get_job(job_id: JobIdPath, request: Request, principal: JobsReader, services: ServicesDep) -> Response:
    job = services.jobs.get(principal, job_id, requested_project(request))
    return JsonTextResponse(job_view(job))


@router.patch(
    "/v1/jobs/{jobID}",
    response_model=JobOut,
    openapi_extra=body_schema(UpdateJob),
    summary="Update a job (its version grows by one)",
)
def update_job(
    job_id: JobIdPath, request: Request, principal: JobsWriter, services: ServicesDep, body: JsonBody
) -> Response:
    command = to_model(body, UpdateJob, empty_ok=True)
    job = services.jobs.update(principal, job_id, command, requested_project(request))
    return JsonTextResponse(job_view(job))


@router.delete("/v1/jobs/{jobID}", status_code=204, summary="Delete a job and cancel its non-terminal runs")
def delete_job(job_id: JobIdPath, request: Request, principal: JobsWriter, services: ServicesDep) -> Response:
    services.jobs.delete(principal, job_id, requested_project(request))
    return Response(status_code=204)


@router.post(
    "/v1/jobs/{jobID}/trigger",
    status_code=201,
    response_model=RunOut,
    openapi_extra=body_schema(TriggerRun, required=False),
    summary="Trigger a run (201; an idempotent repeat answers 200 with Idempotent-Replayed: true)",
)
def trigger(
    job_id: JobIdPath, request: Request, principal: JobsTrigger, services: ServicesDep, body: JsonBody
) -> Response:
    job, active = services.jobs.get_for_trigger(
        principal, job_id, requested_project(request), [_concurrency_key(body)]
    )
    command = to_model(body, TriggerRun, empty_ok=True)
    header_key = utf8_header(request, "Idempotency-Key")
    alternate = utf8_header(request, "X-Idempotency-Key")
    if header_key is not None and alternate is not None and header_key != alternate:
        raise ValidationFailed(
            "Idempotency-Key and X-Idempotency-Key disagree",
            [{"field": "Idempotency-Key", "error": "differs from X-Idempotency-Key"}],
        )
    outcome = services.triggers.trigger(principal, job, command, header_key or alternate, active_slots=active)
    if outcome.created:
        return JsonTextResponse(run_view(outcome.run), status_code=201)
    return JsonTextResponse(run_view(outcome.run), headers={"Idempotent-Replayed": "true"})


@router.post(
    "/v1/jobs/{jobID}/trigger/bulk",
    status_code=201,
    response_model=BulkTriggerOut,
    openapi_extra=body_schema(BulkTrigger),
    summary="Trigger up to 500 runs as one batch",
)
def bulk_trigger(
    job_id: JobIdPath, request: Request, principal: JobsTrigger, services: ServicesDep, body: JsonBody
) -> Response:
    items = body.get("items") if isinstance(body, dict) else None
    keys = [_concurrency_key(item) for item in items] if isinstance(items, list) else []
    job, active = services.jobs.get_for_trigger(principal, job_id, requested_project(request), keys)
    command = to_model(body, BulkTrigger)
    outcome = services.triggers.bulk_trigger(principal, job, command, active)
    runs = [
        run_view(entry) if not isinstance(entry, Exception) else {"error": entry.message, "index": index}
        for index, entry in enumerate(outcome.entries)
    ]
    body = {"batch_id": outcome.batch_id, "runs": runs, "total": len(runs), "created": outcome.created}
    return JsonTextResponse(body, status_code=201 if outcome.batch_id else 200)


@router.get("/v1/batches/{batchID}", response_model=BatchOut, tags=["batches"], summary="Get a batch")
def get_batch(batch_id: BatchIdPath, principal: RunsReader, services: ServicesDep) -> Response:
    batch, counts = services.triggers.get_batch(principal, batch_id)
    return JsonTextResponse(batch_view(batch, counts))


def _concurrency_key(body: object) -> str | None:
    """The concurrency key a trigger body names, read before the body is validated (the job is
    looked up first, with the counters the run may need)."""
    key = body.get("concurrency_key") if isinstance(body, dict) else None
    return key if isinstance(key, str) else None
