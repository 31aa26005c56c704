"""Triggering runs: what is stored, what is returned, what goes to the queue."""

from typing import Any

from straitruns.domain.statuses import RunStatus
from tests.support.app import ApiClient


def _queued_messages(api: ApiClient) -> list[dict[str, Any]]:
    sqs = api.services.queue.client
    response = sqs.receive_message(
        QueueUrl=api.services.queue.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return response.get("Messages", [])


def test_trigger_creates_a_queued_run_with_its_creation_event(api: ApiClient) -> None:
    run = api.run({"payload": {"order": 1}})

    assert run["status"] == "queued"
    assert run["attempt"] == 1
    assert run["payload"] == {"order": 1}
    assert run["triggered_by"] == "manual"
    events = api.services.event_log.events_after(run["id"], 0, 10)
    assert [(e.sequence, e.type) for e in events] == [(1, "status_change")]
    assert '"from":null' in (events[0].data or "")
    assert '"reason":"created"' in (events[0].data or "")


def test_trigger_sends_the_run_to_the_run_queue(api: ApiClient) -> None:
    run = api.run()

    bodies = [message["Body"] for message in _queued_messages(api)]
    assert any(run["id"] in body for body in bodies)


def test_payload_keeps_every_digit_and_deep_nesting(api: ApiClient) -> None:
    api.create_job("exact")
    nested = "[" * 60 + "1" + "]" * 60
    big = "1234567890123456789012345678901234567890"
    payload = '{"big": %s, "frac": 0.1000000000000000000001, "deep": %s}'
    response = api.trigger_raw(api.jobs["exact"], '{"payload": %s}' % (payload % (big, nested)))
    assert response.status_code == 201, response.text

    fetched = api.http.get(f"/v1/runs/{response.json()['id']}", headers=api.auth)
    assert '"big":1234567890123456789012345678901234567890' in fetched.text
    assert '"frac":0.1000000000000000000001' in fetched.text
    assert '"deep":' + nested in fetched.text


def _finish(api: ApiClient, run_id: str) -> None:
    run = api.services.runs.get(run_id)
    assert run is not None
    for status in (RunStatus.DEQUEUED, RunStatus.EXECUTING):
        run = api.services.state.change(run, status, "test")
    api.services.state.change(run, RunStatus.COMPLETED, "test", finished_at=api.clock.now())


def test_idempotency_key_is_held_until_24_hours_after_the_run_ends(api: ApiClient) -> None:
    # Given a run triggered with a key, which then completes
    api.create_job("held")
    first = api.trigger(api.jobs["held"], {"idempotency_key": "k1"})
    _finish(api, first.json()["id"])

    # When the key is used again within 24 hours, and again after
    api.clock.advance(24 * 3600 - 1)
    within = api.trigger(api.jobs["held"], {"idempotency_key": "k1", "payload": {"other": True}})
    api.clock.advance(2)
    after = api.trigger(api.jobs["held"], {"idempotency_key": "k1"})

    # Then the first repeat returns the finished run, the later one creates a new run
    assert within.status_code == 200
    assert within.json()["id"] == first.json()["id"]
    assert after.status_code == 201
    assert after.json()["id"] != first.json()["id"]
    assert after.json()["idempotency_key"] == "k1"
