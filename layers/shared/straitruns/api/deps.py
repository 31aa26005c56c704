"""FastAPI dependencies: the services, the caller, scope checks (typed aliases, overridable)."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from straitruns.domain.auth import Principal, Scope
from straitruns.domain.errors import Forbidden, ValidationFailed
from straitruns.wiring import Services

_bearer = HTTPBearer(auto_error=False, description="An API key (`strait_...`) or the admin secret.")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services_factory()
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_principal(
    request: Request,
    services: ServicesDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller (401 otherwise)."""
    return services.access.authenticate(request.headers.get("authorization"))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def requires(scope: Scope) -> Callable[[Principal], Principal]:
    """A dependency that lets the caller through only with `scope` (403 otherwise)."""

    def check(principal: PrincipalDep) -> Principal:
        if not principal.has_scope(scope):
            raise Forbidden(f"this API key lacks the '{scope.value}' scope")
        return principal

    return check


def requested_project(request: Request) -> str | None:
    """The project named by `?project_id=` or the `X-Project-Id` header."""
    return request.query_params.get("project_id") or request.headers.get("x-project-id")


def utf8_header(request: Request, name: str) -> str | None:
    """A header's value read as UTF-8 (HTTP hands over bytes; Starlette reads them as Latin-1, which
    would make `Idempotency-Key: café` another key than `"café"` in a body). Raises ValidationFailed
    for bytes that are not UTF-8."""
    value = request.headers.get(name)
    if value is None or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise ValidationFailed(
            f"the {name} header is not UTF-8", [{"field": name, "error": "not UTF-8"}]
        ) from None


RunsReader = Annotated[Principal, Depends(requires(Scope.RUNS_READ))]
RunsWriter = Annotated[Principal, Depends(requires(Scope.RUNS_WRITE))]
JobsReader = Annotated[Principal, Depends(requires(Scope.JOBS_READ))]
JobsWriter = Annotated[Principal, Depends(requires(Scope.JOBS_WRITE))]
JobsTrigger = Annotated[Principal, Depends(requires(Scope.JOBS_TRIGGER))]

# Path parameters keep the reference's names (runID, jobID, ...) in the OpenAPI document.
RunIdPath = Annotated[str, Path(alias="runID")]
JobIdPath = Annotated[str, Path(alias="jobID")]
BatchIdPath = Annotated[str, Path(alias="batchID")]
ProjectIdPath = Annotated[str, Path(alias="projectID")]
KeyIdPath = Annotated[str, Path(alias="keyID")]
