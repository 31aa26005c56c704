"""Authentication, projects and API keys (spec 1.1, 8)."""

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from straitruns.adapters.store.access import AccessStore
from straitruns.adapters.store.keys import created_sort_key
from straitruns.domain.auth import API_KEY_PREFIX, Principal, Scope
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Forbidden, NotFound, Unauthenticated, ValidationFailed
from straitruns.domain.ids import IdFactory, IdKind, is_valid_id
from straitruns.domain.models import ApiKey, Project
from straitruns.services.projects import acting_project

_KEY_HEX_CHARS = 64


@dataclass(frozen=True)
class Caller:
    """Who a credential is (`GET /v1/me`)."""

    kind: Literal["api_key", "admin"]
    project_id: str | None
    key_id: str | None
    name: str | None
    scopes: tuple[str, ...]


def _position(project: Project) -> str:
    return created_sort_key(project.created_at, project.id)


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def looks_like_api_key(token: str) -> bool:
    body = token.removeprefix(API_KEY_PREFIX)
    return (
        token.startswith(API_KEY_PREFIX)
        and len(body) == _KEY_HEX_CHARS
        and all(c in "0123456789abcdef" for c in body)
    )


class AccessService:
    def __init__(
        self, store: AccessStore, clock: Clock, ids: IdFactory, admin_secret: Callable[[], str]
    ) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.admin_secret = admin_secret

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an `Authorization: Bearer` header.

        Raises Unauthenticated for a missing, malformed, unknown, revoked or expired credential.
        """
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthenticated("missing bearer token")
        token = authorization[7:].strip()
        secret = self.admin_secret()
        # Bytes, not text: compare_digest refuses non-ASCII str, and a header may carry any byte.
        if (
            secret
            and not token.startswith(API_KEY_PREFIX)
            and hmac.compare_digest(token.encode("utf-8", "surrogateescape"), secret.encode("utf-8"))
        ):
            return Principal(is_admin=True, project_id=None)
        if not looks_like_api_key(token):
            raise Unauthenticated("invalid API key")
        key = self.store.api_key_by_hash(hash_api_key(token))
        if key is None:
            raise Unauthenticated("invalid API key")
        if key.revoked_at is not None:
            raise Unauthenticated("API key revoked")
        if key.expires_at is not None and key.expires_at <= self.clock.now():
            raise Unauthenticated("API key expired")
        return Principal(
            is_admin=False,
            project_id=key.project_id,
            scopes=frozenset(key.scopes),
            key_id=key.id,
            key_name=key.name,
        )

    def whoami(self, principal: Principal, requested_project: str | None) -> Caller:
        """What the caller is (`GET /v1/me`). The admin's project is the one it names, if any.

        Raises Forbidden when a key names another project, NotFound when the admin names a
        project that does not exist.
        """
        project_id = acting_project(principal, requested_project, required=False)
        if principal.is_admin:
            if project_id is not None and self._project(project_id) is None:
                raise NotFound("project not found")
            return Caller(kind="admin", project_id=project_id, key_id=None, name=None, scopes=(Scope.ALL,))
        return Caller(
            kind="api_key",
            project_id=project_id,
            key_id=principal.key_id,
            name=principal.key_name,
            scopes=tuple(sorted(principal.scopes)),
        )

    def list_projects(
        self, principal: Principal, limit: int, after: str | None
    ) -> tuple[list[Project], str | None]:
        """The admin: every project, oldest first, a page at a time. A key: its own project."""
        if principal.is_admin:
            return self.store.list_projects(limit, after)
        own = self._project(str(principal.project_id))
        return ([own] if own and (after is None or after < _position(own)) else []), None

    def list_api_keys(
        self, principal: Principal, project_id: str, limit: int, after: str | None
    ) -> tuple[list[ApiKey], str | None]:
        """The keys of a project, oldest first (never their secret). The admin, or a `*` key of
        that project. Raises NotFound or Forbidden."""
        self._check_key_admin(principal, project_id)
        if self._project(project_id) is None:
            raise NotFound("project not found")
        return self.store.list_api_keys(project_id, limit, after)

    def _project(self, project_id: str) -> Project | None:
        return self.store.get_project(project_id) if is_valid_id(IdKind.PROJECT, project_id) else None

    @staticmethod
    def _check_key_admin(principal: Principal, project_id: str) -> None:
        """The admin, or a `*` key of `project_id` (another project's key: NotFound)."""
        if principal.is_admin:
            return
        if principal.project_id != project_id:
            raise NotFound("project not found")
        if Scope.ALL not in principal.scopes:
            raise Forbidden("managing API keys needs the '*' scope")

    def create_project(self, principal: Principal, name: str) -> Project:
        """Admin only (Forbidden otherwise)."""
        if not principal.is_admin:
            raise Forbidden("only the admin secret may create projects")
        project = Project(id=self.ids.new(IdKind.PROJECT), name=name, created_at=self.clock.now())
        self.store.put_project(project)
        return project

    def create_api_key(
        self,
        principal: Principal,
        project_id: str,
        name: str,
        scopes: list[str] | None,
        expires_at: datetime | None,
    ) -> tuple[ApiKey, str]:
        """A new key of the project and its raw value (shown once). The admin, or a `*` key of
        that project, may do this. Raises NotFound, Forbidden or ValidationFailed."""
        self._check_key_admin(principal, project_id)
        if self._project(project_id) is None:
            raise NotFound("project not found")
        now = self.clock.now()
        if expires_at is not None and expires_at <= now:
            raise ValidationFailed("expires_at must be in the future", [{"field": "expires_at"}])
        raw = API_KEY_PREFIX + secrets.token_hex(32)
        key = ApiKey(
            id=self.ids.new(IdKind.API_KEY),
            project_id=project_id,
            name=name,
            scopes=tuple(dict.fromkeys(scopes or [Scope.ALL.value])),
            key_hash=hash_api_key(raw),
            created_at=now,
            expires_at=expires_at,
        )
        self.store.put_api_key(key)
        return key, raw

    def revoke_api_key(self, principal: Principal, key_id: str) -> None:
        """Revokes a key (idempotent). Raises NotFound for a key the caller may not see."""
        key = self.store.api_key_by_id(key_id) if is_valid_id(IdKind.API_KEY, key_id) else None
        if key is None or not (principal.is_admin or principal.project_id == key.project_id):
            raise NotFound("API key not found")
        if not principal.is_admin and Scope.ALL not in principal.scopes:
            raise Forbidden("revoking API keys needs the '*' scope")
        if key.revoked_at is None:
            self.store.put_revoked(key.model_copy(update={"revoked_at": self.clock.now()}))
