"""The local event sources' reading of template.yaml and of a handler's answer, and the events they
build, compared with the samples of events/ (no network)."""

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from straitruns.local.dev import BACKGROUND_WORKERS, LocalStackError, local_settings
from straitruns.local.event_sources import (
    LocalLambdaContext,
    SchedulerTimer,
    dispatcher_event_source,
    effects_event_source,
    schedule_event_source,
    scheduled_event,
    scheduler_event_source,
    sqs_event_source,
    sqs_record,
    unsettled_message_ids,
)
from straitruns.local.template import TemplateError, load_template

EVENTS = Path(__file__).resolve().parents[2] / "events"
BATCH = ["m-1", "m-2", "m-3"]


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def received(**extra: Any) -> dict[str, Any]:
    """A message as ReceiveMessage returns it."""
    return {
        "MessageId": "m-1",
        "ReceiptHandle": "handle-1",
        "MD5OfBody": "0" * 32,
        "Body": '{"run_id": "run_1", "generation": 0}',
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795875337412"},
        **extra,
    }


# --- what Lambda makes of the handler's answer -------------------------------------------------


@pytest.mark.parametrize(
    ("response", "unsettled"),
    [
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({}, set()),
        (None, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m-2"}]}, {"m-2"}),
        ({"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-3"}]}, {"m-1", "m-3"}),
    ],
)
def test_listed_failures_stay_and_the_rest_is_settled(response: object, unsettled: set[str]) -> None:
    assert unsettled_message_ids(BATCH, response) == unsettled


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"messageId": "m-1"}]},
        {"batchItemFailures": "m-1"},
        "not a JSON object",
    ],
)
def test_an_answer_lambda_would_refuse_fails_the_whole_batch(response: object) -> None:
    assert unsettled_message_ids(BATCH, response) == set(BATCH)


# --- the template ----------------------------------------------------------------------------------


def test_dispatcher_source_is_the_templates_run_queue_event() -> None:
    source = sqs_event_source(load_template(), "DispatcherFunction", "RunQueue", "strait-runs")

    assert (source.batch_size, source.report_batch_item_failures) == (1, True)
    assert (source.function.name, source.function.timeout_secs) == ("strait-runs-DispatcherFunction", 900)
    assert source.function.memory_mb == 512


def test_scheduler_source_is_the_templates_schedule_event() -> None:
    source = schedule_event_source(load_template(), "SchedulerFunction", "strait-runs")

    assert (source.schedule, source.rule_name) == ("rate(1 minute)", "strait-runs-SchedulerFunctionTick")
    assert source.function.timeout_secs == 60


def test_a_function_without_an_sqs_event_on_the_queue_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="SchedulerFunction has no SQS event on RunQueue"):
        sqs_event_source(load_template(), "SchedulerFunction", "RunQueue")


# --- the events ----------------------------------------------------------------------------------


def test_sqs_record_has_the_fields_of_lambdas_sqs_event_in_order() -> None:
    record = sqs_record(received(), "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")

    assert list(record) == list(sample("dispatcher/run_message.json")["Records"][0])
    assert record["eventSource"] == "aws:sqs"
    assert (record["messageId"], record["receiptHandle"]) == ("m-1", "handle-1")


def test_sqs_record_message_attributes_are_shaped_like_lambdas() -> None:
    message = received(
        MD5OfMessageAttributes="1" * 32,
        MessageAttributes={
            "strait-dead-letter": {"StringValue": "1", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    )
    expected = sample("dispatcher/dead_letter_redrive.json")["Records"][0]

    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")

    assert list(record) == list(expected)
    assert (
        record["messageAttributes"]["strait-dead-letter"]
        == expected["messageAttributes"]["strait-dead-letter"]
    )
    assert record["messageAttributes"]["blob"]["binaryValue"] == base64.b64encode(b"\x00\x01").decode()


def test_scheduled_event_has_the_fields_of_an_eventbridge_scheduled_event() -> None:
    source = schedule_event_source(load_template(), "SchedulerFunction", "strait-runs")

    event = scheduled_event(source, "us-east-1", datetime(2026, 11, 28, 14, 16, 0, 250_000, tzinfo=UTC))

    expected = sample("scheduler/tick.json")
    assert list(event) == list(expected)
    assert {key: event[key] for key in ("detail-type", "source", "time", "detail")} == {
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "2026-11-28T14:16:00Z",
        "detail": {},
    }
    assert event["resources"] == [
        "arn:aws:events:us-east-1:123456789012:rule/strait-runs-SchedulerFunctionTick"
    ]


def test_lambda_context_names_the_function_and_counts_down_from_its_timeout() -> None:
    source = sqs_event_source(load_template(), "DispatcherFunction", "RunQueue", "strait-runs")

    context = LocalLambdaContext(source.function, "us-east-1")

    assert context.invoked_function_arn == (
        "arn:aws:lambda:us-east-1:123456789012:function:strait-runs-DispatcherFunction"
    )
    assert 899_000 < context.get_remaining_time_in_millis() <= 900_000
    assert context.aws_request_id != LocalLambdaContext(source.function, "us-east-1").aws_request_id


# --- the scheduler timer ---------------------------------------------------------------------------


def test_a_tick_invokes_the_handler_with_a_scheduled_event_and_returns_its_answer() -> None:
    seen: list[tuple[dict[str, Any], Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        seen.append((event, context))
        return {"promoted": 2}

    source = schedule_event_source(load_template(), "SchedulerFunction", "strait-runs")
    timer = SchedulerTimer(handler, source, "us-east-1", interval_secs=1.0)

    answer = timer.tick()

    assert answer == {"promoted": 2}
    [(event, context)] = seen
    assert event["detail-type"] == "Scheduled Event"
    assert context.function_name == "strait-runs-SchedulerFunction"


def test_a_tick_whose_handler_raises_answers_none() -> None:
    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        raise RuntimeError("the store is down")

    source = schedule_event_source(load_template(), "SchedulerFunction", "strait-runs")

    assert SchedulerTimer(handler, source, "us-east-1", interval_secs=1.0).tick() is None


def test_a_scheduler_interval_that_is_not_positive_is_refused() -> None:
    source = schedule_event_source(load_template(), "SchedulerFunction", "strait-runs")

    with pytest.raises(ValueError, match="positive"):
        SchedulerTimer(lambda event, context: {}, source, "us-east-1", interval_secs=0)


@pytest.mark.parametrize("interval", ["0", "-1"])
def test_the_dev_runner_refuses_a_scheduler_interval_that_is_not_positive(
    interval: str, tmp_path: Path
) -> None:
    with pytest.raises(LocalStackError, match="STRAIT_SCHEDULER_INTERVAL_SECS must be a positive number"):
        local_settings({"STRAIT_SCHEDULER_INTERVAL_SECS": interval}, tmp_path)


def test_the_dev_runner_plays_every_event_source() -> None:
    assert (dispatcher_event_source, scheduler_event_source, effects_event_source) == BACKGROUND_WORKERS
