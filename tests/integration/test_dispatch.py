"""The dispatcher end to end (spec 4.2-4.6): a real HTTP job endpoint, the run queue on moto, and a
FrozenClock wherever timing matters. Messages are handed to the dispatcher as the SQS event source
would (tests/support/engine.py explains how delays are played without sleeping)."""

import json
from datetime import timedelta
from typing import Any

import jwt
import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.run_queue import DEAD_LETTER_MARK
from straitruns.domain.timefmt import format_ts
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client
from tests.support.endpoint import (
    JobEndpoint,
    Reply,
    hang_up_reply,
    json_reply,
    oversize_reply,
    redirect_reply,
    slow_reply,
    status_reply,
    text_reply,
)
from tests.support.engine import (
    PUBLIC_URL,
    RUN_TOKEN_SECRET,
    Engine,
    SentMessages,
    engine_services,
    run_until,
    seconds_between,
)

TRACE_FIELDS = {
    "queue_wait_ms",
    "dequeue_ms",
    "connect_ms",
    "ttfb_ms",
    "transfer_ms",
    "dispatch_ms",
    "total_ms",
}


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock) -> Services:
    dynamodb, sqs = moto_clients
    return engine_services(dynamodb, sqs, clock)


@pytest.fixture
def engine(services: Services) -> Engine:
    return Engine(services)


def _job(api: ApiClient, endpoint: JobEndpoint, slug: str = "work", **fields: Any) -> str:
    return str(api.create_job(slug, endpoint_url=endpoint.url, **fields)["id"])


def _trigger(api: ApiClient, job_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = api.trigger(job_id, body or {"payload": {"order": 7}})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def _get(api: ApiClient, run_id: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/runs/{run_id}", headers=api.auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def _dispatch_one(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, reply: Reply, **job: Any
) -> dict[str, Any]:
    """Triggers one run of a job whose endpoint answers `reply`, drains the queue, returns the run."""
    endpoint.script(reply)
    run = _trigger(api, _job(api, endpoint, **job))
    engine.drain()
    return _get(api, run["id"])


# Completion ---------------------------------------------------------------------------------------


def test_triggered_run_completes_with_the_endpoints_json_body_as_result(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    body = b'{"answer": 42, "big": 123456789012345678901234567890, "nested": {"ok": [true, null]}}'
    endpoint.script(Reply(200, body))
    run = _trigger(api, _job(api, endpoint), {"payload": {"order": 7, "items": ["a", "b"]}})

    deliveries = engine.drain()

    assert [d.outcome for d in deliveries] == ["completed"]
    done = _get(api, run["id"])
    assert done["status"] == "completed"
    assert done["result"] == {
        "answer": 42,
        "big": 123456789012345678901234567890,
        "nested": {"ok": [True, None]},
    }
    assert (done["attempt"], done["error"], done["error_class"], done["next_retry_at"]) == (
        1,
        None,
        None,
        None,
    )
    assert done["started_at"] is not None
    assert done["finished_at"] is not None
    [call] = endpoint.requests
    assert (call.method, call.path) == ("POST", "/run")
    assert call.json() == {"order": 7, "items": ["a", "b"]}
    assert call.header("Content-Type") == "application/json"


def test_completed_run_records_the_whole_execution_trace(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    done = _dispatch_one(api, engine, endpoint, json_reply({"ok": True}))

    trace = done["execution_trace"]
    assert set(trace) == TRACE_FIELDS
    assert all(isinstance(value, int) and value >= 0 for value in trace.values()), trace
    assert trace["dispatch_ms"] == trace["connect_ms"] + trace["ttfb_ms"] + trace["transfer_ms"]
    assert trace["ttfb_ms"] >= 1  # a real call over a socket takes a positive time
    [finished] = engine.events(done["id"], "attempt.finished")
    assert finished["data"]["execution_trace"] == trace
    assert finished["data"]["http_status"] == 200
    assert finished["data"]["attempt"] == 1


def test_completed_run_history_is_queued_dequeued_executing_completed_with_attempt_events(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    done = _dispatch_one(api, engine, endpoint, json_reply({"ok": True}))

    assert engine.status_history(done["id"]) == [
        (None, "queued"),
        ("queued", "dequeued"),
        ("dequeued", "executing"),
        ("executing", "completed"),
    ]
    events = engine.events(done["id"])
    assert [e["type"] for e in events] == [
        "status_change",
        "status_change",
        "status_change",
        "attempt.started",
        "attempt.finished",
        "status_change",
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3, 4, 5, 6]


def test_endpoint_receives_the_run_headers_and_a_valid_run_token(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    job_id = _job(api, endpoint)
    run = _trigger(api, job_id)

    engine.drain()

    [call] = endpoint.requests
    stored = engine.run(run["id"])
    assert call.header("X-Run-ID") == run["id"]
    assert call.header("X-Job-ID") == job_id
    assert call.header("X-Attempt") == "1"
    assert call.header("X-Strait-Api-Url") == PUBLIC_URL
    assert call.header("X-Previous-Error") is None
    assert call.header("X-Machine-Preset") is None
    token = call.header("X-Run-Token") or ""
    claims = jwt.decode(token, RUN_TOKEN_SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert (claims["sub"], claims["attempt"], claims["gen"]) == (run["id"], 1, stored.generation)
    checked = engine.services.dispatcher.tokens.check_run_token(token, clock.now())
    assert (checked.run_id, checked.attempt, checked.generation) == (run["id"], 1, stored.generation)


def test_second_attempt_carries_the_previous_error_and_a_token_of_the_new_attempt(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    endpoint.script(status_reply(500), json_reply({"second": True}))
    run = _trigger(api, _job(api, endpoint, max_attempts=2, retry_initial_delay_secs=0))

    engine.drain()

    done = _get(api, run["id"])
    assert (done["status"], done["attempt"], done["result"]) == ("completed", 2, {"second": True})
    first, second = endpoint.requests
    assert first.header("X-Previous-Error") is None
    assert second.header("X-Attempt") == "2"
    assert second.header("X-Previous-Error") == "HTTP 500 from the endpoint"
    first_claims = jwt.decode(first.header("X-Run-Token") or "", options={"verify_signature": False})
    second_claims = jwt.decode(second.header("X-Run-Token") or "", options={"verify_signature": False})
    assert second_claims["attempt"] == 2
    assert second_claims["gen"] > first_claims["gen"]


def test_non_json_body_becomes_a_json_string_result(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    done = _dispatch_one(api, engine, endpoint, text_reply("all done, 3 rows"))

    assert done["status"] == "completed"
    assert done["result"] == "all done, 3 rows"


@pytest.mark.parametrize("status", [200, 204])
def test_empty_body_gives_a_null_result(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, status: int
) -> None:
    done = _dispatch_one(api, engine, endpoint, status_reply(status))

    assert done["status"] == "completed"
    assert done["result"] is None


def test_202_keeps_the_run_executing_for_the_sdk_to_finish(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    done = _dispatch_one(api, engine, endpoint, status_reply(202))

    assert done["status"] == "executing"
    assert done["finished_at"] is None
    assert done["execution_trace"] is not None
    assert engine.status_history(done["id"])[-1] == ("dequeued", "executing")
    [finished] = engine.events(done["id"], "attempt.finished")
    assert finished["data"]["http_status"] == 202
    assert len(endpoint.requests) == 1


def test_result_over_256_kib_fails_the_run(api: ApiClient, engine: Engine, endpoint: JobEndpoint) -> None:
    done = _dispatch_one(api, engine, endpoint, oversize_reply(), max_attempts=3)

    assert done["status"] == "failed"
    assert done["error"] == "result too large"
    assert done["result"] is None
    assert done["attempt"] == 1
    assert len(endpoint.requests) == 1


def test_result_of_exactly_256_kib_is_kept(api: ApiClient, engine: Engine, endpoint: JobEndpoint) -> None:
    done = _dispatch_one(api, engine, endpoint, oversize_reply(256 * 1024))

    assert done["status"] == "completed"
    assert len(json.dumps(done["result"])) == 256 * 1024


# Refusals that end the run at once -----------------------------------------------------------------


def test_404_fails_the_run_at_once_as_a_client_error(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    done = _dispatch_one(api, engine, endpoint, status_reply(404), max_attempts=3)

    assert (done["status"], done["error_class"], done["attempt"]) == ("failed", "client", 1)
    assert "404" in done["error"]
    assert done["next_retry_at"] is None
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_fail_the_run_as_an_auth_error(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, status: int
) -> None:
    done = _dispatch_one(api, engine, endpoint, status_reply(status), max_attempts=3)

    assert (done["status"], done["error_class"], done["attempt"]) == ("failed", "auth", 1)
    assert len(endpoint.requests) == 1


def test_redirect_is_not_followed_and_fails_the_run_as_a_client_error(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    done = _dispatch_one(
        api, engine, endpoint, redirect_reply(f"{endpoint.base_url}/elsewhere"), max_attempts=3
    )

    assert (done["status"], done["error_class"]) == ("failed", "client")
    assert "redirect not followed" in done["error"]
    assert endpoint.requests_to("/elsewhere") == []
    assert len(endpoint.requests) == 1


# Retries, dead letters, backoff --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error_class"),
    [
        (status_reply(500), "server"),
        (status_reply(503), "server"),
        (status_reply(408), "server"),
        (status_reply(429), "rate_limited"),
        (hang_up_reply(), "connection"),
    ],
    ids=["500", "503", "408", "429", "connection-closed"],
)
def test_retryable_failure_queues_the_next_attempt_with_next_retry_at(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock, reply: Reply, error_class: str
) -> None:
    waiting = _dispatch_one(api, engine, endpoint, reply, max_attempts=3, retry_initial_delay_secs=10)

    assert (waiting["status"], waiting["attempt"], waiting["error_class"]) == ("queued", 2, error_class)
    assert waiting["error"]
    assert waiting["next_retry_at"] is not None
    assert 8 <= seconds_between(clock.now(), waiting["next_retry_at"]) <= 12
    assert engine.status_history(waiting["id"])[-1] == ("executing", "queued")
    assert len(endpoint.requests) == 1


def test_retry_is_not_called_before_next_retry_at_and_is_called_once_due(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given a run whose first attempt failed and whose retry is due in about 10 s
    endpoint.script(status_reply(500), json_reply({"ok": True}))
    run = _trigger(api, _job(api, endpoint, retry_initial_delay_secs=10))
    engine.drain()
    retry_at = engine.run(run["id"]).next_retry_at
    assert retry_at is not None

    # When its message arrives early, then again once the clock reached next_retry_at
    early = engine.redeliver(run["id"])
    calls_while_early = len(endpoint.requests)
    clock.set(retry_at)
    engine.redeliver(run["id"])

    # Then the early message changed nothing and the due one completed the run
    assert [d.outcome for d in early] == ["early"]
    assert calls_while_early == 1
    done = _get(api, run["id"])
    assert (done["status"], done["attempt"], done["next_retry_at"]) == ("completed", 2, None)
    assert len(endpoint.requests) == 2


def test_server_errors_on_every_attempt_dead_letter_the_run_after_the_last(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    endpoint.answer_always(status_reply(500))
    run = _trigger(api, _job(api, endpoint, max_attempts=3, retry_initial_delay_secs=0))

    done = run_until(api, run["id"], {"dead_letter", "completed", "failed"}, engine=engine)

    assert (done["status"], done["attempt"], done["error_class"]) == ("dead_letter", 3, "server")
    assert done["next_retry_at"] is None
    assert [r.header("X-Attempt") for r in endpoint.requests] == ["1", "2", "3"]
    assert engine.status_history(run["id"])[-1] == ("executing", "dead_letter")
    dead = engine.receive(engine.services.dead_letters.dead_letter_queue.queue_url)
    assert len(dead) == 1
    assert json.loads(dead[0]["Body"]) == {
        "run_id": run["id"],
        "generation": engine.run(run["id"]).generation,
    }
    assert DEAD_LETTER_MARK in dead[0]["MessageAttributes"]


def test_connection_closed_on_the_last_attempt_dead_letters_as_a_connection_error(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    done = _dispatch_one(api, engine, endpoint, hang_up_reply(), max_attempts=1)

    assert (done["status"], done["error_class"]) == ("dead_letter", "connection")


BACKOFF_CASES = {
    "exponential": ({"retry_backoff": "exponential", "retry_initial_delay_secs": 10}, {}, [10, 20, 40]),
    "exponential-capped": (
        {"retry_backoff": "exponential", "retry_initial_delay_secs": 10, "retry_max_delay_secs": 25},
        {},
        [10, 20, 25],
    ),
    "linear": ({"retry_backoff": "linear", "retry_initial_delay_secs": 10}, {}, [10, 20, 30]),
    "fixed": ({"retry_backoff": "fixed", "retry_initial_delay_secs": 10}, {}, [10, 10, 10]),
    "run-overrides-win": (
        {"retry_backoff": "exponential", "retry_initial_delay_secs": 100, "retry_max_delay_secs": 3600},
        {"retry_backoff": "linear", "retry_initial_delay_secs": 5, "retry_max_delay_secs": 12},
        [5, 10, 12],
    ),
    "job-defaults": ({}, {}, [1, 2, 4]),
}


@pytest.mark.parametrize(
    ("job_fields", "run_fields", "bases"), BACKOFF_CASES.values(), ids=BACKOFF_CASES.keys()
)
def test_retry_delays_follow_the_backoff_rule_within_20_percent_jitter(
    api: ApiClient,
    engine: Engine,
    endpoint: JobEndpoint,
    clock: FrozenClock,
    job_fields: dict[str, Any],
    run_fields: dict[str, Any],
    bases: list[int],
) -> None:
    # Given a job whose endpoint always fails, with attempts to spare
    endpoint.answer_always(status_reply(500))
    sent = SentMessages(engine.services.queue)
    run = _trigger(api, _job(api, endpoint, max_attempts=5, **job_fields), {"payload": {}, **run_fields})

    # When each retry is delivered once the clock reaches its next_retry_at
    delays: list[float] = []
    engine.drain()
    for _ in bases:
        waiting = engine.run(run["id"])
        assert waiting.next_retry_at is not None, waiting.status
        delays.append((waiting.next_retry_at - clock.now()).total_seconds())
        assert sent.of(run["id"])[-1].delay_secs == pytest.approx(delays[-1], abs=1)
        clock.set(waiting.next_retry_at)
        engine.redeliver(run["id"])

    # Then the n-th delay is the strategy's base for n, capped, with at most ±20 % jitter
    for attempt, (delay, base) in enumerate(zip(delays, bases, strict=True), start=1):
        assert 0.8 * base <= delay <= 1.2 * base, f"attempt {attempt}: delay {delay}, base {base}"
    assert any(delay != base for delay, base in zip(delays, bases, strict=True)), "no jitter at all"
    assert len(endpoint.requests) == len(bases) + 1


def test_poison_pill_dead_letters_after_the_same_error_ends_consecutive_attempts(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a job with 5 attempts and a poison-pill threshold of 2, failing 500, 503, 503
    endpoint.script(status_reply(500), status_reply(503), status_reply(503))
    run = _trigger(
        api, _job(api, endpoint, max_attempts=5, retry_initial_delay_secs=0, poison_pill_threshold=2)
    )

    engine.drain()

    # Then the second 503 in a row ends it at attempt 3 (a 500 then a 503 is not a streak)
    done = _get(api, run["id"])
    assert (done["status"], done["attempt"]) == ("dead_letter", 3)
    assert len(endpoint.requests) == 3
    dead = engine.receive(engine.services.dead_letters.dead_letter_queue.queue_url)
    assert [json.loads(m["Body"])["run_id"] for m in dead] == [run["id"]]


def test_poison_pill_off_retries_until_the_last_attempt(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    endpoint.answer_always(status_reply(503))
    run = _trigger(api, _job(api, endpoint, max_attempts=4, retry_initial_delay_secs=0))

    engine.drain()

    assert (_get(api, run["id"])["status"], len(endpoint.requests)) == ("dead_letter", 4)


# Timeouts --------------------------------------------------------------------------------------------


def test_slow_endpoint_past_the_timeout_is_retried_as_a_timeout(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    endpoint.script(slow_reply(5))
    run = _trigger(api, _job(api, endpoint, timeout_secs=1, max_attempts=2, retry_initial_delay_secs=10))

    engine.drain()

    waiting = _get(api, run["id"])
    assert (waiting["status"], waiting["attempt"], waiting["error_class"]) == ("queued", 2, "timeout")


def test_slow_endpoint_past_the_timeout_on_the_last_attempt_times_the_run_out(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    endpoint.script(slow_reply(5))
    run = _trigger(
        api, _job(api, endpoint), {"payload": {}, "timeout_secs_override": 1, "max_attempts_override": 1}
    )

    engine.drain()

    done = _get(api, run["id"])
    assert (done["status"], done["error_class"]) == ("timed_out", "timeout")
    assert len(endpoint.requests) == 1


# Runs the engine cannot or must not call -----------------------------------------------------------


@pytest.fixture
def strict_api(moto_clients: tuple[Any, Any], clock: FrozenClock) -> ApiClient:
    """The service as deployed: private endpoints refused (STRAIT_ALLOW_PRIVATE_ENDPOINTS false)."""
    dynamodb, sqs = moto_clients
    strict = engine_services(dynamodb, sqs, clock, table_name="strict-runs", allow_private_endpoints=False)
    return api_client(strict, clock)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "private"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "cloud metadata"),
    ],
)
def test_refused_endpoint_address_ends_the_run_system_failed_without_a_call(
    strict_api: ApiClient, endpoint: JobEndpoint, host: str, reason: str
) -> None:
    job = strict_api.create_job("private", endpoint_url=f"https://{host}:{endpoint.port}/run")
    run = _trigger(strict_api, job["id"])

    Engine(strict_api.services).drain()

    done = _get(strict_api, run["id"])
    assert (done["status"], done["error_class"]) == ("system_failed", "system")
    assert reason in done["error"]
    assert endpoint.requests == []


def test_run_whose_job_vanished_before_dispatch_ends_system_failed(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a queued run whose job is removed from the store (runs past the first 1,000 that a
    # job deletion cancels are in this state)
    job_id = _job(api, endpoint)
    run = _trigger(api, job_id)
    job = engine.services.jobs_store.get(job_id)
    assert job is not None
    engine.services.jobs_store.delete(job)

    engine.drain()

    done = _get(api, run["id"])
    assert (done["status"], done["error_class"]) == ("system_failed", "system")
    assert "job no longer exists" in done["error"]
    assert endpoint.requests == []


def test_run_of_a_deleted_job_is_canceled_and_never_called(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    job_id = _job(api, endpoint)
    run = _trigger(api, job_id)
    assert api.http.delete(f"/v1/jobs/{job_id}", headers=api.auth).status_code == 204

    deliveries = engine.drain()

    assert [d.outcome for d in deliveries] == ["stale"]
    assert _get(api, run["id"])["status"] == "canceled"
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("park", "release"), [({"paused": True}, {"paused": False}), ({"enabled": False}, {"enabled": True})]
)
def test_run_of_a_paused_or_disabled_job_is_parked_then_completes_once_released(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, park: dict[str, bool], release: dict[str, bool]
) -> None:
    # Given a queued run whose job is then paused (or disabled)
    job_id = _job(api, endpoint)
    run = _trigger(api, job_id)
    assert api.http.patch(f"/v1/jobs/{job_id}", json=park, headers=api.auth).status_code == 200

    # When its message is dispatched
    deliveries = engine.drain()

    # Then it is parked: still queued, no status change, no event, no call
    assert [d.outcome for d in deliveries] == ["parked"]
    assert _get(api, run["id"])["status"] == "queued"
    assert engine.status_history(run["id"]) == [(None, "queued")]
    assert len(engine.events(run["id"])) == 1
    assert endpoint.requests == []

    # When the job is released, the run is re-enqueued and completes
    assert api.http.patch(f"/v1/jobs/{job_id}", json=release, headers=api.auth).status_code == 200
    engine.drain()
    assert _get(api, run["id"])["status"] == "completed"
    assert len(endpoint.requests) == 1


def test_run_triggered_while_the_job_is_paused_waits_and_completes_after_resume(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    job_id = _job(api, endpoint, paused=True)
    run = _trigger(api, job_id)

    assert engine.drain() == []
    assert _get(api, run["id"])["status"] == "queued"

    assert api.http.patch(f"/v1/jobs/{job_id}", json={"paused": False}, headers=api.auth).status_code == 200
    engine.drain()
    assert _get(api, run["id"])["status"] == "completed"
    assert len(endpoint.requests) == 1


def test_delayed_run_is_not_called_before_scheduled_at_and_is_called_once_due(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint, clock: FrozenClock
) -> None:
    # Given a run scheduled 30 s ahead
    scheduled = clock.now() + timedelta(seconds=30)
    run = _trigger(api, _job(api, endpoint), {"payload": {}, "scheduled_at": format_ts(scheduled)})
    assert run["status"] == "delayed"

    # When a message for it arrives 10 s early
    clock.advance(20)
    early = engine.redeliver(run["id"])

    # Then nothing is called and the run stays delayed
    assert [d.outcome for d in early] == ["not-due"]
    assert _get(api, run["id"])["status"] == "delayed"
    assert endpoint.requests == []

    # When it arrives at scheduled_at, the run is promoted and completes
    clock.set(scheduled)
    engine.redeliver(run["id"])
    done = _get(api, run["id"])
    assert done["status"] == "completed"
    assert seconds_between(scheduled, done["started_at"]) >= 0
    assert len(endpoint.requests) == 1
    assert engine.status_history(run["id"])[:3] == [
        (None, "delayed"),
        ("delayed", "queued"),
        ("queued", "dequeued"),
    ]
