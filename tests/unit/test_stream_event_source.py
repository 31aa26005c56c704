"""The local stand-in for the effects function's DynamoDB Streams event source mapping, against an
in-memory stream: batching and filtering, partial batch responses, bisecting, retries and the
on-failure record, shard order, and checkpoints across restarts (no network, no sleeps)."""

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from straitruns.local.event_sources import (
    StreamCheckpoints,
    StreamPoller,
    StreamSourceError,
    first_unsettled_record,
    stream_failure_record,
    stream_record,
)
from straitruns.local.template import DynamoDBStreamEventSource, dynamodb_stream_event_source, load_template
from tests.support.stream_fakes import (
    STREAM_ARN,
    FakeQueue,
    FakeStreams,
    FakeTable,
    RecordingHandler,
    fails_times,
    sequence_numbers,
)

FAILURE_QUEUE_URL = "http://127.0.0.1:1/123456789012/runs-effects-failures"
FX = {"fx": {"S": "release"}}
SEQ = [f"{n:021d}" for n in range(100, 200)]  # the sequence numbers FakeStreams hands out, in order


def effects_source(**changes: Any) -> DynamoDBStreamEventSource:
    """The template's effects event source (filter on `fx`, bisect, 5 retries, partial
    responses), with `changes`."""
    return replace(
        dynamodb_stream_event_source(load_template(), "EffectsFunction", name_prefix="runs"), **changes
    )


class Harness:
    """A poller over a FakeStreams with one shard, a failure queue and a checkpoint store."""

    def __init__(
        self, handler: Any, source: DynamoDBStreamEventSource | None = None, path: Path | None = None
    ):
        self.streams = FakeStreams()
        self.streams.add_shard("shard-1")
        self.queue = FakeQueue()
        self.handler = handler
        self.source = source or effects_source()
        self.checkpoints = StreamCheckpoints(path)
        self.poller = self.restarted()

    def restarted(self, handler: Any = None) -> StreamPoller:
        """A new poller on the same stream and checkpoints, as after a restart of the stack."""
        return StreamPoller(
            FakeTable(),
            self.streams,
            "runs",
            self.source,
            handler or self.handler,
            "us-east-1",
            sqs=self.queue,
            failure_queue_url=FAILURE_QUEUE_URL,
            checkpoints=self.checkpoints,
        )

    def write(self, *images: dict[str, Any] | None, shard: str = "shard-1") -> list[str]:
        return [self.streams.write(shard, image) for image in images]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.queue.bodies]


# --- the records handed to the function ------------------------------------------------------------


def test_a_stream_record_has_lambdas_fields_in_lambdas_order() -> None:
    streams = FakeStreams()
    streams.add_shard("shard-1")
    streams.write("shard-1", {**FX, "blob": {"B": b"\x00\x01"}, "parts": {"L": [{"BS": [b"\xff"]}]}})

    record = stream_record(streams.shards["shard-1"].records[0], STREAM_ARN, "us-east-1")

    assert list(record) == [
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    ]
    assert (record["eventSource"], record["awsRegion"], record["eventSourceARN"]) == (
        "aws:dynamodb",
        "us-east-1",
        STREAM_ARN,
    )
    change = record["dynamodb"]
    assert list(change) == [
        "ApproximateCreationDateTime",
        "Keys",
        "NewImage",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
    ]
    assert change["ApproximateCreationDateTime"] == int(
        datetime(2026, 12, 2, 10, 0, 5, tzinfo=UTC).timestamp()
    )
    assert change["NewImage"]["blob"] == {"B": "AAE="}
    assert change["NewImage"]["parts"] == {"L": [{"BS": ["/w=="]}]}
    json.dumps(record)  # Lambda's event is JSON


@pytest.mark.parametrize(
    ("response", "first_unsettled"),
    [
        (None, None),
        ({}, None),
        ({"batchItemFailures": None}, None),
        ({"batchItemFailures": []}, None),
        ({"batchItemFailures": [{"itemIdentifier": "s-3"}, {"itemIdentifier": "s-2"}]}, 1),
        ({"batchItemFailures": [{"itemIdentifier": "s-1"}]}, 0),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, 0),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, 0),
        ({"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]}, 0),
        ({"batchItemFailures": [{"messageId": "s-2"}]}, 0),
        ({"batchItemFailures": "s-2"}, 0),
        ("not a JSON object", 0),
    ],
)
def test_a_partial_response_is_read_as_lambda_reads_it(response: object, first_unsettled: int | None) -> None:
    assert first_unsettled_record(["s-1", "s-2", "s-3"], response) == first_unsettled


# --- batching and filtering ------------------------------------------------------------------------


def test_only_matching_records_reach_the_handler_in_order_and_in_batches_of_batch_size() -> None:
    handler = RecordingHandler()
    harness = Harness(handler, effects_source(batch_size=2))
    written = harness.write(FX, {"status": {"S": "queued"}}, FX, FX, None, {"fx": {"N": "1"}}, FX)

    outcome = harness.poller.poll_once()

    matching = [written[0], written[2], written[3], written[6]]
    assert handler.batches == [matching[:2], matching[2:]]
    assert sequence_numbers(outcome.settled) == matching
    assert (outcome.filtered, outcome.discarded, harness.failures) == (3, [], [])
    assert harness.poller.poll_once().invocations == 0


def test_records_that_match_no_filter_advance_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.json"
    harness = Harness(RecordingHandler(), path=path)
    written = harness.write({"status": {"S": "queued"}}, {"status": {"S": "executing"}})

    outcome = harness.poller.poll_once()

    assert (outcome.invocations, outcome.filtered) == (0, 2)
    saved = json.loads(path.read_text())
    assert saved == {
        "stream_arn": STREAM_ARN,
        "shards": {"shard-1": {"sequence_number": written[-1], "finished": False}},
    }


def test_a_source_without_filters_delivers_every_record() -> None:
    handler = RecordingHandler()
    harness = Harness(handler, effects_source(filter_patterns=()))
    written = harness.write(FX, {"status": {"S": "queued"}}, None)

    harness.poller.poll_once()

    assert handler.batches == [written]


# --- failures: partial responses, bisecting, retries, the on-failure record -------------------------


def test_a_partial_failure_settles_the_records_before_it_and_retries_from_it() -> None:
    failing_once = {"seen": False}

    def answer(event: dict[str, Any]) -> dict[str, Any]:
        numbers = sequence_numbers(event["Records"])
        if SEQ[2] in numbers and not failing_once["seen"]:
            failing_once["seen"] = True
            return {"batchItemFailures": [{"itemIdentifier": SEQ[3]}, {"itemIdentifier": SEQ[2]}]}
        return {"batchItemFailures": []}

    handler = RecordingHandler(answer=answer)
    harness = Harness(handler)
    harness.write(FX, FX, FX, FX)

    outcome = harness.poller.poll_once()

    assert handler.batches == [SEQ[0:4], SEQ[2:4]]
    assert sequence_numbers(outcome.settled) == SEQ[0:4]
    assert harness.failures == []


def test_without_report_batch_item_failures_a_partial_response_counts_as_success() -> None:
    handler = RecordingHandler(answer=lambda event: {"batchItemFailures": [{"itemIdentifier": SEQ[0]}]})
    harness = Harness(handler, effects_source(report_batch_item_failures=False))
    harness.write(FX, FX)

    outcome = harness.poller.poll_once()

    assert handler.batches == [SEQ[0:2]]
    assert sequence_numbers(outcome.settled) == SEQ[0:2]


def test_a_malformed_response_retries_the_whole_batch() -> None:
    answers = iter([{"batchItemFailures": [{"itemIdentifier": "nope"}]}, None])
    handler = RecordingHandler(answer=lambda event: next(answers))
    harness = Harness(handler)
    harness.write(FX, FX)

    harness.poller.poll_once()

    assert handler.batches == [SEQ[0:2], SEQ[0:2]]


def test_a_handler_that_fails_twice_then_succeeds_gets_the_record_three_times() -> None:
    handler = RecordingHandler(fails=fails_times(2, SEQ[0]))
    harness = Harness(handler)
    harness.write(FX)

    outcome = harness.poller.poll_once()

    assert handler.batches == [[SEQ[0]]] * 3
    assert sequence_numbers(outcome.settled) == [SEQ[0]]
    assert (outcome.failed_invocations, harness.failures) == (2, [])


def test_a_function_error_bisects_the_batch_until_the_failing_record_is_alone() -> None:
    handler = RecordingHandler(fails=lambda record: record["dynamodb"]["SequenceNumber"] == SEQ[2])
    harness = Harness(handler, effects_source(maximum_retry_attempts=1))
    harness.write(FX, FX, FX, FX)

    outcome = harness.poller.poll_once()

    # [0..3] fails and splits; [0,1] passes; [2,3] fails and splits; [2] fails, is retried once
    # (splits consume no retry) and given up on; [3] passes.
    assert handler.batches == [SEQ[0:4], SEQ[0:2], SEQ[2:4], [SEQ[2]], [SEQ[2]], [SEQ[3]]]
    assert sequence_numbers(outcome.settled) == [SEQ[0], SEQ[1], SEQ[3]]
    assert sequence_numbers(outcome.discarded) == [SEQ[2]]
    [failure] = harness.failures
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == SEQ[2]
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1
    assert failure["requestContext"]["approximateInvokeCount"] == 4


def test_a_record_that_always_fails_ends_on_the_failure_queue_and_the_shard_moves_on(tmp_path: Path) -> None:
    handler = RecordingHandler(fails=lambda record: record["dynamodb"]["SequenceNumber"] == SEQ[0])
    harness = Harness(handler, path=tmp_path / "checkpoints.json")
    harness.write(FX, FX)

    outcome = harness.poller.poll_once()

    retries = harness.source.maximum_retry_attempts
    # The first batch holds both records: it fails, splits, and the first is retried alone.
    assert handler.batches == [SEQ[0:2]] + [[SEQ[0]]] * (1 + retries) + [[SEQ[1]]]
    assert sequence_numbers(outcome.discarded) == [SEQ[0]]
    assert sequence_numbers(outcome.settled) == [SEQ[1]]
    [failure] = harness.failures
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 2 + retries
    assert failure["requestContext"]["functionArn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:runs-EffectsFunction"
    )
    assert failure["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    # The next start does not deliver it again.
    assert harness.restarted().poll_once().invocations == 0


def test_without_bisect_a_failing_batch_is_retried_whole_then_named_whole() -> None:
    handler = RecordingHandler(fails=lambda record: record["dynamodb"]["SequenceNumber"] == SEQ[1])
    harness = Harness(handler, effects_source(bisect_batch_on_function_error=False, maximum_retry_attempts=2))
    harness.write(FX, FX, FX)

    outcome = harness.poller.poll_once()

    assert handler.batches == [SEQ[0:3]] * 3
    assert sequence_numbers(outcome.discarded) == SEQ[0:3]
    [failure] = harness.failures
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (SEQ[0], SEQ[2], 3)


def test_a_partial_failure_past_the_retries_names_the_records_from_the_failed_one() -> None:
    handler = RecordingHandler(answer=lambda event: {"batchItemFailures": [{"itemIdentifier": SEQ[1]}]})
    harness = Harness(handler, effects_source(maximum_retry_attempts=0))
    harness.write(FX, FX, FX)

    outcome = harness.poller.poll_once()

    assert handler.batches == [SEQ[0:3]]
    assert (sequence_numbers(outcome.settled), sequence_numbers(outcome.discarded)) == ([SEQ[0]], SEQ[1:3])
    [failure] = harness.failures
    assert "functionError" not in failure["responseContext"]
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == SEQ[1]


def test_an_unreachable_failure_queue_holds_the_shard_without_invoking_again() -> None:
    handler = RecordingHandler(fails=lambda record: record["dynamodb"]["SequenceNumber"] == SEQ[0])
    harness = Harness(handler, effects_source(maximum_retry_attempts=0))
    harness.write(FX, FX)
    harness.queue.down = True

    held = harness.poller.poll_once()
    harness.queue.down = False
    resumed = harness.poller.poll_once()

    assert (held.discarded, held.settled) == ([], [])
    assert held.invocations == 2  # the pair, then the first record alone
    assert sequence_numbers(resumed.discarded) == [SEQ[0]]
    assert handler.batches[2:] == [[SEQ[1]]]
    assert len(harness.failures) == 1


def test_the_on_failure_record_has_lambdas_shape() -> None:
    first_written = int(datetime(2026, 11, 18, 8, 26, 40, tzinfo=UTC).timestamp())
    records = [
        {"dynamodb": {"SequenceNumber": "7", "ApproximateCreationDateTime": first_written}},
        {"dynamodb": {"SequenceNumber": "9", "ApproximateCreationDateTime": first_written + 2}},
    ]

    failure = stream_failure_record(
        records,
        shard_id="shard-1",
        stream_arn=STREAM_ARN,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        request_id="req-1",
        invoke_count=6,
        function_error=True,
        now=datetime(2026, 12, 2, 10, 0, 7, 250_000, tzinfo=UTC),
    )

    assert list(failure) == [
        "requestContext",
        "responseContext",
        "version",
        "timestamp",
        "DDBStreamBatchInfo",
    ]
    assert failure["requestContext"] == {
        "requestId": "req-1",
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 6,
    }
    assert (failure["version"], failure["timestamp"]) == ("1.0", "2026-12-02T10:00:07.250Z")
    assert failure["DDBStreamBatchInfo"] == {
        "shardId": "shard-1",
        "startSequenceNumber": "7",
        "endSequenceNumber": "9",
        "approximateArrivalOfFirstRecord": "2026-11-18T08:26:40Z",
        "approximateArrivalOfLastRecord": "2026-11-18T08:26:42Z",
        "batchSize": 2,
        "streamArn": STREAM_ARN,
    }


# --- shards -------------------------------------------------------------------------------------


def test_a_child_shard_is_read_only_after_its_parent_is_finished() -> None:
    handler = RecordingHandler()
    harness = Harness(handler, effects_source(batch_size=1))
    harness.streams.page_size = 1  # every shard on a page of its own
    parent = harness.write(FX, FX)
    harness.streams.add_shard("shard-2", parent_id="shard-1")
    # The child is listed before its parent is closed, and holds later writes.
    child = harness.write(FX, shard="shard-2")

    first = harness.poller.poll_once()
    harness.streams.shards["shard-1"].closed = True
    later = harness.poller.poll_once()

    assert sequence_numbers(first.settled) == parent
    assert sequence_numbers(later.settled) == child
    assert later.finished_shards == 1
    assert handler.batches == [[number] for number in parent + child]


def test_a_shard_trimmed_from_the_stream_no_longer_holds_its_children_back() -> None:
    handler = RecordingHandler()
    harness = Harness(handler)
    harness.streams.shards.clear()
    harness.streams.add_shard("shard-2", parent_id="shard-gone")
    written = harness.write(FX, shard="shard-2")

    assert sequence_numbers(harness.poller.poll_once().settled) == written


def test_an_expired_iterator_is_asked_again_from_the_checkpoint() -> None:
    handler = RecordingHandler()
    harness = Harness(handler)
    first = harness.write(FX)
    harness.poller.poll_once()
    second = harness.write(FX)
    harness.streams.expire_next_read = True

    harness.poller.poll_once()
    harness.poller.poll_once()

    assert handler.batches == [first, second]
    assert "GetShardIterator AFTER_SEQUENCE_NUMBER" in harness.streams.calls


def test_starting_position_latest_skips_what_the_stream_held_at_the_first_start() -> None:
    handler = RecordingHandler()
    harness = Harness(handler, effects_source(starting_position="LATEST"))
    harness.write(FX)
    harness.poller.poll_once()
    later = harness.write(FX)

    harness.poller.poll_once()

    assert handler.batches == [later]


def test_a_table_without_a_stream_cannot_be_polled() -> None:
    poller = StreamPoller(
        FakeTable(stream_arn=""), FakeStreams(), "runs", effects_source(), RecordingHandler(), "r"
    )

    with pytest.raises(StreamSourceError, match="table runs has no stream"):
        poller.poll_once()


# --- checkpoints across restarts -------------------------------------------------------------------


def test_a_restart_resumes_after_the_last_settled_batch(tmp_path: Path) -> None:
    before = RecordingHandler()
    harness = Harness(before, effects_source(batch_size=1), path=tmp_path / "checkpoints.json")
    written = harness.write(FX, FX)
    harness.poller.poll_once()
    more = harness.write(FX)

    after = RecordingHandler()
    harness.restarted(after).poll_once()

    assert before.batches == [[number] for number in written]
    assert after.batches == [more]


def test_a_batch_in_flight_when_the_stack_dies_is_delivered_again_and_nothing_settled_is(
    tmp_path: Path,
) -> None:
    class Killed(BaseException):
        """What SIGKILL looks like from inside: nothing after it runs."""

    def dies_on_second(record: dict[str, Any]) -> bool:
        if record["dynamodb"]["SequenceNumber"] == SEQ[1]:
            raise Killed
        return False

    harness = Harness(
        RecordingHandler(fails=dies_on_second), effects_source(batch_size=1), tmp_path / "c.json"
    )
    harness.write(FX, FX, FX)
    with pytest.raises(Killed):
        harness.poller.poll_once()

    handler = RecordingHandler()
    harness.restarted(handler).poll_once()

    assert handler.batches == [[SEQ[1]], [SEQ[2]]]


def test_checkpoints_of_another_stream_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.json"
    path.write_text(
        json.dumps(
            {"stream_arn": "arn:old", "shards": {"shard-1": {"sequence_number": SEQ[5], "finished": True}}}
        )
    )
    handler = RecordingHandler()
    harness = Harness(handler, path=path)
    written = harness.write(FX)

    harness.poller.poll_once()

    assert handler.batches == [written]
    assert json.loads(path.read_text())["stream_arn"] == STREAM_ARN


@pytest.mark.parametrize("content", ["{not json", '{"stream_arn": "x"}', "[]", ""])
def test_an_unreadable_checkpoint_file_starts_over_from_the_starting_position(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "checkpoints.json"
    path.write_text(content)
    handler = RecordingHandler()
    harness = Harness(handler, path=path)
    written = harness.write(FX)

    harness.poller.poll_once()

    assert handler.batches == [written]


# --- the component ----------------------------------------------------------------------------------


def test_the_started_poller_delivers_a_record_written_after_its_start_and_stops() -> None:
    delivered = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        delivered.set()
        return {"batchItemFailures": []}

    harness = Harness(handler)
    poller = harness.poller.start()
    try:
        assert poller.running
        harness.write(FX)
        assert delivered.wait(10)
    finally:
        poller.stop()

    assert not poller.running
    poller.stop()  # idempotent
