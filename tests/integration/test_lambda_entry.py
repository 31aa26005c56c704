"""The deployed entry points: each functions/<group>/app.py handler, invoked with the API Gateway
events of events/ (REST, proxy integration) on moto, configured from the environment only."""

import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import straitruns.entry
import straitruns.settings
from straitruns.adapters import secrets
from straitruns.adapters.tokens import TokenSigner
from straitruns.api.app import create_app
from straitruns.domain.ids import IdKind
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import format_ts
from straitruns.services.run_state import status_change_event
from tests.support.app import ADMIN_SECRET, TABLE_NAME, provision

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
FUNCTIONS = REPO / "functions"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

# Every events/ file and the status its handler answers (a file missing here fails the suite).
EXPECTED_STATUS = {
    "runs_query/list_runs.json": 200,
    "runs_query/dlq.json": 200,
    "runs_query/get_run.json": 200,
    "runs_query/list_children.json": 200,
    "runs_query/lineage.json": 200,
    "runs_query/openapi.json": 200,
    "runs_query/docs.json": 200,
    "runs_query/sse_token.json": 200,
    "jobs/create_project.json": 201,
    "jobs/create_api_key.json": 201,
    "jobs/revoke_api_key.json": 204,
    "jobs/create_job.json": 201,
    "jobs/list_jobs.json": 200,
    "jobs/get_job.json": 200,
    "jobs/update_job.json": 200,
    "jobs/delete_job.json": 204,
    "jobs/trigger.json": 201,
    "jobs/bulk_trigger.json": 201,
    "jobs/get_batch.json": 200,
    "runs_control/cancel_run.json": 204,
    "runs_control/replay_run.json": 201,
    "runs_control/dlq_replay.json": 200,
    "runs_control/reschedule.json": 200,
    "runs_control/pause.json": 200,
    "runs_control/resume.json": 200,
    "runs_control/restart.json": 200,
    "runs_control/debug.json": 204,
    "runs_control/reset_idempotency_key.json": 200,
    "runs_bulk/bulk_cancel.json": 200,
    "runs_bulk/bulk_cancel_all.json": 200,
    "runs_bulk/bulk_replay.json": 200,
    "runs_bulk/bulk_dlq_replay.json": 200,
    "sdk/log.json": 201,
    "sdk/heartbeat.json": 200,
    "sdk/checkpoint.json": 201,
    "sdk/complete.json": 200,
    "runs_telemetry/events.json": 200,
    "runs_telemetry/checkpoints.json": 200,
    "runs_telemetry/state.json": 200,
    "runs_telemetry/debug_bundle.json": 200,
}


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of the Lambda context that Powertools and Mangum read."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = "0f6b3c1e-6f3a-4d8e-9a51-3c7d2e1b9a40"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def lambda_context(group: str) -> FakeLambdaContext:
    name = f"strait-runs-{group}"
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    return FakeLambdaContext(function_name=name, invoked_function_arn=arn)


@cache
def function_handler(group: str) -> Handler:
    """`handler` of functions/<group>/app.py, imported by file path as Lambda does (no package)."""
    spec = importlib.util.spec_from_file_location(f"strait_function_{group}", FUNCTIONS / group / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = module.handler
    return handler


# Events of the engine's event sources (SQS, schedule): test_lambda_entry_events.py checks those.
EVENT_SOURCE_FOLDERS = ("dispatcher", "scheduler")


def event_files() -> list[str]:
    """Every API Gateway event file of events/."""
    return sorted(
        path.relative_to(EVENTS).as_posix()
        for path in EVENTS.glob("*/*.json")
        if path.parent.name not in EVENT_SOURCE_FOLDERS
    )


@dataclass
class Deployment:
    """A provisioned table and queues with the environment a deployed function would have, and
    the resources the events' placeholders name."""

    http: TestClient
    run_queue_url: str
    values: dict[str, str] = field(default_factory=dict)

    def event(self, name: str) -> dict[str, Any]:
        text = (EVENTS / name).read_text(encoding="utf-8")
        for placeholder, value in self.values.items():
            text = text.replace("{{" + placeholder + "}}", value)
        assert "{{" not in text, f"{name} has a placeholder the test does not fill"
        event: dict[str, Any] = json.loads(text)
        return event

    def invoke(self, name: str, group: str | None = None) -> dict[str, Any]:
        """Invokes the handler of the event's folder (or of `group`) with events/<name>."""
        group = group or name.split("/", 1)[0]
        return function_handler(group)(self.event(name), lambda_context(group))


def clear_caches() -> None:
    """Forgets what an execution environment keeps between invocations (services, settings, secrets)."""
    from aws_lambda_powertools.utilities import parameters

    straitruns.entry.shared_services.cache_clear()
    straitruns.settings.get_settings.cache_clear()
    secrets._parameter.cache_clear()
    parameters.clear_caches()


@pytest.fixture
def deployed_env(moto_clients: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The environment of template.yaml's Globals (secrets given directly); yields the run queue URL."""
    dynamodb, sqs = moto_clients
    urls = provision(dynamodb, sqs, TABLE_NAME)
    for name in [name for name in os.environ if name.startswith("STRAIT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STRAIT_TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("STRAIT_RUN_QUEUE_URL", urls.run_queue_url)
    monkeypatch.setenv("STRAIT_DEAD_LETTER_QUEUE_URL", urls.dead_letter_queue_url)
    monkeypatch.setenv("STRAIT_REGION", "us-east-1")
    monkeypatch.setenv("STRAIT_ADMIN_SECRET", ADMIN_SECRET)
    monkeypatch.setenv("STRAIT_RUN_TOKEN_SECRET", "test-run-token-secret-0123456789abcdef")
    monkeypatch.setenv("STRAIT_PUBLIC_URL", "https://k7f3m2q9xa.execute-api.us-east-1.amazonaws.com/prod")
    monkeypatch.setenv("STRAIT_ALLOW_PRIVATE_ENDPOINTS", "false")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "strait-runs")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "StraitRuns")
    clear_caches()
    yield urls.run_queue_url
    clear_caches()


@pytest.fixture
def deployment(deployed_env: str) -> Deployment:
    """A project with a `*` key and a second key, a job, a batch, and runs for every read event:
    a run with a child, a continuation of it, and a dead-lettered run."""
    http = TestClient(create_app(straitruns.entry.shared_services))
    admin = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    project = _created(http.post("/v1/projects", json={"name": "events"}, headers=admin))
    keys_url = f"/v1/projects/{project['id']}/api-keys"
    key = _created(http.post(keys_url, json={"name": "all"}, headers=admin))
    spare = _created(http.post(keys_url, json={"name": "spare"}, headers=admin))
    auth = {"Authorization": f"Bearer {key['key']}"}
    endpoint = "https://jobs.example.com/sync"
    job_body = {"slug": "invoice-sync", "name": "Invoice sync", "endpoint_url": endpoint}
    job = _created(http.post("/v1/jobs", json=job_body, headers=auth))
    trigger = f"/v1/jobs/{job['id']}/trigger"
    run = _created(http.post(trigger, json={"payload": {"order": {"id": 7}}}, headers=auth))
    doomed = _created(http.post(trigger, json={"payload": {"order": {"id": 8}}}, headers=auth))
    batch = _created(http.post(f"{trigger}/bulk", json={"items": [{}, {}]}, headers=auth))
    continuation_id = _store_related_runs(run["id"])
    _dead_letter(doomed["id"])
    executing = _created(http.post(trigger, json={"payload": {"invoice": 42}}, headers=auth))
    token = _start_attempt(executing["id"])
    paused = _created(http.post(trigger, json={"payload": {"order": {"id": 9}}}, headers=auth))
    assert http.post(f"/v1/runs/{paused['id']}/pause", headers=auth).status_code == 200
    return Deployment(
        http=http,
        run_queue_url=deployed_env,
        values={
            "ADMIN_SECRET": ADMIN_SECRET,
            "API_KEY": key["key"],
            "PROJECT_ID": project["id"],
            "KEY_ID": spare["id"],
            "SPARE_API_KEY": spare["key"],
            "JOB_ID": job["id"],
            "RUN_ID": run["id"],
            "CONTINUATION_RUN_ID": continuation_id,
            "BATCH_ID": batch["batch_id"],
            "DEAD_RUN_ID": doomed["id"],
            "EXECUTING_RUN_ID": executing["id"],
            "RUN_TOKEN": token,
            "PAUSED_RUN_ID": paused["id"],
            "SCHEDULED_AT": format_ts(datetime.now(UTC) + timedelta(hours=1)),
        },
    )


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _store_related_runs(run_id: str) -> str:
    """Stores a child of `run_id` and a continuation of it (the SDK plane that creates them through
    the API is not built yet); returns the continuation's id."""
    services = straitruns.entry.shared_services()
    parent = services.runs.get(run_id)
    assert parent is not None
    related = {
        "parent_run_id": {"parent_run_id": parent.id},
        "continuation_of": {"continuation_of": parent.id, "lineage_depth": 1},
    }
    ids = {}
    for name, links in related.items():
        run = parent.model_copy(
            update={
                "id": services.ids.new(IdKind.RUN),
                "payload": "{}",
                "created_at": services.clock.now(),
                **links,
            }
        )
        services.runs.create(run, status_change_event(services.ids, services.clock, run, None, "created", 1))
        ids[name] = run.id
    return ids["continuation_of"]


def _dead_letter(run_id: str) -> None:
    """Moves a run along the dispatcher's path to dead_letter (the dispatcher is not built yet)."""
    services = straitruns.entry.shared_services()
    run = services.runs.get(run_id)
    assert run is not None
    for status in (RunStatus.DEQUEUED, RunStatus.EXECUTING, RunStatus.DEAD_LETTER):
        run = services.state.change(run, status, "test setup")


def _start_attempt(run_id: str) -> str:
    """Moves a run to `executing` as the dispatcher does before its call; returns its run token."""
    services = straitruns.entry.shared_services()
    run = services.runs.get(run_id)
    assert run is not None
    claimed = services.state.change(run, RunStatus.DEQUEUED, "test setup", generation=run.generation + 1)
    now = services.clock.now()
    deadline = now + timedelta(minutes=5)
    services.state.change(claimed, RunStatus.EXECUTING, "test setup", started_at=now, timeout_at=deadline)
    signer = TokenSigner(lambda: secrets.run_token_secret(services.settings))
    return signer.run_token(run_id, claimed.attempt, claimed.generation, now, deadline)


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    """Response headers, single- and multi-valued, with lower-case names."""
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ",".join(values)
    return headers


def body_of(response: dict[str, Any]) -> Any:
    assert response["isBase64Encoded"] is False
    return json.loads(response["body"])


# --- every event ---------------------------------------------------------------------------


def test_every_event_file_has_an_expected_answer() -> None:
    assert event_files() == sorted(EXPECTED_STATUS)


@pytest.mark.parametrize("name", event_files())
def test_event_is_answered_with_its_status_and_request_id(deployment: Deployment, name: str) -> None:
    event = deployment.event(name)

    response = deployment.invoke(name)

    assert response["statusCode"] == EXPECTED_STATUS[name], response.get("body")
    assert headers_of(response)["x-request-id"] == event["requestContext"]["requestId"]


# --- runs_query ----------------------------------------------------------------------------


def test_get_run_event_returns_the_run(deployment: Deployment) -> None:
    run = body_of(deployment.invoke("runs_query/get_run.json"))

    assert run["id"] == deployment.values["RUN_ID"]
    assert run["status"] == "queued"
    assert run["payload"] == {"order": {"id": 7}}


def test_list_runs_event_filters_by_the_decoded_payload_query(deployment: Deployment) -> None:
    response = deployment.invoke("runs_query/list_runs.json")

    assert response["headers"]["content-type"].startswith("application/json")
    assert [run["id"] for run in body_of(response)] == [deployment.values["RUN_ID"]]


def test_dlq_event_lists_the_dead_lettered_run(deployment: Deployment) -> None:
    runs = body_of(deployment.invoke("runs_query/dlq.json"))

    assert [(run["id"], run["status"]) for run in runs] == [(deployment.values["DEAD_RUN_ID"], "dead_letter")]


def test_list_children_event_lists_the_child_run(deployment: Deployment) -> None:
    children = body_of(deployment.invoke("runs_query/list_children.json"))

    assert [child["parent_run_id"] for child in children] == [deployment.values["RUN_ID"]]


def test_lineage_event_lists_the_chain_from_the_root(deployment: Deployment) -> None:
    chain = body_of(deployment.invoke("runs_query/lineage.json"))

    expected = [deployment.values["RUN_ID"], deployment.values["CONTINUATION_RUN_ID"]]
    assert [run["id"] for run in chain] == expected


def test_openapi_event_returns_the_document_without_credentials(deployment: Deployment) -> None:
    event = deployment.event("runs_query/openapi.json")
    assert "Authorization" not in event["headers"]

    document = body_of(deployment.invoke("runs_query/openapi.json"))

    assert document["openapi"].startswith("3.")
    assert "/v1/runs/{runID}" in document["paths"]


def test_docs_event_returns_the_swagger_page(deployment: Deployment) -> None:
    response = deployment.invoke("runs_query/docs.json")

    assert response["headers"]["content-type"].startswith("text/html")
    assert "swagger" in response["body"].lower()


# --- jobs ----------------------------------------------------------------------------------


def test_create_project_event_with_the_admin_secret_creates_a_project(deployment: Deployment) -> None:
    project = body_of(deployment.invoke("jobs/create_project.json"))

    assert project["id"].startswith("proj_")
    assert project["name"] == "Billing platform"


def test_create_api_key_event_returns_the_raw_key_once(deployment: Deployment) -> None:
    key = body_of(deployment.invoke("jobs/create_api_key.json"))

    assert key["project_id"] == deployment.values["PROJECT_ID"]
    assert key["key"].startswith("strait_")
    assert key["scopes"] == ["runs:read", "jobs:trigger"]


def test_revoke_api_key_event_revokes_the_key(deployment: Deployment) -> None:
    response = deployment.invoke("jobs/revoke_api_key.json")

    assert response["body"] == ""
    revoked = {"Authorization": f"Bearer {deployment.values['SPARE_API_KEY']}"}
    assert deployment.http.get(f"/v1/runs/{deployment.values['RUN_ID']}", headers=revoked).status_code == 401


def test_create_job_event_creates_the_job(deployment: Deployment) -> None:
    job = body_of(deployment.invoke("jobs/create_job.json"))

    assert job["id"].startswith("job_")
    assert job["slug"] == "nightly-report"
    assert job["endpoint_url"] == "https://jobs.example.com/strait/nightly-report"


def test_list_jobs_event_lists_the_project_jobs(deployment: Deployment) -> None:
    jobs = body_of(deployment.invoke("jobs/list_jobs.json"))

    assert [job["id"] for job in jobs] == [deployment.values["JOB_ID"]]


def test_get_job_event_through_the_proxy_resource_returns_the_job(deployment: Deployment) -> None:
    job = body_of(deployment.invoke("jobs/get_job.json"))

    assert job["id"] == deployment.values["JOB_ID"]


def test_update_job_event_bumps_the_version(deployment: Deployment) -> None:
    job = body_of(deployment.invoke("jobs/update_job.json"))

    assert job["name"] == "Invoice sync (hourly)"
    assert job["version"] == 2


def test_delete_job_event_removes_the_job(deployment: Deployment) -> None:
    deployment.invoke("jobs/delete_job.json")

    after = deployment.invoke("jobs/get_job.json")
    assert after["statusCode"] == 404


def test_trigger_event_creates_a_queued_run_and_sends_it_to_the_run_queue(deployment: Deployment) -> None:
    run = body_of(deployment.invoke("jobs/trigger.json"))

    assert run["status"] == "queued"
    assert run["job_id"] == deployment.values["JOB_ID"]
    assert run["payload"] == {"invoice_id": "inv_2026_0042", "amount": {"currency": "EUR", "cents": 129990}}
    assert run["metadata"]["source"] == "checkout"
    sqs = straitruns.entry.shared_services().queue.client
    messages = sqs.receive_message(
        QueueUrl=deployment.run_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    assert any(run["id"] in message["Body"] for message in messages.get("Messages", []))


def test_bulk_trigger_event_creates_a_batch_of_three(deployment: Deployment) -> None:
    result = body_of(deployment.invoke("jobs/bulk_trigger.json"))

    assert result["batch_id"].startswith("batch_")
    assert (result["total"], result["created"]) == (3, 3)
    assert {run["batch_id"] for run in result["runs"]} == {result["batch_id"]}


def test_get_batch_event_returns_the_batch(deployment: Deployment) -> None:
    batch = body_of(deployment.invoke("jobs/get_batch.json"))

    assert batch["id"] == deployment.values["BATCH_ID"]
    assert batch["job_id"] == deployment.values["JOB_ID"]
    assert batch["item_count"] == 2


# --- groups --------------------------------------------------------------------------------


def test_jobs_function_does_not_serve_run_reads(deployment: Deployment) -> None:
    response = deployment.invoke("runs_query/get_run.json", group="jobs")

    assert response["statusCode"] == 404
    assert body_of(response)["code"] == "not_found"


def test_runs_query_function_does_not_serve_job_writes(deployment: Deployment) -> None:
    response = deployment.invoke("jobs/create_job.json", group="runs_query")

    assert response["statusCode"] == 404
    assert body_of(response)["code"] == "not_found"


@pytest.mark.parametrize("group", ["runs_query", "jobs"])
def test_every_function_documents_every_route(deployment: Deployment, group: str) -> None:
    everything = deployment.http.get("/openapi.json").json()

    document = body_of(deployment.invoke("runs_query/openapi.json", group=group))

    assert document["paths"] == everything["paths"]


# --- configuration -------------------------------------------------------------------------


def test_admin_secret_is_read_from_parameter_store_when_not_in_the_environment(
    deployment: Deployment, moto_clients: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/strait-runs/admin-secret", Value=ADMIN_SECRET, Type="SecureString")
    monkeypatch.delenv("STRAIT_ADMIN_SECRET")
    monkeypatch.setenv("STRAIT_ADMIN_SECRET_PARAM", "/strait-runs/admin-secret")
    clear_caches()

    response = deployment.invoke("jobs/create_project.json")

    assert response["statusCode"] == 201, response["body"]
