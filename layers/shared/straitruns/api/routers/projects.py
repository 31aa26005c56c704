"""Projects, API keys and the caller itself (spec 8; docs/api-behaviour.md#projects-keys-and-me)."""

from fastapi import APIRouter, Query, Request, Response

from straitruns.api.body import JsonBody, body_schema, to_model
from straitruns.api.deps import KeyIdPath, PrincipalDep, ProjectIdPath, ServicesDep, requested_project
from straitruns.api.responses import JsonTextResponse, next_page_headers
from straitruns.api.schemas import ERRORS, ApiKeyOut, MeOut, ProjectOut
from straitruns.api.views import api_key_view, caller_view, project_view
from straitruns.services.commands import CreateApiKey, CreateProject
from straitruns.services.pagination import decode_cursor, encode_cursor, parse_limit

router = APIRouter(tags=["projects"], responses=ERRORS)

# Projects and keys are few: one page holds up to 100, like the job list.
_ACCESS_LIST_MAX = 100
_LIMIT_DOC = f"1..{_ACCESS_LIST_MAX} (default {_ACCESS_LIST_MAX})"


def _page_bounds(limit: str | None, cursor: str | None) -> tuple[int, str | None]:
    decoded = decode_cursor(cursor)
    return parse_limit(limit, _ACCESS_LIST_MAX, _ACCESS_LIST_MAX), decoded.bound(
        ascending=True
    ) if decoded else None


@router.get(
    "/v1/me", response_model=MeOut, summary="Who this credential is: its kind, project, key and scopes"
)
def get_me(request: Request, principal: PrincipalDep, services: ServicesDep) -> Response:
    caller = services.access.whoami(principal, requested_project(request))
    return JsonTextResponse(caller_view(caller))


@router.get(
    "/v1/projects",
    response_model=list[ProjectOut],
    summary="List projects, oldest first (admin: every project; a key: its own)",
)
def list_projects(
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    limit: str | None = Query(None, description=_LIMIT_DOC),
    cursor: str | None = Query(None),
) -> Response:
    page_size, after = _page_bounds(limit, cursor)
    projects, last = services.access.list_projects(principal, page_size, after)
    headers = next_page_headers(request, encode_cursor(last) if last else None)
    return JsonTextResponse([project_view(project) for project in projects], headers=headers)


@router.get(
    "/v1/projects/{projectID}/api-keys",
    response_model=list[ApiKeyOut],
    summary="List a project's API keys, oldest first, without secrets (admin, or a '*' key of it)",
)
def list_api_keys(
    project_id: ProjectIdPath,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    limit: str | None = Query(None, description=_LIMIT_DOC),
    cursor: str | None = Query(None),
) -> Response:
    page_size, after = _page_bounds(limit, cursor)
    keys, last = services.access.list_api_keys(principal, project_id, page_size, after)
    headers = next_page_headers(request, encode_cursor(last) if last else None)
    return JsonTextResponse([api_key_view(key) for key in keys], headers=headers)


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
