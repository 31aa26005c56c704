"""Signed tokens (HS256 JWTs): run tokens for the in-run plane, SSE tokens for browser streams."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import jwt

from straitruns.domain.errors import Unauthenticated

RUN_TOKEN_ISSUER = "strait:run-token"
SSE_TOKEN_ISSUER = "strait:sse-token"
# A run token outlives its attempt's deadline by this much, so a call made at the deadline lands.
RUN_TOKEN_GRACE_SECS = 120


@dataclass(frozen=True)
class RunTokenClaims:
    run_id: str
    attempt: int
    generation: int


@dataclass(frozen=True)
class SseTokenClaims:
    project_id: str


class TokenSigner:
    """Issues and checks tokens with one signing key (>= 32 bytes), read on first use (from SSM
    when deployed, so not at cold start)."""

    def __init__(self, secret_source: Callable[[], str]) -> None:
        self._source = secret_source
        self._key: str | None = None

    @property
    def _secret(self) -> str:
        if self._key is None:
            key = self._source()
            if len(key.encode()) < 32:
                raise ValueError("the token signing key must be at least 32 bytes")
            self._key = key
        return self._key

    def run_token(
        self, run_id: str, attempt: int, generation: int, issued: datetime, deadline: datetime
    ) -> str:
        claims = {
            "iss": RUN_TOKEN_ISSUER,
            "sub": run_id,
            "attempt": attempt,
            "gen": generation,
            "iat": int(issued.timestamp()),
            "exp": int(deadline.timestamp()) + RUN_TOKEN_GRACE_SECS,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def check_run_token(self, token: str, now: datetime) -> RunTokenClaims:
        """The claims of a valid run token. Raises Unauthenticated (malformed, bad signature,
        wrong issuer, expired)."""
        claims = self._decode(token, RUN_TOKEN_ISSUER, now)
        try:
            attempt, generation = claims["attempt"], claims["gen"]
            if not isinstance(attempt, int) or not isinstance(generation, int):
                raise TypeError("attempt and gen must be integers")
            return RunTokenClaims(str(claims["sub"]), attempt, generation)
        except (KeyError, TypeError) as exc:
            raise Unauthenticated("invalid run token") from exc

    def sse_token(self, project_id: str, issued: datetime, expires: datetime) -> str:
        claims = {
            "iss": SSE_TOKEN_ISSUER,
            "sub": project_id,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def check_sse_token(self, token: str, now: datetime) -> SseTokenClaims:
        claims = self._decode(token, SSE_TOKEN_ISSUER, now)
        return SseTokenClaims(str(claims.get("sub", "")))

    def _decode(self, token: str, issuer: str, now: datetime) -> dict[str, object]:
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=issuer,
                options={"require": ["exp", "iss", "sub"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid token") from exc
        expires = claims.get("exp")
        if not isinstance(expires, int) or expires <= now.timestamp():
            raise Unauthenticated("token expired")
        return claims
