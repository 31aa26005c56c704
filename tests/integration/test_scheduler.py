"""The scheduler (spec 4.2, 4.5): lost messages, lost and overdue attempts, vanished dispatchers,
expiry, and promotions beyond the SQS delay limit. Moto and a FrozenClock: time moves only when a
test advances it, and each tick is called directly (as the EventBridge rule would)."""

from datetime import timedelta
from typing import Any

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.store.engine import slot_counter
from straitruns.adapters.store.keys import WAKE_SHARDS
from straitruns.domain.ids import IdKind
from straitruns.domain.models import Run
from straitruns.domain.timefmt import format_ts
from straitruns.services.run_state import with_wake
from straitruns.wiring import Services
from tests.support.app import ApiClient
from tests.support.endpoint import JobEndpoint, json_reply, status_reply
from tests.support.engine import Engine, SentMessages, engine_services, run_until
from tests.support.statuses import seed_runs

# Not the defaults (60 s), so the tests prove the settings are honoured.
REENQUEUE_AFTER_SECS = 30
HEARTBEAT_LOST_SECS = 45
TIMEOUT_GRACE_SECS = 5  # the engine's grace past an attempt's timeout (spec 4.5: "a few seconds")


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock) -> Services:
    dynamodb, sqs = moto_clients
    return engine_services(
        dynamodb,
        sqs,
        clock,
        reenqueue_after_secs=REENQUEUE_AFTER_SECS,
        heartbeat_lost_secs=HEARTBEAT_LOST_SECS,
    )


@pytest.fixture
def engine(services: Services) -> Engine:
    return Engine(services)


@pytest.fixture
def sent(services: Services) -> SentMessages:
    return SentMessages(services.queue)


def _job(api: ApiClient, endpoint: JobEndpoint, slug: str = "work", **fields: Any) -> str:
    return str(api.create_job(slug, endpoint_url=endpoint.url, **fields)["id"])


def _trigger(api: ApiClient, job_id: str, body: dict[str, Any] | None = None) -> str:
    response = api.trigger(job_id, body or {"payload": {}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _get(api: ApiClient, run_id: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/runs/{run_id}", headers=api.auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def _queued_run_with_lost_message(api: ApiClient, engine: Engine, job_id: str, **body: Any) -> str:
    """A run stored as queued whose SQS message never arrives (the send after the write failed)."""
    run_id = _trigger(api, job_id, {"payload": {}, **body})
    assert engine.lose_messages(run_id) == 1
    return run_id


# Lost messages -------------------------------------------------------------------------------------


def test_queued_run_whose_message_was_lost_is_reenqueued_after_reenqueue_after_secs_and_completes(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given a queued run whose message was lost
    run_id = _queued_run_with_lost_message(api, engine, _job(api, endpoint))
    sent = SentMessages(engine.services.queue)

    # When the scheduler ticks just before and then at STRAIT_REENQUEUE_AFTER_SECS
    clock.advance(REENQUEUE_AFTER_SECS - 1)
    before = engine.tick()
    sent_before = len(sent.of(run_id))
    clock.advance(1)
    at = engine.tick()

    # Then only the second tick re-enqueues it, and the re-enqueued message completes it
    assert (before, sent_before) == ({}, 0)
    assert at == {"enqueued": 1}
    assert [m.delay_secs for m in sent.of(run_id)] == [0]
    assert run_until(api, run_id, {"completed"}, engine=engine)["attempt"] == 1
    assert len(endpoint.requests) == 1


def test_parked_run_is_skipped_by_the_lost_message_rule(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock, sent: SentMessages
) -> None:
    job_id = _job(api, endpoint, paused=True)
    run_id = _trigger(api, job_id)

    clock.advance(REENQUEUE_AFTER_SECS * 3)
    engine.tick()
    engine.tick()

    assert sent.of(run_id) == []
    assert _get(api, run_id)["status"] == "queued"
    assert engine.status_history(run_id) == [(None, "queued")]
    assert endpoint.requests == []


# Lost and overdue attempts -------------------------------------------------------------------------


def test_executing_run_whose_heartbeat_stops_is_retried_with_error_class_heartbeat(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given an attempt that started and whose executor then died
    run_id = _queued_run_with_lost_message(api, engine, _job(api, endpoint, retry_initial_delay_secs=0))
    engine.start_attempt(run_id)

    # When the scheduler ticks just before and at STRAIT_HEARTBEAT_LOST_SECS after the last beat
    clock.advance(HEARTBEAT_LOST_SECS - 1)
    engine.tick()
    still = _get(api, run_id)["status"]
    clock.advance(1)
    done = engine.tick()

    # Then the attempt is lost only at the second tick and retried with error_class heartbeat
    assert still == "executing"
    assert done == {"retry": 1}
    retried = _get(api, run_id)
    assert (retried["status"], retried["attempt"], retried["error_class"]) == ("queued", 2, "heartbeat")
    assert retried["error"] == "heartbeat lost"
    assert engine.status_history(run_id)[-1] == ("executing", "queued")
    engine.drain()
    assert _get(api, run_id)["status"] == "completed"
    assert [r.header("X-Attempt") for r in endpoint.requests] == ["2"]


def test_heartbeat_moves_the_loss_deadline(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    run_id = _queued_run_with_lost_message(api, engine, _job(api, endpoint))
    engine.start_attempt(run_id)

    clock.advance(HEARTBEAT_LOST_SECS - 5)
    engine.services.engine.heartbeat(run_id, clock.now())  # an SDK or executor heartbeat
    clock.advance(10)
    engine.tick()
    alive = _get(api, run_id)["status"]
    clock.advance(HEARTBEAT_LOST_SECS)
    engine.tick()

    assert alive == "executing"
    assert _get(api, run_id)["error_class"] == "heartbeat"


def test_last_attempt_that_loses_its_heartbeat_crashes_the_run(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    run_id = _queued_run_with_lost_message(api, engine, _job(api, endpoint, max_attempts=1))
    engine.start_attempt(run_id)

    clock.advance(HEARTBEAT_LOST_SECS)
    engine.tick()

    done = _get(api, run_id)
    assert (done["status"], done["error_class"], done["attempt"]) == ("crashed", "heartbeat", 1)
    assert done["finished_at"] is not None
    assert engine.status_history(run_id)[-1] == ("executing", "crashed")


def test_attempt_past_its_timeout_plus_grace_is_retried_with_error_class_timeout(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given an attempt of a job with a 10 s timeout (heartbeats are not lost within 15 s)
    run_id = _queued_run_with_lost_message(api, engine, _job(api, endpoint, timeout_secs=10))
    engine.start_attempt(run_id)

    # When the scheduler ticks within the grace and then past it
    clock.advance(10 + TIMEOUT_GRACE_SECS - 1)
    engine.tick()
    within_grace = _get(api, run_id)["status"]
    clock.advance(1)
    engine.tick()

    # Then the attempt is reaped only past the grace, as a timeout
    assert within_grace == "executing"
    retried = _get(api, run_id)
    assert (retried["status"], retried["attempt"], retried["error_class"]) == ("queued", 2, "timeout")


def test_last_attempt_past_its_timeout_times_the_run_out(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    job_id = _job(api, endpoint)
    run_id = _queued_run_with_lost_message(
        api, engine, job_id, timeout_secs_override=10, max_attempts_override=1
    )
    engine.start_attempt(run_id)

    clock.advance(10 + TIMEOUT_GRACE_SECS)
    engine.tick()

    done = _get(api, run_id)
    assert (done["status"], done["error_class"]) == ("timed_out", "timeout")


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_reaped_attempt_gives_its_concurrency_slot_back(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock, max_attempts: int
) -> None:
    job_id = _job(api, endpoint, max_concurrency=1, max_attempts=max_attempts)
    run_id = _queued_run_with_lost_message(api, engine, job_id)
    engine.start_attempt(run_id)
    held = engine.services.engine.active_slots(slot_counter(job_id))

    clock.advance(HEARTBEAT_LOST_SECS)
    engine.tick()

    assert held == 1
    assert _get(api, run_id)["status"] == ("crashed" if max_attempts == 1 else "queued")
    assert engine.services.engine.active_slots(slot_counter(job_id)) == 0


def test_lost_attempt_of_a_job_deleted_meanwhile_ends_system_failed(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    job_id = _job(api, endpoint)
    run_id = _queued_run_with_lost_message(api, engine, job_id)
    engine.start_attempt(run_id)
    job = engine.services.jobs_store.get(job_id)
    assert job is not None
    engine.services.jobs_store.delete(job)

    clock.advance(HEARTBEAT_LOST_SECS)
    engine.tick()

    done = _get(api, run_id)
    assert (done["status"], done["error_class"]) == ("system_failed", "system")


def test_dequeued_run_whose_dispatcher_vanished_goes_back_to_queued_without_using_an_attempt(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given a run claimed by a dispatcher that vanished before calling the endpoint
    run_id = _queued_run_with_lost_message(api, engine, _job(api, endpoint, max_concurrency=1))
    engine.claim(run_id)

    # When the scheduler finds the claim abandoned
    clock.advance(HEARTBEAT_LOST_SECS)
    assert engine.tick() == {"requeued": 1}

    # Then the run is queued again on the same attempt, its slot given back, and it completes
    requeued = _get(api, run_id)
    assert (requeued["status"], requeued["attempt"], requeued["error_class"]) == ("queued", 1, None)
    assert engine.services.engine.active_slots(slot_counter(requeued["job_id"])) == 0
    engine.drain()
    done = _get(api, run_id)
    assert (done["status"], done["attempt"]) == ("completed", 1)
    assert [r.header("X-Attempt") for r in endpoint.requests] == ["1"]


# Expiry ----------------------------------------------------------------------------------------------


def test_never_claimed_run_past_expires_at_expires_and_is_never_called(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    run_id = _queued_run_with_lost_message(api, engine, _job(api, endpoint), ttl_secs=60)

    clock.advance(60)
    engine.tick()
    engine.redeliver(run_id)  # a late copy of its message

    done = _get(api, run_id)
    assert done["status"] == "expired"
    assert done["finished_at"] is not None
    assert engine.status_history(run_id) == [(None, "queued"), ("queued", "expired")]
    assert endpoint.requests == []


def test_claimed_run_waiting_for_a_retry_does_not_expire(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given a run whose first attempt failed, retried only after its expires_at
    endpoint.script(status_reply(500), json_reply({"ok": True}))
    job_id = _job(api, endpoint, retry_backoff="fixed", retry_initial_delay_secs=600)
    run_id = _trigger(api, job_id, {"payload": {}, "ttl_secs": 60})
    engine.drain()

    # When the clock passes expires_at and the retry falls due
    clock.advance(60 * 15)
    engine.tick()
    engine.redeliver(run_id)

    # Then it was never expired: its retry ran and completed it
    assert _get(api, run_id)["status"] == "completed"
    assert "expired" not in [to for _, to in engine.status_history(run_id)]


def test_parked_run_past_expires_at_expires(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given a run of a paused job, never claimed
    run_id = _trigger(api, _job(api, endpoint, paused=True), {"payload": {}, "ttl_secs": 60})

    # When the scheduler ticks past its expires_at
    clock.advance(REENQUEUE_AFTER_SECS)
    engine.tick()
    clock.advance(60)
    engine.tick()

    # Then it expired (spec 3: not claimed before expires_at)
    assert _get(api, run_id)["status"] == "expired"


# Beyond the SQS delay limit (15 minutes) -------------------------------------------------------------


def test_retry_due_beyond_15_minutes_is_handed_to_sqs_by_the_scheduler(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock, sent: SentMessages
) -> None:
    # Given a run whose retry is due in about an hour (too far for an SQS delay)
    endpoint.script(status_reply(500), json_reply({"ok": True}))
    run_id = _trigger(api, _job(api, endpoint, retry_backoff="fixed", retry_initial_delay_secs=3600))
    engine.drain()
    retry_at = engine.run(run_id).next_retry_at
    assert retry_at is not None
    messages_after_failure = len(sent.of(run_id))

    # When the scheduler ticks just before and at 15 minutes before the retry
    clock.set(retry_at - timedelta(seconds=901))
    engine.tick()
    too_early = len(sent.of(run_id))
    clock.set(retry_at - timedelta(seconds=900))
    engine.tick()

    # Then the retry's message is sent only then, with the exact remaining delay
    assert messages_after_failure == too_early == 1  # the trigger's own message
    assert [m.delay_secs for m in sent.of(run_id)[1:]] == [900]
    clock.set(retry_at)
    engine.redeliver(run_id)
    assert _get(api, run_id)["status"] == "completed"


def test_delayed_run_beyond_15_minutes_is_promoted_by_the_scheduler_and_never_runs_early(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock, sent: SentMessages
) -> None:
    # Given a run scheduled an hour ahead
    scheduled = clock.now() + timedelta(hours=1)
    run_id = _trigger(api, _job(api, endpoint), {"payload": {}, "scheduled_at": format_ts(scheduled)})
    assert sent.of(run_id) == []

    # When the scheduler ticks 15 minutes before scheduled_at
    clock.set(scheduled - timedelta(minutes=20))
    engine.tick()
    clock.set(scheduled - timedelta(minutes=15))
    engine.tick()

    # Then its message is sent with the remaining delay, and the run stays delayed until then
    assert [m.delay_secs for m in sent.of(run_id)] == [900]
    assert _get(api, run_id)["status"] == "delayed"
    engine.redeliver(run_id)  # a message arriving before scheduled_at changes nothing
    assert endpoint.requests == []
    clock.set(scheduled)
    engine.redeliver(run_id)
    assert _get(api, run_id)["status"] == "completed"


# Cost ------------------------------------------------------------------------------------------------


def _seed_queued_runs(services: Services, like: Run, count: int) -> None:
    """Stores `count` queued runs shaped like `like`, created now, with their scheduler wake-up
    (the run items only). Written with batch writes: moto copies the whole table on every
    transaction, so creating a thousand runs through the API would take minutes there."""
    now = services.clock.now()
    runs = [
        with_wake(
            like.model_copy(update={"id": services.ids.new(IdKind.RUN), "created_at": now, "queued_at": now}),
            now,
            services.policy,
        )
        for _ in range(count)
    ]
    seed_runs(services, runs)


def test_tick_reads_only_the_due_runs(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given 10 queued runs due for re-enqueueing and 1,000 queued runs that are not due yet
    job_id = _job(api, endpoint)
    due = [_trigger(api, job_id) for _ in range(10)]
    clock.advance(REENQUEUE_AFTER_SECS)
    _seed_queued_runs(engine.services, engine.run(due[0]), 1000)

    # When the scheduler ticks
    meter = engine.services.table.meter
    meter.items_read = meter.calls = 0
    meter.by_operation.clear()
    done = engine.tick()

    # Then it settled the 10 and read a few items per due run, none of the 1,000
    assert done == {"enqueued": 10}
    assert meter.by_operation.get("query") == len(due)
    assert meter.items_read <= 5 * len(due), meter
    later = clock.now() + timedelta(seconds=REENQUEUE_AFTER_SECS)
    indexed = sum(len(engine.services.engine.due_run_ids(shard, later, 2000)) for shard in range(WAKE_SHARDS))
    assert indexed == 1000 + len(due)  # the 1,000 were in the timer index, due later
