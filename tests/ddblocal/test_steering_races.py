"""Steering under real concurrency on DynamoDB Local (spec 3, 5 items 5, 9): cancel racing the
completion of the run's call, many times; bulk-cancel-all sweeping 2,500 runs over successive
calls, reading each run once."""

import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest

from straitruns.adapters.clock import SystemClock
from straitruns.adapters.run_queue import parse_message
from straitruns.adapters.store.table import ReadMeter
from straitruns.domain.ids import IdKind
from straitruns.domain.models import Run
from straitruns.domain.statuses import TERMINAL, RunStatus
from straitruns.services.bulk import BulkLimits
from straitruns.wiring import Services
from tests.support.app import ApiClient
from tests.support.backends import dynamodb_local_client
from tests.support.endpoint import JobEndpoint, Reply, Request, json_reply
from tests.support.engine import Engine, engine_services
from tests.support.statuses import seed_runs

pytestmark = pytest.mark.ddblocal

S = RunStatus
RACES = 30


@pytest.fixture
def local_services(dynamodb_local: str, sqs_server: str) -> Iterator[Services]:
    """Services ready to dispatch on a fresh DynamoDB Local table (overrides the suite's)."""
    sqs: Any = boto3.client(
        "sqs",
        endpoint_url=sqs_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table_name = f"runs-{uuid.uuid4().hex[:12]}"
    services = engine_services(
        dynamodb_local_client(dynamodb_local), sqs, SystemClock(), table_name=table_name
    )
    yield services
    services.table.client.delete_table(TableName=table_name)


@pytest.fixture
def engine(local_services: Services) -> Engine:
    return Engine(local_services)


def _take_message(engine: Engine, run_id: str) -> Any:
    """Receives the run's message (deleted: the test hands it to the dispatcher itself)."""
    for message in engine.receive(wait_secs=1):
        engine.sqs.delete_message(QueueUrl=engine.queue_url, ReceiptHandle=message["ReceiptHandle"])
        parsed = parse_message(message["Body"], message.get("MessageAttributes"))
        if parsed.run_id == run_id:
            return parsed
    raise AssertionError(f"no message for {run_id}")


def test_cancel_racing_completion_ends_each_run_in_exactly_one_of_the_two(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint, live_url: str
) -> None:
    # Given an endpoint that answers 200 after a few milliseconds
    def answer(_request: Request) -> Reply:
        threading.Event().wait(random.uniform(0, 0.02))  # real time: the race is under test
        return json_reply({"done": True})

    endpoint.respond(answer)
    job_id = local_api.create_job("race", endpoint_url=endpoint.url)["id"]
    tally: Counter[str] = Counter()

    with httpx.Client(base_url=live_url, headers=local_api.auth, timeout=30) as client:
        for _ in range(RACES):
            run_id = local_api.trigger(job_id, {"payload": {}}).json()["id"]
            message = _take_message(engine, run_id)
            answers: dict[str, Any] = {}
            barrier = threading.Barrier(2)

            def dispatch(
                m: Any = message, into: dict[str, Any] = answers, start: threading.Barrier = barrier
            ) -> None:
                start.wait(timeout=30)
                into["dispatch"] = engine.services.dispatcher.handle(m)

            def cancel(
                run: str = run_id, into: dict[str, Any] = answers, start: threading.Barrier = barrier
            ) -> None:
                start.wait(timeout=30)
                threading.Event().wait(random.uniform(0, 0.06))
                into["cancel"] = client.delete(f"/v1/runs/{run}").status_code

            # When a dispatcher completes it while an API call cancels it
            threads = [threading.Thread(target=dispatch), threading.Thread(target=cancel)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)

            # Then it ended in one of the two, with one terminal status_change, and the loser knows
            run = engine.run(run_id)
            terminal = [to for _, to in engine.status_history(run_id) if S(to) in TERMINAL]
            assert terminal == [run.status.value], (run_id, engine.status_history(run_id))
            if run.status == S.CANCELED:
                assert answers["cancel"] == 204, answers
                assert answers["dispatch"] in ("late_outcome", "lost-claim", "stale"), answers
            else:
                assert (run.status, answers["cancel"], answers["dispatch"]) == (S.COMPLETED, 409, "completed")
            sequences = [event["sequence"] for event in engine.events(run_id)]
            assert sequences == sorted(set(sequences))
            tally[run.status.value] += 1

    assert sum(tally.values()) == RACES, tally


def _seed(services: Services, runs: list[Run]) -> None:
    """Stores runs as their creation would, 25 items per request."""
    seed_runs(services, runs)


def _runs(
    services: Services, job_id: str, project_id: str, status: RunStatus, count: int, start: datetime
) -> list[Run]:
    return [
        Run(
            id=services.ids.new(IdKind.RUN),
            job_id=job_id,
            project_id=project_id,
            status=status,
            created_by="admin",
            created_at=start + timedelta(milliseconds=n),
            queued_at=start,
            finished_at=start if status in TERMINAL else None,
            scheduled_at=start + timedelta(days=1) if status == S.DELAYED else None,
        )
        for n in range(count)
    ]


def test_bulk_cancel_all_sweeps_2500_runs_over_successive_calls_reading_each_once(
    local_api: ApiClient, local_services: Services
) -> None:
    # Given 2,500 queued runs of job `a`, then 30 queued runs of job `b`, 20 delayed and 10
    # completed runs of `a` (seeded straight into the table: only their items matter here)
    project = local_api.project_id
    job_a = local_api.create_job("a")["id"]
    job_b = local_api.create_job("b")["id"]
    start = datetime.now(UTC) - timedelta(hours=1)
    matching = _runs(local_services, job_a, project, S.QUEUED, 2500, start)
    later = start + timedelta(minutes=10)
    outside = [
        *_runs(local_services, job_b, project, S.QUEUED, 30, later),
        *_runs(local_services, job_a, project, S.DELAYED, 20, later),
        *_runs(local_services, job_a, project, S.COMPLETED, 10, later),
    ]
    _seed(local_services, [*matching, *outside])
    local_services.table.meter = ReadMeter()
    # The 20 s work budget is not under test here (a loaded machine would end calls early); eight
    # runs are cancelled at once, as the deployed function does.
    local_services.bulk.timer = lambda: 0.0
    local_services.bulk.bounds = BulkLimits(workers=8)

    # When queued runs of `a` are cancelled until nothing more is left (the effects of the
    # cancels, 2,500 stream records that release nothing here, are not delivered)
    answers = []
    with local_api.http.effects_held():  # type: ignore[attr-defined]
        for _ in range(5):
            response = local_api.http.post(
                "/v1/runs/bulk-cancel-all",
                params={"project_id": project},
                json={"job_id": job_a, "status": "queued"},
                headers=local_api.auth,
            )
            assert response.status_code == 200, response.text
            answers.append(response.json())
            if not answers[-1]["has_more"]:
                break

    # Then three calls cancelled them, oldest first, 1,000 at most each
    assert [(a["canceled"], a["failed"], a["has_more"]) for a in answers] == [
        (1000, 0, True),
        (1000, 0, True),
        (500, 0, False),
    ]
    assert [r["id"] for a in answers for r in a["results"]] == [run.id for run in matching]
    # each run was read once (its RUN and LIVE items), the 30 queued runs of `b` included
    assert local_services.table.meter.by_operation["batch_get"] == 2 * (2500 + 30)
    # and nothing outside the filter changed
    found = local_services.runs.get_many([run.id for run in [*matching, *outside]])
    assert {found[run.id].status for run in matching} == {S.CANCELED}
    assert [found[run.id].status for run in outside] == [run.status for run in outside]
