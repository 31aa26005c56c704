"""An operator's SQS redrive of the dead-letter queue into the run queue (spec 4.7). Moto lacks
StartMessageMoveTask, so `_redrive` does what it does: every message of the dead-letter queue is
sent, body and message attributes, to the run queue."""

from typing import Any

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.run_queue import parse_message
from straitruns.wiring import Services
from tests.support.app import ApiClient
from tests.support.endpoint import JobEndpoint, json_reply, status_reply
from tests.support.engine import Engine, engine_services


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock) -> Services:
    dynamodb, sqs = moto_clients
    return engine_services(dynamodb, sqs, clock)


@pytest.fixture
def engine(services: Services) -> Engine:
    return Engine(services)


def _redrive(engine: Engine, keep: bool = False) -> int:
    """Moves every dead-letter message to the run queue, as StartMessageMoveTask with the run
    queue as destination does. With `keep`, the messages also stay on the dead-letter queue (so
    a second redrive sends them again). Returns how many were sent."""
    dead_letter_url = engine.services.dead_letters.dead_letter_queue.queue_url
    moved: list[dict[str, Any]] = []
    while messages := engine.receive(dead_letter_url):
        moved.extend(messages)
    for message in moved:
        engine.sqs.send_message(
            QueueUrl=engine.queue_url,
            MessageBody=message["Body"],
            MessageAttributes=message.get("MessageAttributes", {}),
        )
        if keep:
            engine.sqs.change_message_visibility(
                QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            engine.sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
    return len(moved)


def _dead_lettered_run(api: ApiClient, engine: Engine, job_id: str) -> str:
    """A run that failed its 2 attempts with 500 and is now dead_letter."""
    response = api.trigger(job_id, {"payload": {"n": 1}})
    assert response.status_code == 201, response.text
    run_id = str(response.json()["id"])
    engine.drain()
    assert engine.run(run_id).status == "dead_letter"
    return run_id


def _failing_job(api: ApiClient, endpoint: JobEndpoint) -> str:
    endpoint.answer_always(status_reply(500))
    job = api.create_job("flaky", endpoint_url=endpoint.url, max_attempts=2, retry_initial_delay_secs=0)
    return str(job["id"])


def test_redriven_dead_letter_message_replays_the_run_on_a_new_generation_from_attempt_1(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a dead-lettered run whose endpoint now answers 200
    run_id = _dead_lettered_run(api, engine, _failing_job(api, endpoint))
    dead = engine.run(run_id)
    endpoint.answer_always(json_reply({"fixed": True}))

    # When the dead-letter queue is redriven and the redriven message is dispatched
    assert _redrive(engine) == 1
    [delivery] = engine.deliver()

    # Then the run is replayed as dlq-replay would: queued, attempt 1, new generation, errors cleared
    assert (delivery.run_id, delivery.dead_letter, delivery.outcome) == (run_id, True, "replayed")
    replayed = engine.run(run_id)
    assert (replayed.status, replayed.attempt) == ("queued", 1)
    assert replayed.generation == dead.generation + 1
    assert (replayed.error, replayed.error_class, replayed.next_retry_at) == (None, None, None)
    last = engine.events(run_id, "status_change")[-1]["data"]
    assert (last["from"], last["to"], last["reason"]) == ("dead_letter", "queued", "sqs redrive")


def test_redriven_run_completes_when_the_endpoint_now_answers_200(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    run_id = _dead_lettered_run(api, engine, _failing_job(api, endpoint))
    endpoint.answer_always(json_reply({"fixed": True}))

    _redrive(engine)
    engine.drain()

    done = api.http.get(f"/v1/runs/{run_id}", headers=api.auth).json()
    assert (done["status"], done["attempt"], done["result"]) == ("completed", 1, {"fixed": True})
    assert [r.header("X-Attempt") for r in endpoint.requests] == ["1", "2", "1"]
    assert endpoint.requests[-1].header("X-Previous-Error") is None


def test_redriving_the_same_messages_twice_replays_each_run_once(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given two dead-lettered runs, and their dead-letter messages redriven twice
    job_id = _failing_job(api, endpoint)
    runs = [_dead_lettered_run(api, engine, job_id) for _ in range(2)]
    endpoint.answer_always(json_reply({"fixed": True}))
    assert _redrive(engine, keep=True) == 2
    assert _redrive(engine) == 2

    # When the run queue is drained
    outcomes = sorted(d.outcome for d in engine.drain())

    # Then each run was replayed and called once; the second copies were dropped as stale
    assert outcomes == ["completed", "completed", "replayed", "replayed", "stale", "stale"]
    for run_id in runs:
        history = engine.status_history(run_id)
        assert history.count(("dead_letter", "queued")) == 1
        assert history[-1] == ("executing", "completed")
    assert len(endpoint.requests) == 2 * 2 + 2


def test_redriven_message_of_a_run_already_replayed_by_the_api_is_dropped(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a dead-lettered run replayed through dlq-replay, which then completed
    run_id = _dead_lettered_run(api, engine, _failing_job(api, endpoint))
    endpoint.answer_always(json_reply({"fixed": True}))
    engine.services.dead_letters.replay(engine.run(run_id))
    engine.drain()
    calls = len(endpoint.requests)

    # When an operator redrives the dead-letter queue afterwards
    _redrive(engine)
    deliveries = engine.drain()

    # Then its old message changes nothing
    assert [d.outcome for d in deliveries] == ["stale"]
    assert engine.run(run_id).status == "completed"
    assert len(endpoint.requests) == calls


def test_dead_letter_message_names_the_run_and_its_generation(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    run_id = _dead_lettered_run(api, engine, _failing_job(api, endpoint))

    [message] = engine.receive(engine.services.dead_letters.dead_letter_queue.queue_url)

    parsed = parse_message(message["Body"], message.get("MessageAttributes"))
    assert (parsed.run_id, parsed.generation, parsed.dead_letter) == (
        run_id,
        engine.run(run_id).generation,
        True,
    )


def test_redriven_run_past_its_expires_at_is_replayed_not_expired(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given a dead-lettered run redriven long after its expires_at (dlq-replay never makes a run
    # expirable again, spec 4.1)
    endpoint.answer_always(status_reply(500))
    job = api.create_job("short", endpoint_url=endpoint.url, max_attempts=1, run_ttl_secs=60)
    response = api.trigger(job["id"], {"payload": {}})
    run_id = str(response.json()["id"])
    engine.drain()
    endpoint.answer_always(json_reply({"fixed": True}))
    clock.advance(3600)

    # When it is redriven and the scheduler ticks a minute later, before the replay is dispatched
    _redrive(engine)
    engine.deliver()
    clock.advance(61)
    engine.tick()
    engine.drain()

    # Then it completed
    assert engine.run(run_id).status == "completed"
