"""Building the service for tests: moto-backed (in-process) or on DynamoDB Local, and a small
client that creates projects, keys and jobs through the public API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from straitruns.adapters.clock import FrozenClock
from straitruns.api.app import create_app
from straitruns.local.provision import QueueUrls, ensure_queues, ensure_table
from straitruns.local.template import load_template, queue_specs, table_spec
from straitruns.settings import Settings
from straitruns.wiring import Services, build_services
from tests.support.backends import FAKE_AWS_ENV
from tests.support.effects import MOTO_CLIENT_CONFIG, EffectsPump

ADMIN_SECRET = "test-admin-secret-0123456789abcdef-xyz"
RUN_TOKEN_SECRET = "test-run-token-secret-0123456789abcdef"
TABLE_NAME = "strait-runs-test"


def provision(dynamodb: Any, sqs: Any, table_name: str = TABLE_NAME) -> QueueUrls:
    """The table and queues of template.yaml, created on the given clients."""
    template = load_template()
    ensure_table(dynamodb, table_name, table_spec(template))
    return ensure_queues(sqs, f"{table_name}-runs", f"{table_name}-dead-letters", queue_specs(template))


def make_services(
    dynamodb: Any, sqs: Any, clock: Any, table_name: str = TABLE_NAME, **overrides: Any
) -> Services:
    urls = provision(dynamodb, sqs, table_name)
    values: dict[str, Any] = {
        "table_name": table_name,
        "run_queue_url": urls.run_queue_url,
        "dead_letter_queue_url": urls.dead_letter_queue_url,
        "admin_secret": ADMIN_SECRET,
        "run_token_secret": RUN_TOKEN_SECRET,
        "allow_private_endpoints": True,
        **overrides,
    }
    settings = Settings(**values)
    return build_services(settings, dynamodb_client=dynamodb, sqs_client=sqs, clock=clock)


@dataclass
class ApiClient:
    """The public API, as a test uses it. `key` is a ready `*` key of `project_id`."""

    http: TestClient
    services: Services
    clock: FrozenClock
    project_id: str = ""
    key: str = ""
    jobs: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_SECRET}"}

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def new_project(self, name: str = "test") -> tuple[str, str]:
        """Creates a project and a `*` key; returns (project id, raw key)."""
        project = self.http.post("/v1/projects", json={"name": name}, headers=self.admin)
        assert project.status_code == 201, project.text
        project_id = project.json()["id"]
        return project_id, self.new_key(project_id)

    def new_key(self, project_id: str, scopes: list[str] | None = None, **extra: Any) -> str:
        body: dict[str, Any] = {"name": "key", **extra}
        if scopes is not None:
            body["scopes"] = scopes
        response = self.http.post(f"/v1/projects/{project_id}/api-keys", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    def create_job(self, slug: str = "job", **fields: Any) -> dict[str, Any]:
        body = {"slug": slug, "name": slug, "endpoint_url": "http://127.0.0.1:9/run", **fields}
        response = self.http.post("/v1/jobs", json=body, headers=self.auth)
        assert response.status_code == 201, response.text
        job: dict[str, Any] = response.json()
        self.jobs[slug] = job["id"]
        return job

    def trigger(self, job_id: str, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        return self.http.post(f"/v1/jobs/{job_id}/trigger", json=body or {}, headers={**self.auth, **headers})

    def trigger_raw(self, job_id: str, text: str) -> httpx.Response:
        """Sends the body text exactly (numbers Python would round survive)."""
        headers = {**self.auth, "Content-Type": "application/json"}
        return self.http.post(f"/v1/jobs/{job_id}/trigger", content=text.encode(), headers=headers)

    def run(self, body: dict[str, Any] | None = None, job: str = "job") -> dict[str, Any]:
        """Triggers one run of `job` (created on first use) and returns it."""
        if job not in self.jobs:
            self.create_job(job)
        response = self.trigger(self.jobs[job], body)
        assert response.status_code == 201, response.text
        run: dict[str, Any] = response.json()
        return run

    def list_runs(self, **params: Any) -> httpx.Response:
        query = {"project_id": self.project_id, **params}
        if isinstance(query.get("payload_contains"), dict):
            query["payload_contains"] = json.dumps(query["payload_contains"])
        return self.http.get("/v1/runs", params=query, headers=self.auth)


def effects_pump(services: Services) -> EffectsPump:
    """The effects pump of `services` (one per services, so it keeps its place in the stream)."""
    pump: EffectsPump | None = getattr(services, "_effects_pump", None)
    if pump is None:
        pump = EffectsPump(services)
        services._effects_pump = pump  # type: ignore[attr-defined]
    return pump


class EffectsTestClient(TestClient):
    """A TestClient that, before and after each request, plays the stream event source of the
    effects function: what a status change causes elsewhere has happened when the response is
    read, as it has within a moment when deployed."""

    def __init__(self, app: Any, services: Services, pump: bool = True) -> None:
        super().__init__(app)
        self._services = services
        self._held = not pump

    def request(self, *args: Any, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        if not self._held:  # what a test changed through the services directly, first
            effects_pump(self._services).pump()
        response = super().request(*args, **kwargs)
        if not self._held:
            effects_pump(self._services).pump()
        return response

    @contextmanager
    def effects_held(self) -> Iterator[None]:
        """Requests made inside the block leave their effects pending (a test then sees the
        moment between a change and its effects, and delivers them itself)."""
        held, self._held = self._held, True
        try:
            yield
        finally:
            self._held = held


def api_client(services: Services, clock: FrozenClock, *, pump_effects: bool = True) -> ApiClient:
    """The API on `services` with a project and a `*` key; `pump_effects` False leaves the effects
    of every change to another event source (a test's own worker process)."""
    client = ApiClient(
        EffectsTestClient(create_app(lambda: services), services, pump_effects), services, clock
    )
    client.project_id, client.key = client.new_project()
    return client


def assert_error(response: httpx.Response, status: int, code: str, *fields: str) -> dict[str, Any]:
    """The response is the spec 1.2 error envelope with `status` and `code`; `details` name each
    of `fields`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["error"], body
    assert body["message"] == body["error"]
    assert body["request_id"], body
    assert response.headers["x-request-id"] == body["request_id"]
    named = [str(detail.get("field", "")) for detail in body.get("details", [])]
    for wanted in fields:
        assert any(name == wanted or name.startswith(f"{wanted}.") for name in named), (wanted, body)
    return body


@contextmanager
def moto_api() -> Iterator[ApiClient]:
    """An API on its own moto backend, outside the per-test fixtures: for module-scoped fixtures
    whose tests only read, so a module pays for one moto table instead of one per test."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_AWS_ENV.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            dynamodb = boto3.client("dynamodb", region_name="us-east-1", config=MOTO_CLIENT_CONFIG)
            sqs = boto3.client("sqs", region_name="us-east-1")
            clock = FrozenClock()
            yield api_client(make_services(dynamodb, sqs, clock), clock)
