"""The local stand-in for the effects function's stream event source on moto's streams (in process,
driven by hand with poll_once): the table and failure queue come from the template, as the dev
runner provisions them; the handler is a recording one."""

from pathlib import Path
from typing import Any

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.local.event_sources import STREAM_CHECKPOINT_FILE, effects_event_source
from tests.support.app import TABLE_NAME, make_services, provision
from tests.support.stream_source import (
    Handler,
    StreamTable,
    effects_source,
    restart_after_a_kill_mid_batch,
    runs_of,
    streams_client,
)


@pytest.fixture
def table(moto_clients: tuple[Any, Any], tmp_path: Path) -> StreamTable:
    dynamodb, sqs = moto_clients
    urls = provision(dynamodb, sqs)
    assert urls.effects_failure_queue_url is not None
    return StreamTable(
        dynamodb,
        streams_client(),
        sqs,
        TABLE_NAME,
        urls.effects_failure_queue_url,
        tmp_path / "checkpoints.json",
    )


def test_the_handler_gets_exactly_the_records_that_drive_effects_once(table: StreamTable) -> None:
    handler = Handler()
    poller = table.poller(handler)
    table.put("a", fx="release", status="completed")
    table.put("b", status="executing")
    table.put("c", fx="resume")
    table.dynamodb.delete_item(TableName=table.table_name, Key={"pk": {"S": "RUN#a"}, "sk": {"S": "STATE"}})

    outcome = poller.poll_once()
    again = poller.poll_once()

    assert handler.delivered == ["a", "c"]
    assert (outcome.filtered, again.invocations) == (2, 0)
    [records] = handler.invocations
    assert {record["eventSourceARN"] for record in records} == {table.stream_arn()}
    assert [record["dynamodb"]["NewImage"]["fx"] for record in records] == [{"S": "release"}, {"S": "resume"}]
    assert all(record["eventSource"] == "aws:dynamodb" for record in records)


def test_an_effect_that_fails_twice_is_delivered_three_times_and_never_reported(table: StreamTable) -> None:
    handler = Handler(failing={"a": 2})
    table.put("a", fx="release")

    outcome = table.poller(handler).poll_once()

    assert handler.delivered == ["a", "a", "a"]
    assert runs_of(outcome.settled) == ["a"]
    assert table.failures() == []


def test_an_effect_that_always_fails_is_named_on_the_failure_queue_and_the_next_one_runs(
    table: StreamTable,
) -> None:
    handler = Handler(failing={"a": -1})
    table.put("a", fx="release")
    table.put("b", fx="release")
    retries = effects_source().maximum_retry_attempts

    outcome = table.poller(handler).poll_once()

    # Both in one batch: it fails and splits; a is retried alone until its retries run out.
    assert handler.delivered == ["a", "b"] + ["a"] * (1 + retries) + ["b"]
    [failure] = table.failures()
    [discarded] = outcome.discarded
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (
        discarded["dynamodb"]["SequenceNumber"],
    ) * 2
    assert (info["streamArn"], info["batchSize"]) == (table.stream_arn(), 1)
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert runs_of(outcome.settled) == ["b"]


def test_a_restart_delivers_again_only_what_was_not_settled(table: StreamTable) -> None:
    after_restart = restart_after_a_kill_mid_batch(table)

    assert after_restart.delivered == ["b", "c"]


def test_the_dev_runners_factory_reads_the_tables_stream_and_keeps_checkpoints_in_the_data_dir(
    moto_clients: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb, sqs = moto_clients
    services = make_services(dynamodb, sqs, FrozenClock())
    monkeypatch.setenv("STRAIT_DATA_DIR", str(tmp_path))

    poller = effects_event_source(services)
    outcome = poller.poll_once()

    assert poller.name == "effects"
    assert poller.stream_arn() == dynamodb.describe_table(TableName=TABLE_NAME)["Table"]["LatestStreamArn"]
    assert poller.source.function.name == f"{TABLE_NAME}-EffectsFunction"
    assert outcome.invocations == 0
    assert (tmp_path / STREAM_CHECKPOINT_FILE).is_file()
