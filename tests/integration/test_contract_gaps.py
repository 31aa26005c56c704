"""The contract's last gaps (issue "Hardening from outside", points 6-12): fieldless bodies are
read, the admin's X-Project-Id and job slugs on run lists, lineage paging, query values, content
types and encodings, UTF-8 idempotency headers, HEAD and Allow."""

from collections.abc import Iterator

import pytest

from straitruns.domain.statuses import RunStatus
from tests.support.app import ApiClient, assert_error, moto_api
from tests.support.streams import finish, stream_url


@pytest.fixture(scope="module")
def api() -> Iterator[ApiClient]:
    with moto_api() as client:
        yield client


def json_headers(api: ApiClient, content_type: str = "application/json", **extra: str) -> dict[str, str]:
    return {**api.auth, "Content-Type": content_type, **extra}


# 6. Routes without fields read their body -----------------------------------------------------

FIELDLESS = [
    ("DELETE", "/v1/runs/{run}"),
    ("POST", "/v1/runs/{run}/replay"),
    ("POST", "/v1/runs/{run}/dlq-replay"),
    ("POST", "/v1/runs/{run}/pause"),
    ("POST", "/v1/runs/{run}/resume"),
    ("DELETE", "/v1/runs/{run}/idempotency-key"),
]


@pytest.mark.parametrize(("method", "path"), FIELDLESS)
def test_a_fieldless_route_refuses_malformed_json_with_400_and_any_field_with_422(
    api: ApiClient, method: str, path: str
) -> None:
    run_id = api.run(job="fieldless")["id"]
    url = path.format(run=run_id)

    malformed = api.http.request(method, url, content=b"{nope", headers=json_headers(api))
    unknown = api.http.request(method, url, content=b'{"force": true}', headers=json_headers(api))
    not_object = api.http.request(method, url, content=b"[]", headers=json_headers(api))

    assert_error(malformed, 400, "bad_request")
    assert_error(unknown, 422, "validation_failed", "force")
    assert_error(not_object, 422, "validation_failed")
    assert api.http.get(f"/v1/runs/{run_id}", headers=api.auth).json()["status"] == "queued"


def test_a_fieldless_route_accepts_an_empty_body_or_an_empty_object(api: ApiClient) -> None:
    first, second = api.run(job="fieldless")["id"], api.run(job="fieldless")["id"]

    paused = api.http.post(f"/v1/runs/{first}/pause", headers=api.auth)
    paused_with_object = api.http.post(f"/v1/runs/{second}/pause", content=b"{}", headers=json_headers(api))

    assert paused.status_code == 200, paused.text
    assert paused_with_object.status_code == 200, paused_with_object.text


# 7, 8. The admin's X-Project-Id, and job slugs, on run lists ----------------------------------


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/runs/dlq"])
def test_the_admin_names_the_project_of_a_run_list_with_x_project_id(api: ApiClient, path: str) -> None:
    api.run(job="listed")

    response = api.http.get(path, headers={**api.admin, "X-Project-Id": api.project_id})

    assert response.status_code == 200, response.text
    if path == "/v1/runs":
        assert {run["project_id"] for run in response.json()} == {api.project_id}


def test_run_lists_resolve_a_job_slug_and_answer_empty_only_for_a_job_the_project_lacks(
    api: ApiClient,
) -> None:
    run = api.run(job="by-slug")
    job_id = api.jobs["by-slug"]
    other_project, other_key = api.new_project("other")
    other_job = api.http.post(
        "/v1/jobs",
        json={"slug": "by-slug", "name": "x", "endpoint_url": "http://127.0.0.1:9/run"},
        headers={"Authorization": f"Bearer {other_key}"},
    ).json()

    by_slug = api.list_runs(job_id="by-slug").json()
    by_id = api.list_runs(job_id=job_id).json()
    unknown = api.list_runs(job_id="no-such-job")
    foreign = api.list_runs(job_id=other_job["id"])
    dlq = api.http.get(
        "/v1/runs/dlq", params={"project_id": api.project_id, "job_id": "by-slug"}, headers=api.auth
    )

    assert [item["id"] for item in by_slug] == [run["id"]] == [item["id"] for item in by_id]
    assert (unknown.status_code, unknown.json()) == (200, [])
    assert (foreign.status_code, foreign.json()) == (200, [])
    assert (dlq.status_code, dlq.json()) == (200, [])
    assert other_project


# 10. Lineage paging and query values ----------------------------------------------------------


def test_lineage_honours_limit_and_cursor(api: ApiClient) -> None:
    run_id = api.run(job="lineage")["id"]

    page = api.http.get(f"/v1/runs/{run_id}/lineage", params={"limit": "1"}, headers=api.auth)
    bad_limit = api.http.get(f"/v1/runs/{run_id}/lineage", params={"limit": "0"}, headers=api.auth)
    bad_cursor = api.http.get(f"/v1/runs/{run_id}/lineage", params={"cursor": "!!"}, headers=api.auth)
    past = api.http.get(
        f"/v1/runs/{run_id}/lineage", params={"cursor": "2999-01-01T00:00:00Z"}, headers=api.auth
    )

    assert [item["id"] for item in page.json()] == [run_id]
    assert "x-next-cursor" not in page.headers
    assert_error(bad_limit, 400, "bad_request")
    assert_error(bad_cursor, 400, "bad_request")
    assert past.json() == []


def test_an_unknown_triggered_by_is_400(api: ApiClient) -> None:
    assert_error(api.list_runs(triggered_by="bogus"), 400, "bad_request")
    assert api.list_runs(triggered_by="manual").status_code == 200


@pytest.mark.parametrize(
    "query", ["limit=5&limit=6", "status=queued&status=failed", "project_id=a&project_id=b"]
)
def test_a_query_parameter_given_twice_is_400(api: ApiClient, query: str) -> None:
    response = api.http.get(f"/v1/runs?{query}", headers=api.auth)
    body = assert_error(response, 400, "bad_request")
    assert query.split("=")[0] in body["error"]


# 11. Content types, encodings, UTF-8 headers --------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        {},
    ],
)
def test_a_body_not_declared_as_plain_json_is_415(api: ApiClient, headers: dict[str, str]) -> None:
    api.run(job="typed")
    response = api.http.post(
        f"/v1/jobs/{api.jobs['typed']}/trigger", content=b'{"payload": {}}', headers={**api.auth, **headers}
    )
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
def test_json_with_parameters_or_a_json_suffix_is_accepted(api: ApiClient, content_type: str) -> None:
    api.run(job="typed")
    response = api.http.post(
        f"/v1/jobs/{api.jobs['typed']}/trigger", content=b"{}", headers=json_headers(api, content_type)
    )
    assert response.status_code == 201, response.text


def test_a_utf8_idempotency_key_header_is_the_same_key_as_the_same_text_in_the_body(api: ApiClient) -> None:
    api.run(job="idem")
    url = f"/v1/jobs/{api.jobs['idem']}/trigger"
    by_header = api.http.post(
        url, content=b"{}", headers={**json_headers(api), "Idempotency-Key": "café-☕".encode()}
    )
    by_body = api.http.post(url, json={"idempotency_key": "café-☕"}, headers=api.auth)
    both = api.http.post(
        url, json={"idempotency_key": "café-☕"}, headers={**api.auth, "Idempotency-Key": "café-☕".encode()}
    )

    assert by_header.status_code == 201, by_header.text
    assert by_header.json()["idempotency_key"] == "café-☕"
    assert (by_body.status_code, by_body.json()["id"]) == (200, by_header.json()["id"])
    assert (both.status_code, both.json()["id"]) == (200, by_header.json()["id"])


# 12. HEAD, Allow ------------------------------------------------------------------------------


def test_head_on_a_get_route_answers_the_get_headers_without_a_body(api: ApiClient) -> None:
    run_id = api.run(job="head")["id"]

    get = api.http.get(f"/v1/runs/{run_id}", headers=api.auth)
    head = api.http.head(f"/v1/runs/{run_id}", headers=api.auth)
    missing = api.http.head("/v1/runs/run_01HZZZZZZZZZZZZZZZZZZZZZZZ", headers=api.auth)

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["x-request-id"]
    assert (missing.status_code, missing.content) == (404, b"")


def test_head_on_a_finished_runs_stream_answers_its_headers(api: ApiClient) -> None:
    run_id = api.run(job="head")["id"]
    finish(api.services, run_id, RunStatus.CANCELED)

    head = api.http.head(stream_url(run_id), headers=api.auth)

    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/runs/{run}", "DELETE, GET, HEAD"),
        ("PUT", "/v1/jobs/{job}", "DELETE, GET, HEAD, PATCH"),
        ("PUT", "/v1/projects", "GET, HEAD, POST"),
        ("POST", "/v1/runs/{run}/debug-bundle", "GET, HEAD"),
    ],
)
def test_a_405_names_every_method_the_path_serves(
    api: ApiClient, method: str, path: str, allowed: str
) -> None:
    run_id = api.run(job="allow")["id"]
    url = path.format(run=run_id, job=api.jobs["allow"])

    response = api.http.request(method, url, headers=api.auth)

    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed
