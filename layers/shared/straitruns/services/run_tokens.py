"""Run-token authorization of the in-run plane (spec 1.1, 6)."""

from straitruns.adapters.store.runs import RunStore
from straitruns.adapters.tokens import TokenSigner
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict, Forbidden, Gone, NotFound, Unauthenticated
from straitruns.domain.in_run import SdkCall, accepts
from straitruns.domain.models import Run


class RunTokenGuard:
    def __init__(self, tokens: TokenSigner, runs: RunStore, clock: Clock) -> None:
        self.tokens = tokens
        self.runs = runs
        self.clock = clock

    def authorize(self, authorization: str | None, run_id: str, call: SdkCall) -> Run:
        """The run a run token may make `call` on, checked in the order of spec 1.1:

        1. no bearer token, or one that is malformed, forged, of another issuer or expired:
           Unauthenticated (401);
        2. a token of another run: Forbidden (403), without looking the path's run up;
        3. the run does not exist: NotFound (404);
        4. the run is terminal: Gone (410);
        5. the token is of an older dispatch generation (stale): Unauthenticated (401);
        6. the run's status does not accept the call (spec 6): Conflict (409).
        """
        token = _bearer(authorization)
        claims = self.tokens.check_run_token(token, self.clock.now())
        if claims.run_id != run_id:
            raise Forbidden("this run token belongs to another run")
        run = self.runs.get(run_id)
        if run is None:
            raise NotFound("run not found")
        if run.is_terminal:
            raise Gone(f"the run has ended ({run.status.value})")
        if claims.generation != run.generation:
            raise Unauthenticated("stale run token: the run was dispatched again since it was issued")
        if not accepts(run.status, call):
            raise Conflict(f"a {run.status.value} run does not accept {call.value}")
        return run


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthenticated("missing bearer run token")
    return authorization[7:].strip()
