"""Effects from the outbox on DynamoDB Local with its stream (docs/engine.md#effects): the local
stack's effects worker, in a process of its own, made to fail, killed with SIGKILL in the middle
of a batch and started again, still releases a dependent run once and resumes a parent once; and a
record that fails past its retries lands on the failure queue, from which the documented replay
completes its effect."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from straitruns.adapters.clock import SystemClock
from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client, provision
from tests.support.backends import dynamodb_local_client
from tests.support.effects_worker import BLOCKED_FILE, FAULTS_ENV
from tests.support.engine import Engine, engine_services
from tests.support.in_run import start_run
from tests.support.statuses import move

pytestmark = pytest.mark.ddblocal

S = RunStatus
REPO = Path(__file__).resolve().parents[2]
WAIT_SECS = 60.0


@dataclass
class World:
    api: ApiClient
    services: Services
    engine: Engine
    dynamodb_url: str
    sqs_url: str
    failure_queue_url: str
    data_dir: Path

    def worker(self, faults: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
        """The effects worker in a process of its own, ready once it has started polling."""
        settings = self.services.settings
        env = {**os.environ, FAULTS_ENV: json.dumps(faults or {}), "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.effects_worker",
                "--dynamodb",
                self.dynamodb_url,
                "--sqs",
                self.sqs_url,
                "--table",
                settings.table_name,
                "--run-queue-url",
                settings.run_queue_url,
                "--dead-letter-queue-url",
                settings.dead_letter_queue_url,
                "--failure-queue-url",
                self.failure_queue_url,
                "--data-dir",
                str(self.data_dir),
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        assert b"effects worker ready" in line, line
        return process

    def finish(self, run_id: str, status: RunStatus = S.COMPLETED) -> Run:
        """Moves a run along the engine's path to `status` in the store; its effects are the
        worker's to carry out."""
        run = self.services.runs.get(run_id)
        assert run is not None
        path = {S.QUEUED: [S.DEQUEUED, S.EXECUTING, status], S.EXECUTING: [status]}[run.status]
        for target in path:
            run = move(self.services, run, target)
        return run

    def history(self, run_id: str) -> list[tuple[str | None, str]]:
        return self.engine.status_history(run_id)


@pytest.fixture
def world(dynamodb_local: str, sqs_server: str, tmp_path: Path) -> Iterator[World]:
    sqs: Any = boto3.client(
        "sqs",
        endpoint_url=sqs_server,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    dynamodb = dynamodb_local_client(dynamodb_local)
    table_name = f"runs-{uuid.uuid4().hex[:12]}"
    services = engine_services(dynamodb, sqs, SystemClock(), table_name=table_name)
    urls = provision(dynamodb, sqs, table_name)
    assert urls.effects_failure_queue_url
    # The API without the tests' own effects pump: the worker process is the only event source.
    api = api_client(services, SystemClock(), pump_effects=False)  # type: ignore[arg-type]
    yield World(
        api, services, Engine(services), dynamodb_local, sqs_server, urls.effects_failure_queue_url, tmp_path
    )
    dynamodb.delete_table(TableName=table_name)


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECS
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECS} s: {what}"
        time.sleep(0.05)


def _status(world: World, run_id: str) -> RunStatus:
    run = world.services.runs.get(run_id)
    assert run is not None
    return run.status


def _awaiting_parent(world: World) -> tuple[str, str]:
    """A parent run waiting for the one child it spawned with await_completion."""
    parent, sdk = start_run(world.api, job="parent")
    child = sdk.ok("spawn", {"job_slug": "child", "await_completion": True})
    assert _status(world, parent.id) == S.WAITING
    return parent.id, str(child["id"])


def test_effects_survive_failures_and_a_sigkill_mid_batch_and_a_failed_batch_is_replayed(
    world: World,
) -> None:
    api = world.api
    up, down = api.create_job("up")["id"], api.create_job("down")["id"]
    api.create_job("child")
    dependency = api.http.post(
        f"/v1/jobs/{down}/dependencies", json={"depends_on_job_id": up}, headers=api.auth
    )
    assert dependency.status_code == 201, dependency.text
    dependent = api.run(job="down")["id"]
    upstream = api.run(job="up")["id"]
    parent, child = _awaiting_parent(world)
    other_parent, other_child = _awaiting_parent(world)
    assert _status(world, dependent) == S.WAITING

    # Given a worker whose effects of the upstream run fail twice, and which stops dead inside the
    # batch holding the child's end, after carrying out its effect
    worker = world.worker({"fail": {upstream: 2}, "block": [child]})
    try:
        # When the upstream run and the child end
        world.finish(upstream)
        _wait(lambda: _status(world, dependent) == S.QUEUED, "the dependent released")
        world.finish(child)
        _wait(lambda: (world.data_dir / BLOCKED_FILE).exists(), "the worker inside the child's batch")
        # and the worker is killed there, before its position in the stream is saved
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.kill()
    (world.data_dir / BLOCKED_FILE).unlink()

    # And a new worker starts from the saved position; the other child's effects always fail
    worker = world.worker({"always_fail": [other_child]})
    try:
        world.finish(other_child)
        _wait(lambda: _status(world, parent) == S.QUEUED, "the parent resumed")
        messages = _wait_for_failure_messages(world)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)

    # Then the dependent was released once and the parent resumed once, whatever was re-delivered
    assert world.history(dependent).count(("waiting", "queued")) == 1, world.history(dependent)
    assert world.history(parent).count(("waiting", "queued")) == 1, world.history(parent)
    # and the batch that failed past its retries is named on the failure queue, its effect undone
    assert messages
    assert all(message["DDBStreamBatchInfo"]["shardId"] for message in messages)
    assert _status(world, other_parent) == S.WAITING

    # When the documented replay reads that queue
    replayed = _replay(world)

    # Then the other parent is resumed, once
    assert replayed.returncode == 0, replayed.stdout
    assert _status(world, other_parent) == S.QUEUED, replayed.stdout
    assert world.history(other_parent).count(("waiting", "queued")) == 1


def _wait_for_failure_messages(world: World) -> list[dict[str, Any]]:
    """The on-failure records on the failure queue (left there for the replay)."""
    sqs = world.services.queue.client

    def arrived() -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=world.failure_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) > 0

    _wait(arrived, "the failed batch on the failure queue")
    response = sqs.receive_message(
        QueueUrl=world.failure_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
    )
    return [json.loads(message["Body"]) for message in response.get("Messages", [])]


def _replay(world: World) -> subprocess.CompletedProcess[str]:
    settings = world.services.settings
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "layers" / "shared"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "STRAIT_REGION": "us-east-1",
        "STRAIT_TABLE_NAME": settings.table_name,
        "STRAIT_DYNAMODB_ENDPOINT_URL": world.dynamodb_url,
        "STRAIT_SQS_ENDPOINT_URL": world.sqs_url,
        "STRAIT_RUN_QUEUE_URL": settings.run_queue_url,
        "STRAIT_DEAD_LETTER_QUEUE_URL": settings.dead_letter_queue_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "straitruns.replay_effects", "--queue-url", world.failure_queue_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
