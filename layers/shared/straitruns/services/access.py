"""Authentication, projects and API keys (spec 1.1, 8)."""

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime

from straitruns.adapters.store.access import AccessStore
from straitruns.domain.auth import API_KEY_PREFIX, Principal, Scope
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Forbidden, NotFound, Unauthenticated, ValidationFailed
from straitruns.domain.ids import IdFactory, IdKind, is_valid_id
from straitruns.domain.models import ApiKey, Project

_KEY_HEX_CHARS = 64


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
        if secret and not token.startswith(API_KEY_PREFIX) and hmac.compare_digest(token, secret):
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
            is_admin=False, project_id=key.project_id, scopes=frozenset(key.scopes), key_id=key.id
        )

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
        if not principal.is_admin:
            if principal.project_id != project_id:
                raise NotFound("project not found")
            if Scope.ALL not in principal.scopes:
                raise Forbidden("creating API keys needs the '*' scope")
        if not is_valid_id(IdKind.PROJECT, project_id) or self.store.get_project(project_id) is None:
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
