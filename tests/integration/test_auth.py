"""Authentication and authorization (spec 1.1, 8): API keys, scopes, the admin secret, key
lifecycle (revoked, expired) and how keys are stored."""

import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from straitruns.adapters.clock import FrozenClock
from tests.support.app import ApiClient, assert_error, moto_api

SCOPES = ["runs:read", "runs:write", "jobs:read", "jobs:write", "jobs:trigger"]
RAW_KEY = re.compile(r"^strait_[0-9a-f]{64}$")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# One service for the scope table: its calls only read, or create what they alone use -----------


@dataclass
class ScopeWorld:
    api: ApiClient
    keys: dict[str, str]  # scope -> raw key with exactly that scope
    job_id: str
    run_id: str
    batch_id: str
    counter: Iterator[int]


@pytest.fixture(scope="module")
def world() -> Iterator[ScopeWorld]:
    with moto_api() as api:
        job_id = str(api.create_job("seed")["id"])
        run_id = api.run(job="seed")["id"]
        batch = api.http.post(f"/v1/jobs/{job_id}/trigger/bulk", json={"items": [{}]}, headers=api.auth)
        assert batch.status_code == 201, batch.text
        keys = {scope: api.new_key(api.project_id, [scope]) for scope in SCOPES}
        yield ScopeWorld(api, keys, job_id, run_id, batch.json()["batch_id"], itertools.count())


@dataclass(frozen=True)
class Call:
    """One endpoint of the scope table and what it answers when allowed."""

    scope: str
    method: str
    path: str
    success: int
    body: Any = None

    def send(self, world: ScopeWorld, token: str) -> httpx.Response:
        number = next(world.counter)
        path = self.path.format(
            project=world.api.project_id,
            job=world.job_id,
            run=world.run_id,
            batch=world.batch_id,
            fresh_job=self._fresh_job(world) if "{fresh_job}" in self.path else "",
        )
        body = self.body
        if body == "new-job":
            body = {"slug": f"made-{number}", "name": "made", "endpoint_url": "http://127.0.0.1:9/run"}
        return world.api.http.request(self.method, path, json=body, headers=bearer(token))

    @staticmethod
    def _fresh_job(world: ScopeWorld) -> str:
        return str(world.api.create_job(f"doomed-{next(world.counter)}")["id"])

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


SCOPE_TABLE = [
    Call("runs:read", "GET", "/v1/runs?project_id={project}", 200),
    Call("runs:read", "GET", "/v1/runs/dlq?project_id={project}", 200),
    Call("runs:read", "GET", "/v1/runs/{run}", 200),
    Call("runs:read", "GET", "/v1/runs/{run}/children", 200),
    Call("runs:read", "GET", "/v1/runs/{run}/lineage", 200),
    Call("runs:read", "GET", "/v1/batches/{batch}", 200),
    Call("jobs:read", "GET", "/v1/jobs", 200),
    Call("jobs:read", "GET", "/v1/jobs/{job}", 200),
    Call("jobs:read", "GET", "/v1/jobs/seed", 200),
    Call("jobs:write", "POST", "/v1/jobs", 201, "new-job"),
    Call("jobs:write", "PATCH", "/v1/jobs/{job}", 200, {"name": "renamed"}),
    Call("jobs:write", "DELETE", "/v1/jobs/{fresh_job}", 204),
    Call("jobs:trigger", "POST", "/v1/jobs/{job}/trigger", 201, {}),
    Call("jobs:trigger", "POST", "/v1/jobs/{job}/trigger/bulk", 201, {"items": [{}]}),
]


@pytest.mark.parametrize("call", SCOPE_TABLE, ids=str)
def test_key_with_exactly_the_scope_is_allowed(world: ScopeWorld, call: Call) -> None:
    response = call.send(world, world.keys[call.scope])
    assert response.status_code == call.success, response.text


@pytest.mark.parametrize("call", SCOPE_TABLE, ids=str)
def test_star_key_is_allowed(world: ScopeWorld, call: Call) -> None:
    response = call.send(world, world.api.key)
    assert response.status_code == call.success, response.text


@pytest.mark.parametrize(
    ("call", "scope"),
    [(call, scope) for call in SCOPE_TABLE for scope in SCOPES if scope != call.scope],
    ids=lambda value: str(value),
)
def test_key_without_the_scope_is_403(world: ScopeWorld, call: Call, scope: str) -> None:
    body = assert_error(call.send(world, world.keys[scope]), 403, "forbidden")
    assert call.scope in body["error"]


def test_key_with_several_scopes_has_each_of_them(world: ScopeWorld) -> None:
    api = world.api
    token = api.new_key(api.project_id, ["runs:read", "jobs:trigger"])

    triggered = api.http.post(f"/v1/jobs/{world.job_id}/trigger", json={}, headers=bearer(token))
    listed = api.http.get("/v1/runs", params={"project_id": api.project_id}, headers=bearer(token))
    created = api.http.post("/v1/jobs", json={"slug": "x", "name": "x"}, headers=bearer(token))

    assert triggered.status_code == 201, triggered.text
    assert listed.status_code == 200, listed.text
    assert_error(created, 403, "forbidden")


@pytest.mark.parametrize("scopes", [["bogus"], ["runs:read", "jobs:admin"], [], ["RUNS:READ"]])
def test_creating_a_key_with_unknown_or_no_scopes_is_422(world: ScopeWorld, scopes: list[str]) -> None:
    api = world.api
    response = api.http.post(
        f"/v1/projects/{api.project_id}/api-keys", json={"name": "k", "scopes": scopes}, headers=api.admin
    )
    body = assert_error(response, 422, "validation_failed")
    assert any(detail["field"].startswith("scopes") for detail in body["details"]), body


# Credentials that are refused (401) -------------------------------------------------------


def test_missing_authorization_is_401_with_www_authenticate(world: ScopeWorld) -> None:
    response = world.api.http.get("/v1/jobs")

    assert_error(response, 401, "authentication_required")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "strait_" + "a" * 64,
        "Bearer strait_",
        "Bearer strait_xyz",
        "Bearer strait_" + "A" * 64,
        "Bearer strait_" + "a" * 63,
        "Bearer strait_" + "a" * 65,
        "Bearer strait_" + "g" * 64,
        "Bearer not-a-key-and-not-the-admin-secret-either",
        "Bearer test-admin-secret-0123456789abcdef-xy",
    ],
)
def test_malformed_credential_is_401(world: ScopeWorld, authorization: str) -> None:
    response = world.api.http.get("/v1/jobs", headers={"Authorization": authorization})

    assert_error(response, 401, "authentication_required")
    assert "www-authenticate" in response.headers


def test_unknown_well_formed_key_is_401(world: ScopeWorld) -> None:
    unknown = "strait_" + hashlib.sha256(b"nobody").hexdigest()
    response = world.api.http.get("/v1/jobs", headers=bearer(unknown))
    assert_error(response, 401, "authentication_required")


def _create_key(api: ApiClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return api.http.post(
        f"/v1/projects/{api.project_id}/api-keys", json={"name": "k", **body}, headers=headers
    )


def test_revoked_key_is_401(world: ScopeWorld) -> None:
    api = world.api
    created = _create_key(api, api.admin).json()
    assert api.http.get("/v1/jobs", headers=bearer(created["key"])).status_code == 200

    revoked = api.http.delete(f"/v1/api-keys/{created['id']}", headers=api.admin)

    assert revoked.status_code == 204
    assert revoked.content == b""
    assert_error(api.http.get("/v1/jobs", headers=bearer(created["key"])), 401, "authentication_required")


def test_star_key_may_revoke_a_key_of_its_project(world: ScopeWorld) -> None:
    api = world.api
    created = _create_key(api, api.admin).json()

    assert api.http.delete(f"/v1/api-keys/{created['id']}", headers=api.auth).status_code == 204
    assert_error(api.http.get("/v1/jobs", headers=bearer(created["key"])), 401, "authentication_required")


def test_revoking_another_projects_key_is_404(world: ScopeWorld) -> None:
    api = world.api
    other_project, _ = api.new_project("other")
    other = api.http.post(f"/v1/projects/{other_project}/api-keys", json={"name": "k"}, headers=api.admin)

    response = api.http.delete(f"/v1/api-keys/{other.json()['id']}", headers=api.auth)

    assert_error(response, 404, "not_found")
    assert api.http.get("/v1/jobs", headers=bearer(other.json()["key"])).status_code == 200


def test_revoking_a_malformed_key_id_is_404(world: ScopeWorld) -> None:
    assert_error(world.api.http.delete("/v1/api-keys/nope", headers=world.api.admin), 404, "not_found")


def test_expired_key_is_401(api: ApiClient, clock: FrozenClock) -> None:
    created = _create_key(api, api.admin, expires_at="2026-11-28T12:01:00Z")  # the clock: 12:00:00
    assert created.status_code == 201, created.text
    assert created.json()["expires_at"] == "2026-11-28T12:01:00.000000Z"
    token = created.json()["key"]
    assert api.http.get("/v1/jobs", headers=bearer(token)).status_code == 200

    clock.advance(61)

    assert_error(api.http.get("/v1/jobs", headers=bearer(token)), 401, "authentication_required")


def test_key_expiring_in_the_past_is_422(world: ScopeWorld) -> None:
    response = _create_key(world.api, world.api.admin, expires_at="2026-11-28T11:59:59Z")
    assert_error(response, 422, "validation_failed")


# The admin secret and project scoping ------------------------------------------------------


def test_admin_secret_creates_projects(world: ScopeWorld) -> None:
    response = world.api.http.post("/v1/projects", json={"name": "acme"}, headers=world.api.admin)

    assert response.status_code == 201, response.text
    project = response.json()
    assert set(project) == {"id", "name", "created_at"}
    assert project["name"] == "acme"
    assert re.match(r"^proj_[0-9A-HJKMNP-TV-Z]{26}$", project["id"])


def test_api_key_cannot_create_projects(world: ScopeWorld) -> None:
    response = world.api.http.post("/v1/projects", json={"name": "acme"}, headers=world.api.auth)
    assert_error(response, 403, "forbidden")


def test_admin_secret_creates_keys_with_default_scope_star(world: ScopeWorld) -> None:
    api = world.api
    response = _create_key(api, api.admin)

    assert response.status_code == 201, response.text
    key = response.json()
    assert {"id", "project_id", "name", "scopes", "key", "created_at", "expires_at"} <= set(key)
    assert key["project_id"] == api.project_id
    assert key["scopes"] == ["*"]
    assert key["expires_at"] is None
    assert RAW_KEY.match(key["key"])


def test_admin_creating_a_key_for_a_missing_project_is_404(world: ScopeWorld) -> None:
    api = world.api
    response = api.http.post(
        "/v1/projects/proj_01JD0000000000000000000000/api-keys", json={"name": "k"}, headers=api.admin
    )
    assert_error(response, 404, "not_found")


def test_star_key_creates_keys_for_its_own_project(world: ScopeWorld) -> None:
    api = world.api
    response = _create_key(api, api.auth, scopes=["runs:read"])

    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == ["runs:read"]
    listed = api.http.get(
        "/v1/runs", params={"project_id": api.project_id}, headers=bearer(response.json()["key"])
    )
    assert listed.status_code == 200


def test_star_key_creating_a_key_for_another_project_is_404(world: ScopeWorld) -> None:
    api = world.api
    other_project, _ = api.new_project("other")
    response = api.http.post(f"/v1/projects/{other_project}/api-keys", json={"name": "k"}, headers=api.auth)
    assert_error(response, 404, "not_found")


def test_key_without_star_cannot_create_keys(world: ScopeWorld) -> None:
    api = world.api
    response = _create_key(api, bearer(world.keys["jobs:write"]))
    assert_error(response, 403, "forbidden")


def test_admin_acts_on_a_project_named_by_header(world: ScopeWorld) -> None:
    api = world.api
    headers = {**api.admin, "X-Project-Id": api.project_id}
    body = {"slug": "by-admin", "name": "by admin", "endpoint_url": "http://127.0.0.1:9/run"}

    job = api.http.post("/v1/jobs", json=body, headers=headers)
    by_slug = api.http.get("/v1/jobs/by-admin", headers=headers)
    run = api.http.post("/v1/jobs/by-admin/trigger", json={}, headers=headers)

    assert job.status_code == 201, job.text
    assert job.json()["project_id"] == api.project_id
    assert by_slug.status_code == 200, by_slug.text
    assert by_slug.json()["id"] == job.json()["id"]
    assert run.status_code == 201, run.text
    assert run.json()["created_by"] == "admin"


def test_admin_acts_on_a_project_named_by_query(world: ScopeWorld) -> None:
    api = world.api
    listed = api.http.get("/v1/runs", params={"project_id": api.project_id}, headers=api.admin)
    jobs = api.http.get("/v1/jobs", params={"project_id": api.project_id}, headers=api.admin)

    assert listed.status_code == 200, listed.text
    assert world.run_id in {run["id"] for run in listed.json()}
    assert jobs.status_code == 200, jobs.text
    assert world.job_id in {job["id"] for job in jobs.json()}


def test_admin_creating_a_job_without_naming_a_project_is_400(world: ScopeWorld) -> None:
    body = {"slug": "orphan", "name": "orphan", "endpoint_url": "http://127.0.0.1:9/run"}
    response = world.api.http.post("/v1/jobs", json=body, headers=world.api.admin)
    assert_error(response, 400, "bad_request")


def test_runs_created_by_a_key_name_the_key(world: ScopeWorld) -> None:
    api = world.api
    created = _create_key(api, api.admin, scopes=["jobs:trigger"]).json()

    run = api.http.post(f"/v1/jobs/{world.job_id}/trigger", json={}, headers=bearer(created["key"]))

    assert run.json()["created_by"] == f"apikey:{created['id']}"


# How keys are kept ------------------------------------------------------------------------


def test_raw_key_is_never_shown_after_creation(world: ScopeWorld) -> None:
    api = world.api
    created = _create_key(api, api.admin).json()
    token = created["key"]

    responses = [
        api.http.get("/v1/jobs", headers=bearer(token)),
        api.http.post(f"/v1/jobs/{world.job_id}/trigger", json={}, headers=bearer(token)),
        api.http.get(f"/v1/runs/{world.run_id}", headers=bearer(token)),
        api.http.get("/v1/runs", params={"project_id": api.project_id}, headers=bearer(token)),
        api.http.delete(f"/v1/api-keys/{created['id']}", headers=api.admin),
    ]

    for response in responses:
        assert response.status_code < 300, response.text
        assert token not in response.text
        assert token[len("strait_") :] not in response.text


def test_only_the_sha256_of_a_key_is_stored(world: ScopeWorld) -> None:
    api = world.api
    token = _create_key(api, api.admin).json()["key"]
    secret_part = token[len("strait_") :]

    table = api.services.table
    items: list[dict[str, Any]] = []
    pages = table.client.get_paginator("scan").paginate(TableName=table.name)
    for page in pages:
        items.extend(page["Items"])

    stored = repr(items)
    assert secret_part not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored
