"""`runs list`: filters become the API's query, cursors are followed, outputs are what they say."""

import json

import httpx

from tests.cli.fake_api import PROJECT, FakeApi, error_response, json_response


def _run(number: int, status: str = "queued", **fields: object) -> dict[str, object]:
    return {
        "id": f"run_{number:026d}",
        "job_id": "job_1",
        "status": status,
        "attempt": 1,
        "triggered_by": "manual",
        "created_at": "2026-11-28T14:15:22.123456Z",
        **fields,
    }


def test_every_filter_option_becomes_its_list_query_parameter() -> None:
    api = FakeApi()
    api.on("GET", "/v1/runs", json_response([]))
    api.on("GET", "/v1/jobs/send-report", json_response({"id": "job_01SEND", "slug": "send-report"}))

    result = api.invoke(
        "--project",
        PROJECT,
        "runs",
        "list",
        "--status",
        "failed",
        "--job",
        "send-report",
        "--batch",
        "batch_9",
        "--metadata",
        "customer=acme",
        "--tag",
        "tier",
        "--payload-contains",
        '{"order": {"id": 7}}',
        "--triggered-by",
        "retry",
        "--created-after",
        "2026-11-01T00:00:00Z",
        "--created-before",
        "2026-11-02T10:00:00+02:00",
    )

    assert result.exit_code == 0, result.output
    [request] = api.sent("GET", "/v1/runs")
    assert dict(request.url.params) == {
        "project_id": PROJECT,
        "status": "failed",
        "job_id": "job_01SEND",
        "batch_id": "batch_9",
        "metadata_key": "customer",
        "metadata_value": "acme",
        "tag_key": "tier",
        "triggered_by": "retry",
        "created_after": "2026-11-01T00:00:00.000000Z",
        "created_before": "2026-11-02T08:00:00.000000Z",
        "payload_contains": '{"order":{"id":7}}',
        "limit": "50",
    }


def test_all_follows_x_next_cursor_until_a_page_has_none() -> None:
    api = FakeApi()
    api.on(
        "GET",
        "/v1/runs",
        [
            json_response([_run(1), _run(2)], headers={"X-Next-Cursor": "c1"}),
            json_response([], headers={"X-Next-Cursor": "c2"}),  # a short page is not the last one
            json_response([_run(3)]),
        ],
    )

    result = api.invoke("--project", PROJECT, "runs", "list", "--all", "--page-size", "2", "--jsonl")

    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [
        _run(1)["id"],
        _run(2)["id"],
        _run(3)["id"],
    ]
    sent = api.sent("GET", "/v1/runs")
    assert [r.url.params.get("cursor") for r in sent] == [None, "c1", "c2"]
    assert {r.url.params["limit"] for r in sent} == {"2"}


def test_limit_stops_reading_and_tells_how_to_continue() -> None:
    api = FakeApi()
    api.on("GET", "/v1/runs", json_response([_run(1), _run(2)], headers={"X-Next-Cursor": "next-one"}))
    api.on("GET", "/v1/jobs", json_response([{"id": "job_1", "slug": "send-report"}]))

    result = api.invoke("--project", PROJECT, "runs", "list", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert len(api.sent("GET", "/v1/runs")) == 1
    assert "send-report" in result.stdout  # the job's slug, not its id
    assert "2 runs; more follow: add --all, or --cursor next-one" in result.stderr


def test_json_is_one_array_with_every_digit_of_the_payload() -> None:
    api = FakeApi()
    payload_text = '{"amount": 1.000000000000000000001, "big": 123456789012345678901234567890}'
    body = f'[{{"id": "run_1", "status": "queued", "payload": {payload_text}}}]'
    api.on("GET", "/v1/runs", httpx_text(body))

    result = api.invoke("--project", PROJECT, "runs", "list", "--json")

    assert result.exit_code == 0, result.output
    assert "1.000000000000000000001" in result.stdout
    assert "123456789012345678901234567890" in result.stdout
    assert [run["id"] for run in json.loads(result.stdout)] == ["run_1"]


def test_a_key_without_a_project_acts_on_the_project_get_v1_me_names() -> None:
    api = FakeApi()
    api.on("GET", "/v1/me", json_response({"kind": "api_key", "project_id": "proj_FROM_ME", "scopes": ["*"]}))
    api.on("GET", "/v1/runs", json_response([]))

    result = api.invoke("runs", "list", "--json")

    assert result.exit_code == 0, result.output
    assert api.sent("GET", "/v1/runs")[0].url.params["project_id"] == "proj_FROM_ME"


def test_without_get_v1_me_a_key_needs_project_and_says_so() -> None:
    api = FakeApi()  # answers 404 for /v1/me

    result = api.invoke("runs", "list")

    assert result.exit_code == 2
    assert "pass --project or set STRAIT_PROJECT_ID" in result.stderr
    assert api.sent("GET", "/v1/runs") == []


def test_the_admin_secret_without_a_project_is_a_usage_error() -> None:
    api = FakeApi()

    result = api.invoke("runs", "list", env={"STRAIT_API_KEY": "admin-secret-" + "x" * 32})

    assert result.exit_code == 2
    assert "the admin secret acts on a project" in result.stderr
    assert api.requests == []


def test_the_admin_names_its_project_in_the_query_and_the_header() -> None:
    api = FakeApi()
    api.on("GET", "/v1/runs", json_response([]))

    result = api.invoke(
        "runs",
        "list",
        "--json",
        env={"STRAIT_API_KEY": "admin-secret-" + "x" * 32, "STRAIT_PROJECT_ID": PROJECT},
    )

    assert result.exit_code == 0, result.output
    [request] = api.sent("GET", "/v1/runs")
    assert (request.url.params["project_id"], request.headers["x-project-id"]) == (PROJECT, PROJECT)
    assert request.headers["authorization"] == "Bearer admin-secret-" + "x" * 32


def test_payload_contains_that_is_not_a_json_object_is_a_usage_error() -> None:
    api = FakeApi()

    not_json = api.invoke("--project", PROJECT, "runs", "list", "--payload-contains", "{order")
    not_object = api.invoke("--project", PROJECT, "runs", "list", "--payload-contains", "[1]")

    assert (not_json.exit_code, not_object.exit_code) == (2, 2)
    assert "not valid JSON" in not_json.stderr
    assert "must be a JSON object" in not_object.stderr
    assert api.requests == []


def test_json_and_jsonl_together_are_a_usage_error() -> None:
    result = FakeApi().invoke("--project", PROJECT, "runs", "list", "--json", "--jsonl")

    assert result.exit_code == 2
    assert "--json and --jsonl exclude each other" in result.stderr


def test_an_empty_list_says_so_on_stderr() -> None:
    api = FakeApi()
    api.on("GET", "/v1/runs", json_response([]))
    api.on("GET", "/v1/jobs", error_response(403, "this API key lacks the 'jobs:read' scope", "forbidden"))

    result = api.invoke("--project", PROJECT, "runs", "list")

    assert (result.exit_code, result.stdout, result.stderr.strip()) == (0, "", "No runs match.")


def httpx_text(body: str) -> httpx.Response:
    return httpx.Response(200, text=body, headers={"Content-Type": "application/json"})
