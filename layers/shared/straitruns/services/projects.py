"""Which project a request acts on (spec 1.1: project scoping)."""

from straitruns.domain.auth import Principal
from straitruns.domain.errors import BadRequest, Forbidden, NotFound
from straitruns.domain.ids import IdKind, is_valid_id


def acting_project(principal: Principal, requested: str | None, *, required: bool) -> str | None:
    """The project a request acts on.

    A key acts on its own project: naming another is Forbidden. The admin acts on the project it
    names (`?project_id=` or `X-Project-Id`). Raises BadRequest when `required` and none is named,
    NotFound when the admin names a text that is not a project id.
    """
    if required and not requested:
        raise BadRequest("project_id is required")
    if principal.is_admin:
        if requested and not is_valid_id(IdKind.PROJECT, requested):
            raise NotFound("project not found")  # never a store key of any size (see ids.py)
        return requested
    if requested and requested != principal.project_id:
        raise Forbidden("this API key belongs to another project")
    return principal.project_id


def can_see(principal: Principal, project_id: str) -> bool:
    """Whether the caller may see a resource of `project_id` (others are answered as missing)."""
    return principal.is_admin or principal.project_id == project_id
