"""Races of the dispatcher (spec 3, 4.2, 4.9) on DynamoDB Local with real threads: duplicate and
concurrent deliveries, competing dispatchers, early messages, concurrency caps and their slots."""

import hashlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from straitruns.adapters.clock import SystemClock
from straitruns.adapters.run_queue import RunMessage, parse_message
from straitruns.adapters.store.engine import slot_counter
from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import format_ts
from straitruns.wiring import Services
from tests.support.app import ApiClient
from tests.support.backends import dynamodb_local_client
from tests.support.endpoint import JobEndpoint, Reply, Request, json_reply, slow_reply, status_reply
from tests.support.engine import Engine, SentMessages, engine_services, run_until, run_workers

pytestmark = pytest.mark.ddblocal

COMPLETED_HISTORY = [
    (None, "queued"),
    ("queued", "dequeued"),
    ("dequeued", "executing"),
    ("executing", "completed"),
]


def _services(dynamodb_local: str, sqs_server: str, table_name: str, **settings: Any) -> Services:
    """One dispatcher's process: its own clients on the shared table and queues."""
    sqs: Any = boto3.client(
        "sqs",
        endpoint_url=sqs_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    dynamodb = dynamodb_local_client(dynamodb_local)
    return engine_services(dynamodb, sqs, SystemClock(), table_name=table_name, **settings)


@pytest.fixture
def table_name() -> str:
    return f"runs-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def local_services(dynamodb_local: str, sqs_server: str, table_name: str) -> Iterator[Services]:
    """Services ready to dispatch on a fresh DynamoDB Local table (overrides the suite's)."""
    services = _services(dynamodb_local, sqs_server, table_name, heartbeat_interval_secs=0.1)
    yield services
    services.table.client.delete_table(TableName=table_name)


@pytest.fixture
def engine(local_services: Services) -> Engine:
    return Engine(local_services)


def _job(api: ApiClient, endpoint: JobEndpoint, **fields: Any) -> str:
    return str(api.create_job("race", endpoint_url=endpoint.url, **fields)["id"])


def _trigger(api: ApiClient, job_id: str, body: dict[str, Any] | None = None) -> str:
    response = api.trigger(job_id, body or {"payload": {}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _take_message(engine: Engine, run_id: str) -> RunMessage:
    """Receives the run's message (deleted: the test hands it to dispatchers itself)."""
    for message in engine.receive(wait_secs=1):
        engine.sqs.delete_message(QueueUrl=engine.queue_url, ReceiptHandle=message["ReceiptHandle"])
        parsed = parse_message(message["Body"], message.get("MessageAttributes"))
        if parsed.run_id == run_id:
            return parsed
    raise AssertionError(f"no message for {run_id}")


def _at_once(*calls: Any) -> list[str]:
    """Runs the calls in threads released together; returns their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait(timeout=30)  # a barrier nobody else reaches breaks, not hangs
        try:
            results[index] = calls[index]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return results


def _terminal(engine: Engine, run_ids: list[str]) -> bool:
    runs = engine.services.runs.get_many(run_ids)
    return len(runs) == len(run_ids) and all(run.is_terminal for run in runs.values())


# Duplicate deliveries -----------------------------------------------------------------------------


def test_same_message_handled_twice_in_a_row_calls_the_endpoint_once(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    run_id = _trigger(local_api, _job(local_api, endpoint))
    message = _take_message(engine, run_id)

    outcomes = [engine.services.dispatcher.handle(message) for _ in range(2)]

    assert outcomes == ["completed", "stale"]
    assert len(endpoint.requests) == 1
    assert engine.status_history(run_id) == COMPLETED_HISTORY


def test_same_message_handled_by_two_threads_at_once_calls_the_endpoint_once(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given five runs, each with its message about to be handled by two threads at the same moment
    endpoint.answer_always(slow_reply(0.1))
    job_id = _job(local_api, endpoint)
    for _ in range(5):
        run_id = _trigger(local_api, job_id)
        message = _take_message(engine, run_id)
        handle = engine.services.dispatcher.handle

        # When both threads handle it
        outcomes = _at_once(lambda m=message, h=handle: h(m), lambda m=message, h=handle: h(m))

        # Then one completed it, the other dropped it, and the run has one history
        assert sorted(outcomes)[0] == "completed", outcomes
        assert sorted(outcomes)[1] in ("stale", "lost-claim"), outcomes
        assert engine.status_history(run_id) == COMPLETED_HISTORY
    assert len(endpoint.requests) == 5
    assert len({r.header("X-Run-ID") for r in endpoint.requests}) == 5


def test_two_dispatchers_racing_on_one_run_call_the_endpoint_once(
    local_api: ApiClient,
    engine: Engine,
    endpoint: JobEndpoint,
    dynamodb_local: str,
    sqs_server: str,
    table_name: str,
) -> None:
    # Given a run with two copies of its message (the scheduler re-enqueued it meanwhile), and two
    # dispatcher processes, each with its own clients
    endpoint.answer_always(slow_reply(0.1))
    run_id = _trigger(local_api, _job(local_api, endpoint))
    message = _take_message(engine, run_id)
    other = _services(dynamodb_local, sqs_server, table_name)

    # When each dispatcher handles one copy at the same moment
    outcomes = _at_once(
        lambda: engine.services.dispatcher.handle(message), lambda: other.dispatcher.handle(message)
    )

    # Then exactly one called the endpoint and the run has one history
    assert sorted(outcomes)[0] == "completed", outcomes
    assert len(endpoint.requests) == 1
    assert engine.status_history(run_id) == COMPLETED_HISTORY


# Early messages -----------------------------------------------------------------------------------


def test_early_message_of_a_delayed_run_is_sent_back_with_the_remaining_delay(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    scheduled = datetime.now(UTC) + timedelta(seconds=20)
    run_id = _trigger(
        local_api, _job(local_api, endpoint), {"payload": {}, "scheduled_at": format_ts(scheduled)}
    )
    sent = SentMessages(engine.services.queue)

    outcome = engine.services.dispatcher.handle(RunMessage(run_id, engine.run(run_id).generation))

    assert outcome == "not-due"
    [back] = sent.of(run_id)
    remaining = (scheduled - datetime.now(UTC)).total_seconds()
    assert remaining <= back.delay_secs <= remaining + 1.5
    assert engine.run(run_id).status == "delayed"
    assert endpoint.requests == []


def test_early_message_of_a_run_waiting_for_its_retry_is_sent_back_with_the_remaining_delay(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a run whose first attempt failed and whose retry is due in about 20 s
    endpoint.script(status_reply(500))
    run_id = _trigger(
        local_api, _job(local_api, endpoint, retry_backoff="fixed", retry_initial_delay_secs=20)
    )
    engine.drain()
    waiting = engine.run(run_id)
    assert (waiting.status, waiting.next_retry_at is not None) == ("queued", True)
    sent = SentMessages(engine.services.queue)

    # When a copy of its message arrives now
    outcome = engine.services.dispatcher.handle(RunMessage(run_id, waiting.generation))

    # Then it goes back with the remaining delay and nothing is called
    assert outcome == "early"
    [back] = sent.of(run_id)
    assert waiting.next_retry_at is not None
    remaining = (waiting.next_retry_at - datetime.now(UTC)).total_seconds()
    assert remaining <= back.delay_secs <= remaining + 1.5
    assert len(endpoint.requests) == 1
    assert engine.run(run_id).status == "queued"


# Concurrency caps ---------------------------------------------------------------------------------


def test_max_concurrency_holds_under_five_concurrent_dispatchers_and_every_run_completes(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a job limited to 2 concurrent runs, an endpoint that takes 0.2 s, and 10 queued runs
    endpoint.answer_always(slow_reply(0.2))
    job_id = _job(local_api, endpoint, max_concurrency=2)
    run_ids = [_trigger(local_api, job_id, {"payload": {"n": n}}) for n in range(10)]
    waiting = [
        run_id
        for run_id in run_ids
        if local_api.http.get(f"/v1/runs/{run_id}", headers=local_api.auth).json()["waiting_reason"]
        == "concurrency_limit"
    ]

    # When 5 dispatchers work the queue at once (runs that find no slot wait for one)
    run_workers(engine, 5, lambda: _terminal(engine, run_ids), timeout_secs=60)

    # Then the endpoint never had more than 2 calls at once, each run was called once and
    # completed, some runs had to wait for a slot, and every slot was given back
    assert endpoint.max_in_flight == 2
    assert Counter(r.header("X-Run-ID") for r in endpoint.requests) == dict.fromkeys(run_ids, 1)
    assert {engine.run(run_id).status for run_id in run_ids} == {RunStatus.COMPLETED}
    assert waiting
    assert engine.services.engine.active_slots(slot_counter(job_id)) == 0


def test_max_concurrency_per_key_holds_for_each_key_under_concurrent_dispatchers(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a job limited to 2 concurrent runs per concurrency key, and 5 runs for each of 2 keys
    lock = threading.Lock()
    in_flight: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    def answer(request: Request) -> Reply:
        key = request.json()["key"]
        with lock:
            in_flight[key] += 1
            peak[key] = max(peak[key], in_flight[key])
        time.sleep(0.2)  # real time is what is under test: calls must overlap
        with lock:
            in_flight[key] -= 1
        return json_reply({"key": key})

    endpoint.respond(answer)
    job_id = _job(local_api, endpoint, max_concurrency_per_key=2)
    run_ids = [
        _trigger(local_api, job_id, {"payload": {"key": key}, "concurrency_key": key})
        for key in ("alpha", "beta")
        for _ in range(5)
    ]

    # When 5 dispatchers work the queue at once
    run_workers(engine, 5, lambda: _terminal(engine, run_ids), timeout_secs=60)

    # Then no key ever had more than 2 calls at once, all runs completed, every slot came back
    # (how far each key's calls overlapped depends on timing: the cap is what is under test)
    assert set(peak) == {"alpha", "beta"}
    assert max(peak.values()) <= 2
    assert endpoint.max_in_flight <= 4
    assert {engine.run(run_id).status for run_id in run_ids} == {RunStatus.COMPLETED}
    assert len(endpoint.requests) == 10
    for key in ("alpha", "beta"):
        counter = slot_counter(job_id, hashlib.sha256(key.encode()).hexdigest())
        assert engine.services.engine.active_slots(counter) == 0


def test_slots_are_given_back_exactly_once_on_every_way_out_of_an_attempt(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a job limited to 1 run at a time whose endpoint completes, refuses, fails then recovers,
    # accepts (202) and always fails
    endpoint.script(
        json_reply({"ok": True}),  # run 1: completed
        status_reply(404),  # run 2: failed
        status_reply(500),  # run 3: retried ...
        json_reply({"ok": True}),  # ... then completed
        status_reply(500),  # run 4: dead_letter after 2 attempts
        status_reply(500),
    )
    job_id = _job(local_api, endpoint, max_concurrency=1, max_attempts=2, retry_initial_delay_secs=0)
    counter = slot_counter(job_id)

    # When the runs are dispatched one after the other
    statuses = []
    for _ in range(4):
        run_id = _trigger(local_api, job_id)
        done = run_until(local_api, run_id, {"completed", "failed", "dead_letter"}, engine=engine)
        statuses.append(done["status"])

    # Then each ended as expected and the job's slot counter is back to 0
    assert statuses == ["completed", "failed", "completed", "dead_letter"]
    assert engine.services.engine.active_slots(counter) == 0


# What the endpoint sees during its call -----------------------------------------------------------


def test_run_is_executing_and_heartbeating_while_its_endpoint_works_and_keeps_its_last_beat(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given an endpoint that looks at its run half a second into the call (beats every 0.1 s)
    seen: list[Run | None] = []

    def answer(request: Request) -> Reply:
        time.sleep(0.5)  # real time: the executor's heartbeats are under test
        seen.append(engine.services.runs.get(request.header("X-Run-ID") or ""))
        return json_reply({"ok": True})

    endpoint.respond(answer)
    run_id = _trigger(local_api, _job(local_api, endpoint))

    engine.drain()

    [during] = seen
    assert during is not None
    assert during.status == RunStatus.EXECUTING
    assert during.started_at is not None
    assert during.heartbeat_at is not None
    assert during.heartbeat_at > during.started_at
    done = engine.run(run_id)
    assert done.status == RunStatus.COMPLETED
    assert done.heartbeat_at is not None
    assert done.heartbeat_at >= during.heartbeat_at  # the latest beat of the attempt is kept


def test_outcome_of_a_run_canceled_during_its_call_is_recorded_as_a_late_outcome(
    local_api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given an endpoint during whose call the run is canceled (an API cancel winning the race)
    def answer(request: Request) -> Reply:
        run = engine.services.runs.get(request.header("X-Run-ID") or "")
        assert run is not None
        engine.services.state.change(
            run, RunStatus.CANCELED, "canceled by a test", finished_at=run.started_at
        )
        return json_reply({"too": "late"})

    endpoint.respond(answer)
    job_id = _job(local_api, endpoint, max_concurrency=1)
    run_id = _trigger(local_api, job_id)

    # When the dispatcher records the call's outcome
    [delivery] = engine.drain()

    # Then the cancel stands, the completion is a late_outcome event, the slot came back once
    assert delivery.outcome == "late_outcome"
    done = engine.run(run_id)
    assert (done.status, done.result) == (RunStatus.CANCELED, None)
    assert engine.status_history(run_id)[-1] == ("executing", "canceled")
    [late] = engine.events(run_id, "late_outcome")
    assert late["data"]["http_status"] == 200
    assert engine.services.engine.active_slots(slot_counter(job_id)) == 0
