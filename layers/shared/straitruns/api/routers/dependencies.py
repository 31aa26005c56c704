"""Job dependencies (spec 2.2, 4.8, 8): add, list, delete."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from straitruns.api.body import JsonBody, body_schema, to_model
from straitruns.api.deps import JobIdPath, JobsReader, JobsWriter, ServicesDep, requested_project
from straitruns.api.responses import JsonTextResponse
from straitruns.api.schemas import ERRORS, DependencyOut
from straitruns.domain.dependencies import Dependency
from straitruns.domain.timefmt import format_ts
from straitruns.services.dependencies import CreateDependency

router = APIRouter(tags=["jobs"], responses=ERRORS)

DependencyIdPath = Annotated[str, Path(alias="depID")]


def dependency_view(dependency: Dependency) -> dict[str, Any]:
    return {
        "id": dependency.id,
        "job_id": dependency.job_id,
        "depends_on_job_id": dependency.depends_on_job_id,
        "condition": dependency.condition.value,
        "created_at": format_ts(dependency.created_at),
    }


@router.post(
    "/v1/jobs/{jobID}/dependencies",
    status_code=201,
    response_model=DependencyOut,
    openapi_extra=body_schema(CreateDependency),
    summary="Make the job depend on another job of its project (a cycle is refused with 422)",
)
def add_dependency(
    job_id: JobIdPath, request: Request, principal: JobsWriter, services: ServicesDep, body: JsonBody
) -> Response:
    command = to_model(body, CreateDependency)
    dependency = services.dependencies.add(principal, job_id, command, requested_project(request))
    return JsonTextResponse(dependency_view(dependency), status_code=201)


@router.get(
    "/v1/jobs/{jobID}/dependencies",
    response_model=list[DependencyOut],
    summary="List the job's dependencies, oldest first",
)
def list_dependencies(
    job_id: JobIdPath, request: Request, principal: JobsReader, services: ServicesDep
) -> Response:
    dependencies = services.dependencies.list_dependencies(principal, job_id, requested_project(request))
    return JsonTextResponse([dependency_view(dependency) for dependency in dependencies])


@router.delete(
    "/v1/jobs/{jobID}/dependencies/{depID}",
    status_code=204,
    summary="Delete a dependency (waiting runs it alone held back are released)",
)
def delete_dependency(
    job_id: JobIdPath,
    dependency_id: DependencyIdPath,
    request: Request,
    principal: JobsWriter,
    services: ServicesDep,
) -> Response:
    services.dependencies.delete(principal, job_id, dependency_id, requested_project(request))
    return Response(status_code=204)
