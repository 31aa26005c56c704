"""Project scoping (spec 1.1): a key sees only its own project. Another project's run, job or batch
is answered exactly as a missing one (404); naming another project where `project_id` is required
is 403; leaving it out is 400."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.app import ApiClient, assert_error, moto_api

MISSING_RUN = "run_01JD0000000000000000000000"
MISSING_JOB = "job_01JD0000000000000000000000"
MISSING_BATCH = "batch_01JD0000000000000000000000"


@dataclass
class TwoProjects:
    """Project A (the client's own `*` key) with a job, runs and a batch; project B with a `*` key
    and a run that shares A's metadata, tags and payload."""

    api: ApiClient
    b_project: str
    b_key: str
    a_job: dict[str, Any]
    a_run: dict[str, Any]
    a_batch: str
    b_run: dict[str, Any]

    @property
    def b(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.b_key}"}

    def b_request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.api.http.request(method, path, headers={**self.b, **kwargs.pop("headers", {})}, **kwargs)

    def a_run_ids(self) -> set[str]:
        return {self.a_run["id"]}


SHARED = {
    "payload": {"order": 7, "customer": "same"},
    "metadata": {"tenant": "same"},
    "tags": {"team": "same"},
}


@pytest.fixture(scope="module")
def world() -> Iterator[TwoProjects]:
    """Built once: every test here only reads, or attempts a change that must be refused."""
    with moto_api() as api:
        a_job = api.create_job("shared-slug")
        a_run = api.run(SHARED, job="shared-slug")
        batch = api.http.post(
            f"/v1/jobs/{a_job['id']}/trigger/bulk", json={"items": [SHARED]}, headers=api.auth
        )
        assert batch.status_code == 201, batch.text
        b_project, b_key = api.new_project("b")
        b_headers = {"Authorization": f"Bearer {b_key}"}
        job_body = {"slug": "shared-slug", "name": "b", "endpoint_url": "http://127.0.0.1:9/run"}
        b_job = api.http.post("/v1/jobs", json=job_body, headers=b_headers)
        assert b_job.status_code == 201, b_job.text
        b_run = api.http.post(f"/v1/jobs/{b_job.json()['id']}/trigger", json=SHARED, headers=b_headers)
        assert b_run.status_code == 201, b_run.text
        yield TwoProjects(api, b_project, b_key, a_job, a_run, batch.json()["batch_id"], b_run.json())


# Another project's resources are missing (404), worded exactly as missing ones --------------


@pytest.mark.parametrize(
    ("method", "template", "missing"),
    [
        ("GET", "/v1/runs/{run}", MISSING_RUN),
        ("GET", "/v1/runs/{run}/children", MISSING_RUN),
        ("GET", "/v1/runs/{run}/lineage", MISSING_RUN),
        ("GET", "/v1/batches/{batch}", MISSING_BATCH),
        ("GET", "/v1/jobs/{job}", MISSING_JOB),
        ("PATCH", "/v1/jobs/{job}", MISSING_JOB),
        ("DELETE", "/v1/jobs/{job}", MISSING_JOB),
        ("POST", "/v1/jobs/{job}/trigger", MISSING_JOB),
        ("POST", "/v1/jobs/{job}/trigger/bulk", MISSING_JOB),
    ],
)
def test_other_projects_resource_is_404_like_a_missing_one(
    world: TwoProjects, method: str, template: str, missing: str
) -> None:
    ids = {"run": world.a_run["id"], "batch": world.a_batch, "job": world.a_job["id"]}
    bodies = {"PATCH": {"name": "stolen"}, "POST": {"items": [{}]} if "bulk" in template else {}}
    body = bodies.get(method)

    foreign = world.b_request(method, template.format(**ids), json=body)
    absent = world.b_request(method, template.format(run=missing, batch=missing, job=missing), json=body)

    foreign_error = assert_error(foreign, 404, "not_found")
    absent_error = assert_error(absent, 404, "not_found")
    assert foreign_error["error"] == absent_error["error"]
    assert world.a_run["id"] not in foreign.text


def test_refused_changes_leave_the_other_projects_job_untouched(world: TwoProjects) -> None:
    job_id = world.a_job["id"]
    world.b_request("PATCH", f"/v1/jobs/{job_id}", json={"name": "stolen", "enabled": False})
    world.b_request("DELETE", f"/v1/jobs/{job_id}")
    world.b_request("POST", f"/v1/jobs/{job_id}/trigger", json={})

    job = world.api.http.get(f"/v1/jobs/{job_id}", headers=world.api.auth)
    runs = world.api.list_runs(job_id=job_id)

    assert job.status_code == 200
    assert job.json()["version"] == world.a_job["version"]
    assert job.json()["name"] == world.a_job["name"]
    assert job.json()["enabled"] is True
    assert len(runs.json()) == 2  # the seeded run and the batch's run


def test_a_slug_resolves_in_the_callers_own_project(world: TwoProjects) -> None:
    response = world.b_request("GET", "/v1/jobs/shared-slug")

    assert response.status_code == 200, response.text
    assert response.json()["project_id"] == world.b_project
    assert response.json()["id"] != world.a_job["id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/jobs/shared-slug"), ("POST", "/v1/jobs/shared-slug/trigger")],
)
def test_naming_the_other_project_in_a_header_does_not_reach_its_jobs(
    world: TwoProjects, method: str, path: str
) -> None:
    body: dict[str, Any] | None = {} if method == "POST" else None
    response = world.b_request(method, path, json=body, headers={"X-Project-Id": world.api.project_id})

    assert_error(response, 404, "not_found")
    assert world.a_job["id"] not in response.text


# Lists where project_id is required ------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/runs/dlq", "/v1/jobs"])
def test_listing_another_project_is_403(world: TwoProjects, path: str) -> None:
    response = world.b_request("GET", path, params={"project_id": world.api.project_id})
    assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/runs/dlq"])
def test_listing_runs_without_project_id_is_400(world: TwoProjects, path: str) -> None:
    assert_error(world.b_request("GET", path), 400, "bad_request")


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"status": "queued"},
        {"triggered_by": "manual"},
        {"metadata_key": "tenant"},
        {"metadata_key": "tenant", "metadata_value": "same"},
        {"tag_key": "team", "tag_value": "same"},
        {"payload_contains": '{"order": 7}'},
        {"created_after": "2020-01-01T00:00:00Z"},
        {"limit": "100"},
    ],
    ids=lambda filters: "&".join(f"{k}={v}" for k, v in filters.items()) or "no-filter",
)
def test_own_list_shows_own_runs_and_never_the_other_projects(
    world: TwoProjects, filters: dict[str, str]
) -> None:
    response = world.b_request("GET", "/v1/runs", params={"project_id": world.b_project, **filters})

    assert response.status_code == 200, response.text
    listed = {run["id"] for run in response.json()}
    assert listed == {world.b_run["id"]}
    assert {run["project_id"] for run in response.json()} == {world.b_project}


@pytest.mark.parametrize("field", ["batch_id", "job_id"])
def test_filtering_by_the_other_projects_ids_finds_nothing(world: TwoProjects, field: str) -> None:
    value = world.a_batch if field == "batch_id" else world.a_job["id"]

    response = world.b_request("GET", "/v1/runs", params={"project_id": world.b_project, field: value})

    assert response.status_code == 200, response.text
    assert response.json() == []


def test_dead_letter_list_filtered_by_the_other_projects_job_finds_nothing(world: TwoProjects) -> None:
    params = {"project_id": world.b_project, "job_id": world.a_job["id"]}
    response = world.b_request("GET", "/v1/runs/dlq", params=params)

    assert response.status_code == 200, response.text
    assert response.json() == []


def test_own_jobs_list_holds_only_own_jobs(world: TwoProjects) -> None:
    response = world.b_request("GET", "/v1/jobs")

    assert response.status_code == 200, response.text
    assert {job["project_id"] for job in response.json()} == {world.b_project}
    assert world.a_job["id"] not in response.text
