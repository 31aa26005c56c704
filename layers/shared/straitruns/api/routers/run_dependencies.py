"""A run's dependency status (spec 5 item 21)."""

from fastapi import APIRouter, Response

from straitruns.api.deps import RunIdPath, RunsReader, ServicesDep
from straitruns.api.responses import JsonTextResponse
from straitruns.api.routers.dependencies import dependency_view
from straitruns.api.schemas import ERRORS, DependencyStatusOut

router = APIRouter(tags=["runs"], responses=ERRORS)


@router.get(
    "/v1/runs/{runID}/dependency-status",
    response_model=DependencyStatusOut,
    summary="The run's job dependencies and whether the run satisfies them now",
)
def dependency_status(run_id: RunIdPath, principal: RunsReader, services: ServicesDep) -> Response:
    status = services.dependencies.status(principal, run_id)
    return JsonTextResponse(
        {
            "run_id": status.run.id,
            "job_id": status.run.job_id,
            "status": status.run.status.value,
            "dependencies": [
                {
                    **dependency_view(state.dependency),
                    "satisfied": state.met,
                    "decided_by_run_id": state.deciding.run_id if state.deciding else None,
                    "decided_by_status": state.deciding.status.value if state.deciding else None,
                }
                for state in status.states
            ],
            "dependencies_satisfied": status.satisfied,
        }
    )
