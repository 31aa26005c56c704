"""SSE tokens (spec 1.1): short-lived credentials a browser's EventSource passes as `?token=`,
because it cannot send an Authorization header.

A token is an HS256 JWT (`iss = "strait:sse-token"`, `sub` = the project) signed with the run-token
key through TokenSigner: the issuer tells the two kinds apart, so neither is accepted as the other.
It grants `runs:read` on its project's streams and nothing else. An API key is never accepted in a
URL (keys in URLs end up in logs).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from straitruns.adapters.tokens import TokenSigner
from straitruns.domain.auth import API_KEY_PREFIX, Principal, Scope
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Unauthenticated
from straitruns.services.commands import Command
from straitruns.services.projects import acting_project


class CreateSseToken(Command):
    """`POST /v1/sse-token` takes no fields (an empty body or `{}`)."""


@dataclass(frozen=True)
class SseToken:
    token: str
    expires_at: datetime


class SseTokenService:
    def __init__(self, signer: TokenSigner, clock: Clock, ttl_secs: int) -> None:
        """`ttl_secs` is the lifetime of a token (STRAIT_SSE_TOKEN_TTL_SECS)."""
        self.signer = signer
        self.clock = clock
        self.ttl_secs = ttl_secs

    def issue(self, principal: Principal, requested_project: str | None) -> SseToken:
        """A token for the caller's project (the admin names one with `project_id`). The caller
        has `runs:read` (checked by the route). Raises BadRequest when the admin names no project,
        Forbidden when a key names another project."""
        project = acting_project(principal, requested_project, required=principal.is_admin)
        now = self.clock.now()
        # JWT times are whole seconds: `expires_at` is exactly the token's `exp`.
        expires = datetime.fromtimestamp(int((now + timedelta(seconds=self.ttl_secs)).timestamp()), UTC)
        return SseToken(self.signer.sse_token(str(project), now, expires), expires)

    def authenticate(self, token: str) -> Principal:
        """The caller behind `?token=`: a reader of the token's project.

        Raises Unauthenticated for an API key, a malformed, forged or expired token, or a token of
        another kind (a run token).
        """
        if not token:
            raise Unauthenticated("the token is empty")
        if token.startswith(API_KEY_PREFIX):
            raise Unauthenticated("?token= takes an SSE token from POST /v1/sse-token, never an API key")
        claims = self.signer.check_sse_token(token, self.clock.now())
        if not claims.project_id:
            raise Unauthenticated("invalid token")
        return Principal(
            is_admin=False, project_id=claims.project_id, scopes=frozenset({Scope.RUNS_READ.value})
        )
