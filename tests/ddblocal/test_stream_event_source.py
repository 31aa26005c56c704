"""The local stand-in for the effects function's stream event source on DynamoDB Local's stream (the
failure queue on a moto server): filtering, retries, the on-failure record, restarts, and the
poller's own thread."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from straitruns.local.provision import ensure_queues
from straitruns.local.template import load_template, queue_specs
from tests.support.stream_source import (
    Handler,
    StreamTable,
    restart_after_a_kill_mid_batch,
    runs_of,
    streams_client,
)

pytestmark = pytest.mark.ddblocal


@pytest.fixture
def table(
    ddb_local_table: tuple[Any, str], dynamodb_local: str, sqs_server: str, tmp_path: Path
) -> Iterator[StreamTable]:
    dynamodb, table_name = ddb_local_table
    sqs = boto3.client(
        "sqs",
        endpoint_url=sqs_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    urls = ensure_queues(
        sqs, f"{table_name}-runs", f"{table_name}-dead-letters", queue_specs(load_template())
    )
    assert urls.effects_failure_queue_url is not None
    yield StreamTable(
        dynamodb,
        streams_client(dynamodb_local),
        sqs,
        table_name,
        urls.effects_failure_queue_url,
        tmp_path / "checkpoints.json",
    )
    for url in (urls.run_queue_url, urls.dead_letter_queue_url, urls.effects_failure_queue_url):
        sqs.delete_queue(QueueUrl=url)


def test_matching_records_are_delivered_once_retried_and_given_up_on_as_on_aws(table: StreamTable) -> None:
    # Given: a record without effects, one whose effect fails twice, one whose effect always fails,
    # and one that succeeds at once.
    handler = Handler(failing={"twice": 2, "always": -1})
    table.put("plain", status="executing")
    table.put("twice", fx="release")
    table.put("always", fx="resume")
    table.put("fine", fx="release")

    # When: the poller processes what the stream holds.
    outcome = table.poller(handler).poll_once()

    # Then: the record without effects never reaches the handler; the one failing twice is
    # settled at its third delivery; the one always failing is named once on the failure queue.
    assert outcome.filtered == 1
    assert "plain" not in handler.delivered
    assert handler.delivered.count("twice") == 3
    assert runs_of(outcome.settled) == ["twice", "fine"]
    assert runs_of(outcome.discarded) == ["always"]
    [failure] = table.failures()
    info = failure["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == outcome.discarded[0]["dynamodb"]["SequenceNumber"]
    assert (info["batchSize"], info["streamArn"]) == (1, table.stream_arn())
    assert table.poller(Handler()).poll_once().invocations == 0


def test_a_restart_from_the_checkpoint_file_delivers_again_only_what_was_not_settled(
    table: StreamTable,
) -> None:
    after_restart = restart_after_a_kill_mid_batch(table)

    assert after_restart.delivered == ["b", "c"]


def test_the_started_poller_delivers_an_effect_written_while_it_runs(table: StreamTable) -> None:
    delivered = threading.Event()
    handler = Handler()

    def signalling(event: dict[str, Any], context: Any) -> dict[str, Any]:
        answer = handler(event, context)
        delivered.set()
        return answer

    poller = table.poller(signalling).start()
    try:
        table.put("a", fx="release")
        assert delivered.wait(10), "the effect was not delivered"
    finally:
        poller.stop()

    assert handler.delivered == ["a"]
    assert not poller.running
