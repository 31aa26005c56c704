"""The in-run plane as tests use it: runs put in `executing` as the dispatcher does, their run
tokens, and a small client for `/sdk/v1/runs/{runID}/...`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from straitruns.adapters.tokens import TokenSigner
from straitruns.domain.models import Run
from tests.support.engine import Engine

if TYPE_CHECKING:
    import httpx
    from fastapi.testclient import TestClient

    from straitruns.wiring import Services
    from tests.support.app import ApiClient


def run_token(
    services: Services, run: Run, *, generation: int | None = None, secret: str | None = None
) -> str:
    """A run token for the run's current attempt (or another `generation`), signed as the
    dispatcher signs it (or with another `secret`)."""
    signer = TokenSigner(lambda: secret or services.settings.run_token_secret)
    now = services.clock.now()
    deadline = run.timeout_at or now + timedelta(seconds=300)
    return signer.run_token(
        run.id, run.attempt, run.generation if generation is None else generation, now, deadline
    )


@dataclass
class Sdk:
    """`/sdk/v1/runs/<run_id>/...` with a run token, over any client (in-process or real HTTP)."""

    http: TestClient | httpx.Client
    run_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, name: str) -> str:
        return f"/sdk/v1/runs/{self.run_id}/{name}"

    def post(self, name: str, body: Any = None) -> httpx.Response:
        return self.http.post(self.url(name), json=body, headers=self.headers)

    def get(self, name: str) -> httpx.Response:
        return self.http.get(self.url(name), headers=self.headers)

    def delete(self, name: str) -> httpx.Response:
        return self.http.delete(self.url(name), headers=self.headers)

    def ok(self, name: str, body: Any = None, status: int = 201) -> Any:
        """POSTs and asserts `status`; returns the body."""
        response = self.post(name, body)
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        return response.json() if response.content else None


def start_run(api: ApiClient, body: dict[str, Any] | None = None, job: str = "job") -> tuple[Run, Sdk]:
    """Triggers a run of `job` and moves it to `executing` as the dispatcher does before its call;
    returns it and its in-run client."""
    triggered = api.run(body or {"payload": {"order": 7}}, job=job)
    run = Engine(api.services).start_attempt(triggered["id"])
    return run, Sdk(api.http, run.id, run_token(api.services, run))


def read(api: ApiClient, run_id: str, what: str, **params: Any) -> Any:
    """GET /v1/runs/<run_id>/<what> with the project's key; asserts 200 and returns the body."""
    response = api.http.get(f"/v1/runs/{run_id}/{what}", params=params, headers=api.auth)
    assert response.status_code == 200, f"{what}: {response.status_code} {response.text}"
    return response.json()
