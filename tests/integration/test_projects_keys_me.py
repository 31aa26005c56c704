"""Projects, API keys, the caller and the health check (issue: a key id could not be found to
revoke it, a key could not learn its project, and there was no health endpoint):
`GET /v1/projects`, `GET /v1/projects/{projectID}/api-keys`, `GET /v1/me`, `GET /healthz`, and the
backfill that indexes projects and keys stored before these lists existed."""

from collections import Counter
from typing import Any

import pytest

from straitruns.adapters.store.table import DynamoTable
from straitruns.migrations.access_index import backfill_access_index
from tests.support.app import ApiClient, assert_error


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def follow(api: ApiClient, path: str, headers: dict[str, str], limit: int) -> list[list[dict[str, Any]]]:
    """Every page of a list, following X-Next-Cursor (and checking Link says the same)."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = api.http.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = response.headers.get("x-next-cursor")
        if not cursor:
            assert "link" not in response.headers
            return pages
        assert f"cursor={cursor}" in response.headers["link"]
        params = {"limit": limit, "cursor": cursor}


class OperationCounter:
    """The DynamoDB operations a request makes (botocore hook)."""

    def __init__(self, api: ApiClient) -> None:
        self.calls: Counter[str] = Counter()
        api.services.table.client.meta.events.register("before-call.dynamodb.*", self)

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1


# GET /v1/projects ------------------------------------------------------------------------------


def test_admin_lists_every_project_oldest_first_in_pages_that_never_skip_or_repeat(api: ApiClient) -> None:
    names = ["alpha", "beta", "gamma", "delta"]
    for name in names:
        api.clock.advance(1)
        api.new_project(name)

    pages = follow(api, "/v1/projects", api.admin, limit=2)

    listed = [project for page in pages for project in page]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [project["name"] for project in listed] == ["test", *names]
    assert listed[0] == {"id": api.project_id, "name": "test", "created_at": listed[0]["created_at"]}


def test_a_key_lists_only_its_own_project_whatever_its_scopes(api: ApiClient) -> None:
    api.new_project("other")
    read_only = api.new_key(api.project_id, ["runs:read"])

    for key in (api.key, read_only):
        response = api.http.get("/v1/projects", headers=bearer(key))
        assert response.status_code == 200, response.text
        assert [project["id"] for project in response.json()] == [api.project_id]
        assert "x-next-cursor" not in response.headers


def test_project_list_reads_an_index_never_a_scan(api: ApiClient) -> None:
    for number in range(3):
        api.new_project(f"p{number}")
    counter = OperationCounter(api)

    response = api.http.get("/v1/projects", headers=api.admin)

    assert len(response.json()) == 4
    assert counter.calls["Scan"] == 0
    assert counter.calls["Query"] == 1


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "101x"])
def test_project_list_refuses_a_limit_that_is_not_a_positive_integer(api: ApiClient, limit: str) -> None:
    response = api.http.get("/v1/projects", params={"limit": limit}, headers=api.admin)
    assert_error(response, 400, "bad_request")


def test_project_list_needs_a_credential(api: ApiClient) -> None:
    assert_error(api.http.get("/v1/projects"), 401, "authentication_required")


# GET /v1/projects/{projectID}/api-keys ---------------------------------------------------------


def test_api_key_list_shows_every_key_of_the_project_oldest_first_without_its_secret(api: ApiClient) -> None:
    api.clock.advance(1)
    created = api.http.post(
        f"/v1/projects/{api.project_id}/api-keys",
        json={"name": "ci", "scopes": ["runs:read"]},
        headers=api.admin,
    ).json()
    api.clock.advance(1)
    keys_path = f"/v1/projects/{api.project_id}/api-keys"
    revoked_id = api.http.post(keys_path, json={"name": "old"}, headers=api.admin).json()["id"]
    assert api.http.delete(f"/v1/api-keys/{revoked_id}", headers=api.admin).status_code == 204

    for headers in (api.admin, api.auth):
        pages = follow(api, f"/v1/projects/{api.project_id}/api-keys", headers, limit=2)
        listed = [key for page in pages for key in page]
        assert [key["name"] for key in listed] == ["key", "ci", "old"]
        assert listed[1] == {
            "id": created["id"],
            "project_id": api.project_id,
            "name": "ci",
            "scopes": ["runs:read"],
            "created_at": created["created_at"],
            "expires_at": None,
            "revoked_at": None,
        }
        assert listed[2]["revoked_at"] is not None
        assert all("key" not in key and "key_hash" not in key for key in listed)
        assert created["key"] not in str(listed)


def test_a_revoked_key_found_in_the_list_can_be_revoked_by_its_id(api: ApiClient) -> None:
    leaked = api.new_key(api.project_id, ["runs:read"])
    listed = api.http.get(f"/v1/projects/{api.project_id}/api-keys", headers=api.auth).json()
    leaked_id = next(key["id"] for key in listed if key["scopes"] == ["runs:read"])

    assert api.http.delete(f"/v1/api-keys/{leaked_id}", headers=api.auth).status_code == 204

    assert_error(api.http.get("/v1/me", headers=bearer(leaked)), 401, "authentication_required")


def test_api_key_list_needs_the_star_scope_and_hides_other_projects(api: ApiClient) -> None:
    other_project, other_key = api.new_project("other")
    narrow = api.new_key(api.project_id, ["jobs:read", "runs:read", "runs:write", "jobs:write"])

    assert_error(
        api.http.get(f"/v1/projects/{api.project_id}/api-keys", headers=bearer(narrow)), 403, "forbidden"
    )
    assert_error(api.http.get(f"/v1/projects/{other_project}/api-keys", headers=api.auth), 404, "not_found")
    assert_error(
        api.http.get("/v1/projects/proj_01HZZZZZZZZZZZZZZZZZZZZZZZ/api-keys", headers=api.admin),
        404,
        "not_found",
    )
    assert_error(api.http.get("/v1/projects/nonsense/api-keys", headers=api.admin), 404, "not_found")
    assert other_key


# GET /v1/me ------------------------------------------------------------------------------------


def test_me_tells_a_key_its_project_id_name_and_scopes(api: ApiClient) -> None:
    response = api.http.post(
        f"/v1/projects/{api.project_id}/api-keys",
        json={"name": "dashboard", "scopes": ["runs:read", "jobs:read"]},
        headers=api.admin,
    )
    key = response.json()

    me = api.http.get("/v1/me", headers=bearer(key["key"]))

    assert me.status_code == 200, me.text
    assert me.json() == {
        "kind": "api_key",
        "project_id": api.project_id,
        "key_id": key["id"],
        "name": "dashboard",
        "scopes": ["jobs:read", "runs:read"],
    }


def test_me_for_the_admin_names_the_project_it_asks_for_or_none(api: ApiClient) -> None:
    plain = api.http.get("/v1/me", headers=api.admin)
    by_header = api.http.get("/v1/me", headers={**api.admin, "X-Project-Id": api.project_id})
    by_query = api.http.get("/v1/me", params={"project_id": api.project_id}, headers=api.admin)

    admin = {"kind": "admin", "key_id": None, "name": None, "scopes": ["*"]}
    assert plain.json() == {**admin, "project_id": None}
    assert by_header.json() == {**admin, "project_id": api.project_id}
    assert by_query.json() == {**admin, "project_id": api.project_id}
    missing = api.http.get("/v1/me", headers={**api.admin, "X-Project-Id": "proj_01HZZZZZZZZZZZZZZZZZZZZZZZ"})
    assert_error(missing, 404, "not_found")


@pytest.mark.parametrize("token", ["", "Bearer", "Bearer strait_" + "0" * 64, "Basic abc"])
def test_me_refuses_a_missing_or_unknown_credential(api: ApiClient, token: str) -> None:
    response = api.http.get("/v1/me", headers={"Authorization": token} if token else {})
    assert_error(response, 401, "authentication_required")


# GET /healthz ----------------------------------------------------------------------------------


def test_healthz_answers_200_without_a_credential_when_the_table_and_queue_answer(api: ApiClient) -> None:
    response = api.http.get("/healthz")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"table": "ok", "run_queue": "ok"}}
    assert response.headers["x-request-id"]


def test_healthz_answers_503_naming_the_run_queue_when_it_is_gone(api: ApiClient) -> None:
    api.services.queue.client.delete_queue(QueueUrl=api.services.queue.queue_url)

    response = api.http.get("/healthz")

    body = assert_error(response, 503, "service_unavailable")
    assert [detail["check"] for detail in body["details"]] == ["run_queue"]
    assert "run_queue" in body["error"]


def test_healthz_answers_503_naming_the_table_when_it_is_gone(api: ApiClient) -> None:
    api.services.table.client.delete_table(TableName=api.services.table.name)

    with api.http.effects_held():  # the table's stream went with it
        response = api.http.get("/healthz")

    body = assert_error(response, 503, "service_unavailable")
    assert [detail["check"] for detail in body["details"]] == ["table"]


# The backfill of projects and keys stored before the lists existed ------------------------------


def _strip_index_attributes(table: DynamoTable) -> None:
    """Makes every project and key item look as it was stored before this change."""
    items = table.client.scan(TableName=table.name)["Items"]
    for raw in items:
        if raw["sk"]["S"] in ("PROJ", "APIKEY"):
            table.client.update_item(
                TableName=table.name,
                Key={"pk": raw["pk"], "sk": raw["sk"]},
                UpdateExpression="REMOVE project_pk, csk",
            )


def test_backfill_indexes_projects_and_keys_stored_before_the_lists_and_is_idempotent(
    api: ApiClient,
) -> None:
    second, _ = api.new_project("second")
    _strip_index_attributes(api.services.table)
    assert api.http.get("/v1/projects", headers=api.admin).json() == []
    table = api.services.table

    first_run = backfill_access_index(table)
    second_run = backfill_access_index(table)

    assert (first_run.projects, first_run.api_keys) == (2, 2)
    assert (second_run.projects, second_run.api_keys) == (0, 0)
    listed = api.http.get("/v1/projects", headers=api.admin).json()
    assert [project["id"] for project in listed] == [api.project_id, second]
    keys = api.http.get(f"/v1/projects/{second}/api-keys", headers=api.admin).json()
    assert len(keys) == 1
