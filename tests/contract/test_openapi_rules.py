"""The OpenAPI document says what the server enforces (issue point 21): enums for `status` and
`triggered_by`, `limit` as an integer with its bounds, `project_id` required where it is, and body
limits; every value the document allows for them is accepted."""

from collections.abc import Iterator
from typing import Any

import pytest

from straitruns.domain import limits
from straitruns.domain.models import TriggeredBy
from straitruns.domain.statuses import RunStatus
from tests.support.app import ApiClient, moto_api


@pytest.fixture(scope="module")
def api() -> Iterator[ApiClient]:
    with moto_api() as client:
        yield client


@pytest.fixture(scope="module")
def document(api: ApiClient) -> dict[str, Any]:
    response = api.http.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def query_parameter(document: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    parameters = document["paths"][path][method]["parameters"]
    return next(p for p in parameters if p["in"] == "query" and p["name"] == name)


def test_run_list_filters_are_enums_of_the_domain_values(document: dict[str, Any]) -> None:
    status = query_parameter(document, "get", "/v1/runs", "status")["schema"]
    triggered_by = query_parameter(document, "get", "/v1/runs", "triggered_by")["schema"]

    assert status["enum"] == [value.value for value in RunStatus]
    assert triggered_by["enum"] == [value.value for value in TriggeredBy]


@pytest.mark.parametrize(
    ("path", "maximum"),
    [
        ("/v1/runs", limits.RUN_LIST_MAX_LIMIT),
        ("/v1/runs/dlq", limits.RUN_LIST_MAX_LIMIT),
        ("/v1/runs/{runID}/events", limits.SUB_LIST_MAX_LIMIT),
        ("/v1/runs/{runID}/lineage", limits.SUB_LIST_MAX_LIMIT),
        ("/v1/jobs", 100),
        ("/v1/projects", 100),
    ],
)
def test_limit_is_an_integer_with_the_bounds_the_server_applies(
    document: dict[str, Any], path: str, maximum: int
) -> None:
    schema = query_parameter(document, "get", path, "limit")["schema"]
    assert schema == {"type": "integer", "minimum": 1, "maximum": maximum}


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/v1/runs"), ("get", "/v1/runs/dlq"), ("post", "/v1/runs/bulk-cancel-all")]
)
def test_project_id_is_required_where_the_server_requires_it(
    document: dict[str, Any], method: str, path: str
) -> None:
    assert query_parameter(document, method, path, "project_id")["required"] is True


def test_body_limits_are_in_the_body_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    run_ids = schemas["BulkRunIds"]["properties"]["run_ids"]
    items = schemas["BulkTrigger"]["properties"]["items"]
    assert (run_ids["minItems"], run_ids["maxItems"]) == (1, limits.BULK_IDS)
    assert (items["minItems"], items["maxItems"]) == (1, limits.BULK_TRIGGER_ITEMS)


def test_every_value_the_document_allows_is_accepted(api: ApiClient) -> None:
    for status in RunStatus:
        assert api.list_runs(status=status.value).status_code == 200, status
    for value in TriggeredBy:
        assert api.list_runs(triggered_by=value.value).status_code == 200, value
    assert api.list_runs(limit=str(limits.RUN_LIST_MAX_LIMIT)).status_code == 200
