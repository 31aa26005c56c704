"""The local stand-in for the dispatcher's SQS event source mapping, on moto: what it receives, the
event it hands the handler, and which messages it deletes or gives back after the handler answers
(one batch at a time, in the test's thread; the e2e suite runs its threads under `make dev`)."""

from dataclasses import replace
from typing import Any

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.run_queue import RunMessage
from straitruns.entry import sqs_dispatch_handler
from straitruns.local.event_sources import RunQueuePoller, dispatcher_event_source
from straitruns.wiring import Services
from tests.support.app import ApiClient
from tests.support.endpoint import JobEndpoint, json_reply
from tests.support.engine import engine_services

Event = dict[str, Any]


class RecordingHandler:
    """A dispatcher handler that answers `answer(event)` and keeps every event it was given."""

    def __init__(self, answer: Any = None) -> None:
        self.answer = answer if callable(answer) else (lambda event: answer)
        self.events: list[Event] = []

    def __call__(self, event: Event, context: Any) -> Any:
        self.events.append(event)
        return self.answer(event)


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock) -> Services:
    dynamodb, sqs = moto_clients
    return engine_services(dynamodb, sqs, clock)


@pytest.fixture
def poller(services: Services) -> RunQueuePoller:
    """The dev runner's poller of the run queue, not started: tests drive receive() and invoke().
    The template dispatches one run per invocation; batches of 10 show the emulation honours any
    batch size, partial failures included."""
    template_source = dispatcher_event_source(services).source
    return RunQueuePoller(
        services.queue.client,
        services.queue.queue_url,
        replace(template_source, batch_size=10),
        lambda: sqs_dispatch_handler(lambda: services),
        services.settings.region,
    )


def _queue_three(services: Services) -> None:
    failed = services.queue.send([RunMessage(f"run_{n}", 0) for n in (1, 2, 3)])
    assert failed == []


def _counts(services: Services) -> tuple[int, int]:
    """(visible, in flight) messages of the run queue."""
    attributes = services.queue.client.get_queue_attributes(
        QueueUrl=services.queue.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_a_batch_is_handed_over_as_one_sqs_event_of_the_run_queue(
    services: Services, poller: RunQueuePoller
) -> None:
    _queue_three(services)
    handler = RecordingHandler({"batchItemFailures": []})
    messages = poller.receive()

    poller.invoke(handler, messages)

    [event] = handler.events
    records = event["Records"]
    assert sorted(record["body"] for record in records) == sorted(
        RunMessage(f"run_{n}", 0).body() for n in (1, 2, 3)
    )
    assert {record["eventSource"] for record in records} == {"aws:sqs"}
    assert {record["eventSourceARN"] for record in records} == {poller.queue_arn()}
    assert {record["attributes"]["ApproximateReceiveCount"] for record in records} == {"1"}


def test_messages_not_reported_as_failures_are_deleted_and_the_failure_comes_back_later(
    services: Services, poller: RunQueuePoller
) -> None:
    _queue_three(services)
    messages = poller.receive()
    failing = messages[1]["MessageId"]

    unsettled = poller.invoke(
        RecordingHandler({"batchItemFailures": [{"itemIdentifier": failing}]}), messages
    )

    assert unsettled == {failing}
    assert _counts(services) == (0, 1)


def test_a_handler_that_raises_gives_the_whole_batch_back(services: Services, poller: RunQueuePoller) -> None:
    _queue_three(services)

    def crash(event: Event) -> None:
        raise RuntimeError("the function crashed")

    unsettled = poller.invoke(RecordingHandler(crash), poller.receive())

    assert len(unsettled) == 3
    assert _counts(services) == (0, 3)


def test_without_report_batch_item_failures_a_returning_handler_settles_everything(
    services: Services, poller: RunQueuePoller
) -> None:
    plain = RunQueuePoller(
        services.queue.client,
        services.queue.queue_url,
        replace(poller.source, report_batch_item_failures=False),
        RecordingHandler,
        "us-east-1",
    )
    _queue_three(services)
    messages = plain.receive()

    unsettled = plain.invoke(RecordingHandler({"batchItemFailures": [{"itemIdentifier": "x"}]}), messages)

    assert unsettled == set()
    assert _counts(services) == (0, 0)


def test_the_real_dispatcher_handler_completes_a_triggered_run_and_its_message_is_deleted(
    api: ApiClient, services: Services, poller: RunQueuePoller, endpoint: JobEndpoint
) -> None:
    endpoint.answer_always(json_reply({"sent": True}))
    job = api.create_job("echo", endpoint_url=endpoint.url)
    triggered = api.trigger(job["id"], {"payload": {"n": 1}})
    assert triggered.status_code == 201, triggered.text

    unsettled = poller.invoke(sqs_dispatch_handler(lambda: services), poller.receive())

    assert unsettled == set()
    assert _counts(services) == (0, 0)
    run = api.http.get(f"/v1/runs/{triggered.json()['id']}", headers=api.auth).json()
    assert (run["status"], run["result"]) == ("completed", {"sent": True})
