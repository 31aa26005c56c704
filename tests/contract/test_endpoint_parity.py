"""The API against the reference's endpoint list (tests/contract/endpoints.tsv): every endpoint is
documented in /openapi.json under the reference's exact path, or is named as not built yet."""

import csv
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from straitruns.api.app import create_app
from straitruns.wiring import Services

ENDPOINTS_TSV = Path(__file__).with_name("endpoints.tsv")
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

Endpoint = tuple[str, str]


def reference_endpoints() -> list[Endpoint]:
    """(METHOD, path) of every row of the reference's list, comment lines skipped."""
    with ENDPOINTS_TSV.open(encoding="utf-8", newline="") as tsv:
        rows = csv.DictReader((line for line in tsv if not line.startswith("#")), delimiter="\t")
        return [(row["method"].upper(), row["path"]) for row in rows]


REFERENCE = reference_endpoints()

# Routes outside the reference that the spec (section 8, 1.1) adds to the management plane.
SPEC_EXTRAS: set[Endpoint] = {
    ("POST", "/v1/projects"),
    ("GET", "/v1/projects"),
    ("GET", "/v1/projects/{projectID}/api-keys"),
    ("GET", "/v1/me"),
    ("GET", "/healthz"),
    ("POST", "/v1/projects/{projectID}/api-keys"),
    ("DELETE", "/v1/api-keys/{keyID}"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{jobID}"),
    ("PATCH", "/v1/jobs/{jobID}"),
    ("DELETE", "/v1/jobs/{jobID}"),
    ("POST", "/v1/jobs/{jobID}/trigger"),
    ("POST", "/v1/jobs/{jobID}/trigger/bulk"),
    ("GET", "/v1/batches/{batchID}"),
    ("POST", "/v1/jobs/{jobID}/dependencies"),
    ("GET", "/v1/jobs/{jobID}/dependencies"),
    ("DELETE", "/v1/jobs/{jobID}/dependencies/{depID}"),
    ("POST", "/v1/sse-token"),
}

# Endpoints of the reference or the spec that no router serves yet. This list may only shrink:
# when a route is built, remove it here (test_not_yet_built_endpoint_is_still_absent says so).
NOT_YET_BUILT: set[Endpoint] = set()

# The in-run plane, every row of spec section 6 (the official SDK's paths).
IN_RUN_PLANE: set[Endpoint] = {
    ("GET", "/sdk/v1/runs/{runID}/payload"),
    ("POST", "/sdk/v1/runs/{runID}/heartbeat"),
    ("POST", "/sdk/v1/runs/{runID}/log"),
    ("POST", "/sdk/v1/runs/{runID}/progress"),
    ("POST", "/sdk/v1/runs/{runID}/checkpoint"),
    ("GET", "/sdk/v1/runs/{runID}/checkpoints/latest"),
    ("POST", "/sdk/v1/runs/{runID}/usage"),
    ("POST", "/sdk/v1/runs/{runID}/tool-call"),
    ("POST", "/sdk/v1/runs/{runID}/tool-calls"),
    ("POST", "/sdk/v1/runs/{runID}/output"),
    ("POST", "/sdk/v1/runs/{runID}/state"),
    ("GET", "/sdk/v1/runs/{runID}/state"),
    ("GET", "/sdk/v1/runs/{runID}/state/{key}"),
    ("DELETE", "/sdk/v1/runs/{runID}/state/{key}"),
    ("POST", "/sdk/v1/runs/{runID}/stream"),
    ("POST", "/sdk/v1/runs/{runID}/annotate"),
    ("POST", "/sdk/v1/runs/{runID}/spawn"),
    ("POST", "/sdk/v1/runs/{runID}/continue"),
    ("POST", "/sdk/v1/runs/{runID}/complete"),
    ("POST", "/sdk/v1/runs/{runID}/fail"),
}

KNOWN = set(REFERENCE) | SPEC_EXTRAS
BUILT_REFERENCE = [endpoint for endpoint in REFERENCE if endpoint not in NOT_YET_BUILT]
BUILT_EXTRAS = sorted(SPEC_EXTRAS - NOT_YET_BUILT)


def _id(endpoint: Endpoint) -> str:
    return " ".join(endpoint)


@pytest.fixture
def http(services: Services) -> TestClient:
    return TestClient(create_app(lambda: services))


@pytest.fixture
def openapi(http: TestClient) -> dict[str, Any]:
    response = http.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def documented(document: dict[str, Any]) -> set[Endpoint]:
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    }


# --- the lists themselves ------------------------------------------------------------------


def test_reference_list_holds_the_reference_endpoints() -> None:
    assert len(REFERENCE) == 28
    assert len(set(REFERENCE)) == len(REFERENCE), "an endpoint is listed twice"
    assert ("GET", "/v1/runs/{runID}") in REFERENCE


def test_not_yet_built_names_only_known_endpoints() -> None:
    unknown = sorted(_id(endpoint) for endpoint in NOT_YET_BUILT - KNOWN)

    assert unknown == [], "NOT_YET_BUILT names endpoints of neither the reference nor the spec"


# --- parity --------------------------------------------------------------------------------


def test_every_reference_endpoint_is_documented_unless_not_yet_built(openapi: dict[str, Any]) -> None:
    missing = [_id(endpoint) for endpoint in BUILT_REFERENCE if endpoint not in documented(openapi)]

    assert missing == [], "neither served under the reference's path nor in NOT_YET_BUILT"


def test_every_extra_endpoint_we_serve_is_documented(openapi: dict[str, Any]) -> None:
    missing = [_id(endpoint) for endpoint in BUILT_EXTRAS if endpoint not in documented(openapi)]

    assert missing == [], "neither served nor in NOT_YET_BUILT"


def test_not_yet_built_endpoints_are_still_absent(openapi: dict[str, Any]) -> None:
    built = sorted(_id(endpoint) for endpoint in NOT_YET_BUILT & documented(openapi))

    assert built == [], "built now: remove these from NOT_YET_BUILT"


def test_the_in_run_plane_is_documented_exactly(openapi: dict[str, Any]) -> None:
    in_run = {endpoint for endpoint in documented(openapi) if endpoint[1].startswith("/sdk/")}

    assert in_run == IN_RUN_PLANE


def test_every_documented_management_route_is_in_the_reference_or_the_spec(openapi: dict[str, Any]) -> None:
    management = {endpoint for endpoint in documented(openapi) if endpoint[1].startswith("/v1/")}

    assert management - KNOWN == set(), "a route outside the reference uses another name or is undocumented"


def test_path_parameters_keep_the_reference_names(openapi: dict[str, Any]) -> None:
    mismatched = []
    for path, operations in openapi["paths"].items():
        in_path = set(re.findall(r"{([^}]+)}", path))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            if declared != in_path:
                mismatched.append(f"{method.upper()} {path}: declares {sorted(declared)}")

    assert mismatched == []


# --- documentation -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_documentation_needs_no_authorization(http: TestClient, path: str) -> None:
    response = http.get(path)

    assert response.status_code == 200
    assert "authorization" not in {name.lower() for name in response.request.headers}


def test_run_list_cursor_is_an_opaque_string(openapi: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in openapi["paths"]["/v1/runs"]["get"]["parameters"]}
    schema = parameters["cursor"]["schema"]
    # FastAPI writes an optional query value as anyOf [string, null]; `required: false` says the same.
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]

    assert [(b.get("type"), b.get("format")) for b in branches] == [("string", None)], schema
    assert "format" not in schema
    assert parameters["cursor"]["required"] is False
