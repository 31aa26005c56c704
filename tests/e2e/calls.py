"""The README's curl walkthrough, as calls a test makes over real HTTP."""

from typing import Any

import httpx

from tests.e2e.runner import Banner

UNREACHABLE_ENDPOINT = "http://127.0.0.1:9/x"


def create_job(http: httpx.Client, banner: Banner, slug: str) -> dict[str, Any]:
    """POST /v1/jobs with the dev key; asserts 201 and returns the job."""
    body = {"slug": slug, "name": slug, "endpoint_url": UNREACHABLE_ENDPOINT}
    response = http.post("/v1/jobs", json=body, headers=banner.auth)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def trigger(http: httpx.Client, banner: Banner, job_id: str, payload: object = None) -> httpx.Response:
    """POST /v1/jobs/{id}/trigger with the dev key."""
    body = {} if payload is None else {"payload": payload}
    return http.post(f"/v1/jobs/{job_id}/trigger", json=body, headers=banner.auth)


def list_runs(http: httpx.Client, banner: Banner) -> list[dict[str, Any]]:
    """GET /v1/runs?project_id=<dev project>; asserts 200 and returns the page."""
    response = http.get("/v1/runs", params={"project_id": banner.project_id}, headers=banner.auth)
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()
    return runs
