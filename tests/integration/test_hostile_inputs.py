"""Hostile input never causes a 500 (issue: a fuzzer and 7,600 hostile requests found five
classes): huge integers in query values and headers, ids and slugs past DynamoDB's key size,
non-ASCII credentials, user text in response headers, and JSON numbers no client can read back."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from straitruns.domain.statuses import RunStatus
from tests.support.app import ApiClient, assert_error, moto_api
from tests.support.streams import finish, stream_url

HUGE = "9" * 5000  # past Python's 4,300-digit int() conversion limit
LONG_ID = "j" * 3000  # past DynamoDB's 2 KB partition key limit


@pytest.fixture(scope="module")
def api() -> Iterator[ApiClient]:
    with moto_api() as client:
        yield client


@pytest.fixture(scope="module")
def finished(api: ApiClient) -> str:
    run_id = str(api.run(job="hostile")["id"])
    finish(api.services, run_id, RunStatus.CANCELED)
    return run_id


# 1. Integers of any length in query values and headers ---------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/runs",
        "/v1/runs/dlq",
        "/v1/jobs",
        "/v1/projects",
        "/v1/runs/{run}/events",
        "/v1/runs/{run}/lineage",
    ],
)
def test_a_limit_of_5000_digits_is_clamped_like_any_large_limit(
    api: ApiClient, finished: str, path: str
) -> None:
    params = {"limit": HUGE, "project_id": api.project_id}
    response = api.http.get(path.format(run=finished), params=params, headers=api.auth)
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)


@pytest.mark.parametrize("limit", ["\u0661\u0662", "\uff11\uff12", "1.5", "+5", " 5", "0", "00"])
def test_a_limit_that_is_not_ascii_digits_of_a_positive_integer_is_400(api: ApiClient, limit: str) -> None:
    response = api.http.get(
        "/v1/runs", params={"limit": limit, "project_id": api.project_id}, headers=api.auth
    )
    assert_error(response, 400, "bad_request")


def test_a_last_event_id_of_5000_digits_is_ignored_and_the_stream_starts_from_the_first_event(
    api: ApiClient, finished: str
) -> None:
    for request in ({"headers": {**api.auth, "Last-Event-ID": HUGE}}, {"params": {"last_event_id": HUGE}}):
        request.setdefault("headers", api.auth)
        for chunks in (False, True):
            response = api.http.get(stream_url(finished, chunks), **request)
            assert response.status_code == 200, response.text
            assert "event: end" in response.text
    replay = api.http.get(stream_url(finished), headers={**api.auth, "Last-Event-ID": HUGE})
    assert "id: 1\n" in replay.text


def test_from_checkpoint_of_5000_digits_is_422(api: ApiClient, finished: str) -> None:
    response = api.http.post(
        f"/v1/runs/{finished}/replay", params={"from_checkpoint": HUGE}, headers=api.auth
    )
    assert_error(response, 422, "validation_failed", "from_checkpoint")


def test_a_content_length_of_5000_digits_is_413(api: ApiClient) -> None:
    headers = {**api.auth, "Content-Type": "application/json", "Content-Length": HUGE}
    response = api.http.post("/v1/runs/bulk-cancel", content=b"{}", headers=headers)
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "cursor", ["2026-01-01T00:00:00+25:00", "2026-01-01T00:00:00+05:60", "٢٠٢٦-01-01T00:00:00Z"]
)
def test_a_cursor_with_an_impossible_offset_or_non_ascii_digits_is_400(api: ApiClient, cursor: str) -> None:
    response = api.list_runs(cursor=cursor)
    assert_error(response, 400, "bad_request")


# 2. Ids and slugs past the store's key size ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/jobs/{id}", None),
        ("PATCH", "/v1/jobs/{id}", {"name": "x"}),
        ("DELETE", "/v1/jobs/{id}", None),
        ("POST", "/v1/jobs/{id}/trigger", {}),
        ("POST", "/v1/jobs/{id}/trigger/bulk", {"items": [{}]}),
        ("GET", "/v1/jobs/{id}/dependencies", None),
        ("POST", "/v1/jobs/{id}/dependencies", {"depends_on_job_id": "hostile", "condition": "any"}),
        ("DELETE", "/v1/jobs/{id}/dependencies/dep_01HZZZZZZZZZZZZZZZZZZZZZZZ", None),
    ],
)
def test_a_job_id_or_slug_longer_than_a_store_key_is_404(
    api: ApiClient, method: str, path: str, body: Any
) -> None:
    response = api.http.request(method, path.format(id=LONG_ID), json=body, headers=api.auth)
    assert_error(response, 404, "not_found")


def test_a_dependency_on_a_slug_longer_than_a_store_key_is_answered_as_a_missing_job(api: ApiClient) -> None:
    api.run(job="hostile")
    body = {"depends_on_job_id": LONG_ID, "condition": "any"}
    response = api.http.post(f"/v1/jobs/{api.jobs['hostile']}/dependencies", json=body, headers=api.auth)
    assert response.status_code in (404, 422), response.text
    assert response.json()["code"] in ("not_found", "validation_failed")


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/jobs", "/v1/runs/dlq"])
def test_an_admin_project_id_that_is_not_a_project_id_is_404(api: ApiClient, path: str) -> None:
    response = api.http.get(path, headers={**api.admin, "X-Project-Id": "p" * 3000})
    assert_error(response, 404, "not_found")


# 3. Non-ASCII credentials ----------------------------------------------------------------------


@pytest.mark.parametrize("token", ["Bearer é" * 40, "Bearer strait_é", "Bearer \u00ff" * 33, "Bearer €"])
@pytest.mark.parametrize(
    "path", ["/v1/runs", "/v1/me", "/v1/jobs", "/v1/runs/{run}/stream", "/v1/runs/{run}/stream/chunks"]
)
def test_a_non_ascii_authorization_header_is_401(
    api: ApiClient, finished: str, token: str, path: str
) -> None:
    headers = {"Authorization": token.encode("utf-8")}
    response = api.http.get(path.format(run=finished), params={"project_id": api.project_id}, headers=headers)
    assert_error(response, 401, "authentication_required")


def test_a_non_ascii_stream_token_is_401(api: ApiClient, finished: str) -> None:
    response = api.http.get(stream_url(finished), params={"token": "ünïcødé.€.ß"})
    assert_error(response, 401, "authentication_required")


# 4. User text in response headers --------------------------------------------------------------


def test_bulk_replay_names_skipped_ids_outside_latin_1_escaped_in_the_header_and_whole_in_the_body(
    api: ApiClient, finished: str
) -> None:
    strange = ["run_€uro", "run_\u4e2d\u6587", "a,b:c", "run_%41"]
    body = {"run_ids": [finished, *strange]}

    plain = api.http.post("/v1/runs/bulk-replay", json=body, headers=api.auth)
    verbose = api.http.post("/v1/runs/bulk-replay", params={"verbose": "true"}, json=body, headers=api.auth)

    assert plain.status_code == 200, plain.text
    assert [run["replayed_from"] for run in plain.json()] == [finished]
    header = plain.headers["x-strait-skipped"]
    assert header.isascii()
    assert (
        header == "run_%E2%82%ACuro:not_found,run_%E4%B8%AD%E6%96%87:not_found,"
        "a%2Cb%3Ac:not_found,run_%2541:not_found"
    )
    assert verbose.status_code == 200, verbose.text
    answer = verbose.json()
    assert [run["replayed_from"] for run in answer["runs"]] == [finished]
    assert answer["skipped"] == [{"id": run_id, "reason": "not_found"} for run_id in strange]


def test_a_long_skipped_list_ends_the_header_with_how_many_more_the_body_names(api: ApiClient) -> None:
    strange = [f"run_{'x' * 200}{number}" for number in range(100)]

    response = api.http.post(
        "/v1/runs/bulk-replay", params={"verbose": "true"}, json={"run_ids": strange}, headers=api.auth
    )

    assert response.status_code == 200, response.text
    header = response.headers["x-strait-skipped"]
    assert len(header) <= 4096
    shown = header.split(",")
    assert shown[-1] == f"...:{100 - (len(shown) - 1)} more"
    assert len(response.json()["skipped"]) == 100


def test_bulk_replay_verbose_takes_true_or_false_only(api: ApiClient, finished: str) -> None:
    body = {"run_ids": [finished]}
    response = api.http.post("/v1/runs/bulk-replay", params={"verbose": "yes"}, json=body, headers=api.auth)
    assert_error(response, 400, "bad_request")


# 5. JSON numbers a client can read back ---------------------------------------------------------


@pytest.mark.parametrize(
    "payload", ['{"n": ' + "7" * 1001 + "}", '{"n": 1e400}', '{"n": -1.5e309}', '{"n": 0.' + "1" * 1001 + "}"]
)
def test_a_number_no_json_parser_reads_back_is_refused_with_422(api: ApiClient, payload: str) -> None:
    response = api.trigger_raw(api.jobs["hostile"], '{"payload": ' + payload + "}")
    assert_error(response, 422, "validation_failed")


def test_numbers_keep_the_text_they_were_given_and_every_page_stays_readable(api: ApiClient) -> None:
    text = '{"payload": {"e": 1e5, "f": 2.50, "g": -0.0, "h": 1E-7, "big": ' + "7" * 1000 + "}}"
    created = api.trigger_raw(api.jobs["hostile"], text)
    assert created.status_code == 201, created.text

    got = api.http.get(f"/v1/runs/{created.json()['id']}", headers=api.auth)
    listed = api.list_runs(limit="100")

    assert '"payload":{"e":1e5,"f":2.50,"g":-0.0,"h":1E-7,"big":' + "7" * 1000 + "}" in got.text
    assert json.loads(listed.text)  # a plain client parses every page
    assert json.loads(got.text)["payload"]["big"] == int("7" * 1000)
