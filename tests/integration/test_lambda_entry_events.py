"""The engine's deployed entry points: functions/dispatcher/app.py invoked with the SQS events of
events/dispatcher/ and functions/scheduler/app.py with the EventBridge event of events/scheduler/,
on moto, configured from the environment only, calling a real HTTP job endpoint on loopback."""

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

import straitruns.entry
from straitruns.api.app import create_app
from tests.integration.test_lambda_entry import (
    EVENT_SOURCE_FOLDERS,
    EVENTS,
    clear_caches,
    deployed_env,  # noqa: F401 - the fixture, used by engine_env
    function_handler,
    lambda_context,
)
from tests.support.app import ADMIN_SECRET
from tests.support.endpoint import JobEndpoint, json_reply, status_reply

# Every events/ file of the event-source functions (a file missing here fails the suite).
EXERCISED_EVENTS = {
    "dispatcher/run_message.json",
    "dispatcher/batch.json",
    "dispatcher/dead_letter_redrive.json",
    "scheduler/tick.json",
}
OTHER_RUN_RECORD = 1  # batch.json: the record of {{OTHER_RUN_ID}}


class FailingForRunClient:
    """Wraps a DynamoDB client: every call that names `run_id` fails as a throttled request would."""

    def __init__(self, client: Any, run_id: str) -> None:
        self._client = client
        self.run_id = run_id

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(**params: Any) -> Any:
            if self.run_id in json.dumps(params, default=str):
                error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
                raise ClientError(error, name)  # type: ignore[arg-type]
            return attribute(**params)

        return call


@dataclass
class Engine:
    """The API on the deployed environment, a project key, and the events' placeholder values."""

    http: TestClient
    auth: dict[str, str]
    run_queue_url: str
    values: dict[str, str] = field(default_factory=dict)

    def job(self, endpoint: JobEndpoint, slug: str = "work", **fields: Any) -> str:
        body = {"slug": slug, "name": slug, "endpoint_url": endpoint.url, **fields}
        response = self.http.post("/v1/jobs", json=body, headers=self.auth)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def trigger(self, job_id: str, payload: object) -> str:
        response = self.http.post(f"/v1/jobs/{job_id}/trigger", json={"payload": payload}, headers=self.auth)
        assert response.status_code == 201, response.text
        self.values["JOB_ID"] = job_id
        return str(response.json()["id"])

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/runs/{run_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        return run

    def queued_bodies(self) -> list[str]:
        """Bodies of the messages visible on the run queue (they stay invisible afterwards)."""
        sqs = straitruns.entry.shared_services().queue.client
        response = sqs.receive_message(QueueUrl=self.run_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [message["Body"] for message in response.get("Messages", [])]

    def event(self, name: str) -> dict[str, Any]:
        text = (EVENTS / name).read_text(encoding="utf-8")
        for placeholder, value in self.values.items():
            text = text.replace("{{" + placeholder + "}}", value)
        assert "{{" not in text, f"{name} has a placeholder the test does not fill"
        event: dict[str, Any] = json.loads(text)
        return event

    def invoke(self, name: str) -> Any:
        group = name.split("/", 1)[0]
        return function_handler(group)(self.event(name), lambda_context(group))


@pytest.fixture
def engine_env(deployed_env: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """The deployed environment, with loopback endpoints allowed (the job endpoint is this test's)."""
    monkeypatch.setenv("STRAIT_ALLOW_PRIVATE_ENDPOINTS", "true")
    clear_caches()
    return deployed_env


@pytest.fixture
def engine(engine_env: str) -> Engine:
    """A project and a `*` key created through the API on moto."""
    http = TestClient(create_app(straitruns.entry.shared_services))
    admin = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    project = http.post("/v1/projects", json={"name": "engine"}, headers=admin)
    assert project.status_code == 201, project.text
    key = http.post(f"/v1/projects/{project.json()['id']}/api-keys", json={"name": "all"}, headers=admin)
    assert key.status_code == 201, key.text
    return Engine(http, {"Authorization": f"Bearer {key.json()['key']}"}, engine_env)


def test_every_event_source_file_is_exercised() -> None:
    files = {
        path.relative_to(EVENTS).as_posix()
        for folder in EVENT_SOURCE_FOLDERS
        for path in (EVENTS / folder).glob("*.json")
    }

    assert files == EXERCISED_EVENTS


def test_run_message_event_is_the_message_a_trigger_queues(engine: Engine, endpoint: JobEndpoint) -> None:
    run_id = engine.trigger(engine.job(endpoint), {"order": 7})
    engine.values["RUN_ID"] = run_id

    [record] = engine.event("dispatcher/run_message.json")["Records"]

    assert engine.queued_bodies() == [record["body"]]


def test_run_message_event_dispatches_the_run_to_completion(engine: Engine, endpoint: JobEndpoint) -> None:
    endpoint.answer_always(json_reply({"invoice": "sent"}))
    run_id = engine.trigger(engine.job(endpoint), {"order": 7})
    engine.values["RUN_ID"] = run_id

    response = engine.invoke("dispatcher/run_message.json")

    assert response == {"batchItemFailures": []}
    run = engine.run(run_id)
    assert (run["status"], run["result"], run["attempt"]) == ("completed", {"invoice": "sent"}, 1)
    [call] = endpoint.requests
    assert (call.header("X-Run-ID"), call.json()) == (run_id, {"order": 7})


def _two_runs(engine: Engine, endpoint: JobEndpoint) -> None:
    """Triggers the two runs batch.json names."""
    job_id = engine.job(endpoint)
    engine.values["RUN_ID"] = engine.trigger(job_id, {"n": 1})
    engine.values["OTHER_RUN_ID"] = engine.trigger(job_id, {"n": 2})


def test_record_whose_store_fails_is_reported_by_its_message_id(
    engine: Engine, endpoint: JobEndpoint
) -> None:
    _two_runs(engine, endpoint)
    event = engine.event("dispatcher/batch.json")
    table = straitruns.entry.shared_services().table
    healthy = table.client
    table.client = FailingForRunClient(healthy, engine.values["OTHER_RUN_ID"])

    response = engine.invoke("dispatcher/batch.json")

    table.client = healthy
    failed_message_id = event["Records"][OTHER_RUN_RECORD]["messageId"]
    assert response == {"batchItemFailures": [{"itemIdentifier": failed_message_id}]}
    assert engine.run(engine.values["RUN_ID"])["status"] == "completed"
    assert engine.run(engine.values["OTHER_RUN_ID"])["status"] == "queued"


def test_malformed_body_in_a_batch_is_dropped_without_failing_it(
    engine: Engine, endpoint: JobEndpoint
) -> None:
    _two_runs(engine, endpoint)

    response = engine.invoke("dispatcher/batch.json")

    assert response == {"batchItemFailures": []}
    assert [engine.run(engine.values[name])["status"] for name in ("RUN_ID", "OTHER_RUN_ID")] == [
        "completed",
        "completed",
    ]
    assert len(endpoint.requests) == 2


def test_redriven_dead_letter_message_replays_the_run(engine: Engine, endpoint: JobEndpoint) -> None:
    endpoint.answer_always(status_reply(500))
    run_id = engine.trigger(engine.job(endpoint, max_attempts=1), {"n": 1})
    engine.values["RUN_ID"] = run_id
    assert engine.invoke("dispatcher/run_message.json") == {"batchItemFailures": []}
    assert engine.run(run_id)["status"] == "dead_letter"
    dead = straitruns.entry.shared_services().runs.get(run_id)
    assert dead is not None
    engine.values |= {"DEAD_RUN_ID": run_id, "DEAD_RUN_GENERATION": str(dead.generation)}

    response = engine.invoke("dispatcher/dead_letter_redrive.json")

    assert response == {"batchItemFailures": []}
    run = engine.run(run_id)
    assert (run["status"], run["attempt"]) == ("queued", 1)


def test_scheduled_event_returns_what_the_tick_did(
    engine: Engine, endpoint: JobEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queued run whose re-enqueue is due at once (its message may have been lost)
    monkeypatch.setenv("STRAIT_REENQUEUE_AFTER_SECS", "0")
    clear_caches()
    run_id = engine.trigger(engine.job(endpoint), {"n": 1})
    job_id = engine.values["JOB_ID"]
    assert engine.queued_bodies() == [json.dumps({"run_id": run_id, "generation": 0, "job_id": job_id})]

    # When EventBridge invokes the scheduler
    done = engine.invoke("scheduler/tick.json")

    # Then it answers its counts, and the run's message is on the queue again
    assert done == {"enqueued": 1}
    job_id = engine.values["JOB_ID"]
    assert engine.queued_bodies() == [json.dumps({"run_id": run_id, "generation": 0, "job_id": job_id})]
