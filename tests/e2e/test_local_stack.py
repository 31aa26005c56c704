"""`make dev` on DynamoDB Local, driven over real HTTP the way the README shows."""

import re
import stat
from pathlib import Path

import pytest

from straitruns.domain.auth import valid_admin_secret
from tests.e2e.calls import create_job, list_runs, trigger
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def test_printed_dev_key_is_accepted(dev_stack: RunningStack) -> None:
    banner = dev_stack.banner

    response = dev_stack.http.get("/v1/jobs", params={"project_id": banner.project_id}, headers=banner.auth)

    assert response.status_code == 200, response.text


def test_request_without_a_key_is_401(dev_stack: RunningStack) -> None:
    response = dev_stack.http.get("/v1/jobs", params={"project_id": dev_stack.banner.project_id})

    assert response.status_code == 401
    assert response.json()["code"]


def test_openapi_and_docs_answer_without_credentials(dev_stack: RunningStack) -> None:
    openapi = dev_stack.http.get("/openapi.json")
    docs = dev_stack.http.get("/docs")

    assert openapi.status_code == 200
    assert "/v1/runs" in openapi.json()["paths"]
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert dev_stack.banner.docs_url == f"{dev_stack.banner.api_url}/docs"


def test_readme_flow_creates_triggers_gets_and_lists_a_run(dev_stack: RunningStack) -> None:
    http, banner = dev_stack.http, dev_stack.banner
    job = create_job(http, banner, "readme-flow")

    triggered = trigger(http, banner, job["id"], {"hello": "world"})
    assert triggered.status_code == 201, triggered.text
    run = triggered.json()
    assert run["status"] == "queued"
    assert run["job_id"] == job["id"]

    fetched = http.get(f"/v1/runs/{run['id']}", headers=banner.auth)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["payload"] == {"hello": "world"}
    assert run["id"] in [listed["id"] for listed in list_runs(http, banner)]


def test_printed_curl_line_lists_the_dev_projects_runs(dev_stack: RunningStack) -> None:
    match = re.fullmatch(r"curl -s -H '(?P<header>[^']+)' '(?P<url>[^']+)'", dev_stack.banner.curl)
    assert match is not None, dev_stack.banner.curl
    name, value = match["header"].split(": ", 1)

    response = dev_stack.http.get(match["url"], headers={name: value})

    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)


def test_generated_admin_secret_is_valid_stored_privately_and_works(dev_stack: RunningStack) -> None:
    banner = dev_stack.banner
    data_dir = Path(banner.data_dir)

    assert valid_admin_secret(banner.admin_secret)
    assert (data_dir / "admin-secret").read_text().strip() == banner.admin_secret
    for name in ("admin-secret", "run-token-secret", "dev-credentials.json"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    created = dev_stack.http.post(
        "/v1/projects", json={"name": "by-admin"}, headers={"Authorization": f"Bearer {banner.admin_secret}"}
    )
    assert created.status_code == 201, created.text


def test_dynamodb_local_keeps_its_files_in_the_data_dir(dev_stack: RunningStack) -> None:
    assert any((Path(dev_stack.banner.data_dir) / "dynamodb").glob("*.db"))
    assert dev_stack.banner.backend.startswith("dynamodb-local")
