"""Projects and API keys (spec 8)."""

from fastapi import APIRouter, Response

from straitruns.api.body import JsonBody, body_schema, to_model
from straitruns.api.deps import KeyIdPath, PrincipalDep, ProjectIdPath, ServicesDep
from straitruns.api.responses import JsonTextResponse
from straitruns.api.schemas import ERRORS, ApiKeyOut, ProjectOut
from straitruns.api.views import api_key_view, project_view
from straitruns.services.commands import CreateApiKey, CreateProject

router = APIRouter(tags=["projects"], responses=ERRORS)


@router.post(
    "/v1/projects",
    status_code=201,
    response_model=ProjectOut,
    openapi_extra=body_schema(CreateProject),
    summary="Create a project (admin secret)",
)
def create_project(principal: PrincipalDep, services: ServicesDep, body: JsonBody) -> Response:
    command = to_model(body, CreateProject)
    project = services.access.create_project(principal, command.name)
    return JsonTextResponse(project_view(project), status_code=201)


@router.post(
    "/v1/projects/{projectID}/api-keys",
    status_code=201,
    response_model=ApiKeyOut,
    openapi_extra=body_schema(CreateApiKey),
    summary="Create an API key (admin, or a '*' key of the project); the raw key is shown only here",
)
def create_api_key(
    project_id: ProjectIdPath,
    principal: PrincipalDep,
    services: ServicesDep,
    body: JsonBody,
) -> Response:
    command = to_model(body, CreateApiKey)
    key, raw_key = services.access.create_api_key(
        principal, project_id, command.name, command.scopes, command.expires_at
    )
    return JsonTextResponse(api_key_view(key, raw_key), status_code=201)


@router.delete("/v1/api-keys/{keyID}", status_code=204, summary="Revoke an API key")
def revoke_api_key(
    key_id: KeyIdPath,
    principal: PrincipalDep,
    services: ServicesDep,
) -> Response:
    services.access.revoke_api_key(principal, key_id)
    return Response(status_code=204)
