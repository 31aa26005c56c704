"""Who is calling and what they may do (spec 1.1)."""

from dataclasses import dataclass, field
from enum import StrEnum

API_KEY_PREFIX = "strait_"
ADMIN_SECRET_MIN_CHARS = 32


class Scope(StrEnum):
    RUNS_READ = "runs:read"
    RUNS_WRITE = "runs:write"
    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"
    JOBS_TRIGGER = "jobs:trigger"
    ALL = "*"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the admin, or an API key of one project."""

    is_admin: bool
    project_id: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)
    key_id: str | None = None
    key_name: str | None = None

    def has_scope(self, scope: Scope) -> bool:
        return self.is_admin or Scope.ALL in self.scopes or scope in self.scopes

    @property
    def created_by(self) -> str:
        """The `created_by` value of things this caller creates."""
        return "admin" if self.is_admin else f"apikey:{self.key_id}"


def valid_admin_secret(secret: str) -> bool:
    """An admin secret has at least 32 characters and never looks like an API key."""
    return len(secret) >= ADMIN_SECRET_MIN_CHARS and not secret.startswith(API_KEY_PREFIX)
