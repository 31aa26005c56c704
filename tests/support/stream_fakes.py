"""In-memory stand-ins for what the local stream event source talks to: a table's stream (the
dynamodbstreams API), the table's description, the failure queue, and handlers that record what
they were given and fail on demand."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/runs/stream/2026-12-02T10:00:00.000"
WRITTEN_AT = datetime(2026, 12, 2, 10, 0, 5, 400_000, tzinfo=UTC)

Event = dict[str, Any]


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


@dataclass
class FakeShard:
    shard_id: str
    parent_id: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


class FakeStreams:
    """The dynamodbstreams API of one stream: shards in creation order, each an append-only list of
    records as boto3 returns them. `page_size` shards per DescribeStream page; an iterator is
    `<shard>|<position>`; a closed shard's last read gives no next iterator."""

    def __init__(self, stream_arn: str = STREAM_ARN, page_size: int = 100) -> None:
        self.stream_arn = stream_arn
        self.page_size = page_size
        self.shards: dict[str, FakeShard] = {}
        self.expire_next_read = False
        self.calls: list[str] = []
        self._sequence = itertools.count(100)

    def add_shard(self, shard_id: str, parent_id: str | None = None) -> FakeShard:
        self.shards[shard_id] = FakeShard(shard_id, parent_id)
        return self.shards[shard_id]

    def write(self, shard_id: str, image: dict[str, Any] | None, event_name: str = "MODIFY") -> str:
        """Append a record of a write of `image` (a removal when None) to the shard; its sequence number."""
        sequence_number = f"{next(self._sequence):021d}"
        change: dict[str, Any] = {
            "ApproximateCreationDateTime": WRITTEN_AT,
            "Keys": {"pk": {"S": f"ITEM#{sequence_number}"}},
            "SequenceNumber": sequence_number,
            "SizeBytes": 42,
            "StreamViewType": "NEW_IMAGE",
        }
        if image is not None:
            change["NewImage"] = {"pk": {"S": f"ITEM#{sequence_number}"}, **image}
        self.shards[shard_id].records.append(
            {
                "eventID": f"event-{sequence_number}",
                "eventName": event_name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "ddblocal",
                "dynamodb": change,
            }
        )
        return sequence_number

    # --- the API ------------------------------------------------------------------------------------

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str | None = None) -> dict[str, Any]:  # noqa: N803
        self.calls.append("DescribeStream")
        ids = list(self.shards)
        start = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        page = ids[start : start + self.page_size]
        description: dict[str, Any] = {
            "StreamArn": StreamArn,
            "Shards": [self._shard_description(self.shards[shard_id]) for shard_id in page],
        }
        if start + self.page_size < len(ids):
            description["LastEvaluatedShardId"] = page[-1]
        return {"StreamDescription": description}

    def get_shard_iterator(
        self,
        StreamArn: str,  # noqa: N803
        ShardId: str,  # noqa: N803
        ShardIteratorType: str,  # noqa: N803
        SequenceNumber: str | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        self.calls.append(f"GetShardIterator {ShardIteratorType}")
        shard = self.shards.get(ShardId)
        if shard is None:
            raise client_error("ResourceNotFoundException", "GetShardIterator")
        numbers = [record["dynamodb"]["SequenceNumber"] for record in shard.records]
        if ShardIteratorType == "TRIM_HORIZON":
            position = 0
        elif ShardIteratorType == "LATEST":
            position = len(numbers)
        else:
            position = numbers.index(str(SequenceNumber)) + 1
        return {"ShardIterator": f"{ShardId}|{position}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803
        self.calls.append("GetRecords")
        if self.expire_next_read:
            self.expire_next_read = False
            raise client_error("ExpiredIteratorException", "GetRecords")
        shard_id, position = ShardIterator.split("|")
        shard = self.shards[shard_id]
        records = shard.records[int(position) : int(position) + Limit]
        after = int(position) + len(records)
        response: dict[str, Any] = {"Records": records}
        if not (shard.closed and after == len(shard.records)):
            response["NextShardIterator"] = f"{shard_id}|{after}"
        return response

    def _shard_description(self, shard: FakeShard) -> dict[str, Any]:
        numbers: dict[str, str] = {"StartingSequenceNumber": "000000000000000000001"}
        if shard.closed:
            numbers["EndingSequenceNumber"] = shard.records[-1]["dynamodb"]["SequenceNumber"]
        description: dict[str, Any] = {"ShardId": shard.shard_id, "SequenceNumberRange": numbers}
        if shard.parent_id:
            description["ParentShardId"] = shard.parent_id
        return description


class FakeTable:
    """DescribeTable of a table whose stream is `stream_arn` (none when it is empty)."""

    def __init__(self, stream_arn: str = STREAM_ARN) -> None:
        self.stream_arn = stream_arn

    def describe_table(self, TableName: str) -> dict[str, Any]:  # noqa: N803
        table: dict[str, Any] = {"TableName": TableName}
        if self.stream_arn:
            table["LatestStreamArn"] = self.stream_arn
            table["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        return {"Table": table}


class FakeQueue:
    """SendMessage of SQS, keeping the bodies; `down` makes it fail like an unreachable queue."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.down = False

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:  # noqa: N803
        if self.down:
            raise client_error("ServiceUnavailable", "SendMessage")
        self.bodies.append(MessageBody)
        return {"MessageId": str(len(self.bodies))}


class RecordingHandler:
    """A stream handler that keeps every event, raises while `fails(record)` holds for a record of
    the batch (a function error), and otherwise answers `answer(event)`."""

    def __init__(
        self,
        fails: Callable[[dict[str, Any]], bool] = lambda record: False,
        answer: Callable[[Event], Any] = lambda event: {"batchItemFailures": []},
    ) -> None:
        self.fails = fails
        self.answer = answer
        self.events: list[Event] = []

    def __call__(self, event: Event, context: Any) -> Any:
        self.events.append(event)
        if any(self.fails(record) for record in event["Records"]):
            raise RuntimeError("the effect failed")
        return self.answer(event)

    @property
    def batches(self) -> list[list[str]]:
        """The sequence numbers of each invocation's records."""
        return [sequence_numbers(event["Records"]) for event in self.events]


def sequence_numbers(records: Iterable[dict[str, Any]]) -> list[str]:
    return [record["dynamodb"]["SequenceNumber"] for record in records]


def fails_times(times: int, sequence_number: str) -> Callable[[dict[str, Any]], bool]:
    """A `fails` predicate true for the first `times` deliveries of one record."""
    seen = itertools.count(1)

    def fails(record: dict[str, Any]) -> bool:
        return record["dynamodb"]["SequenceNumber"] == sequence_number and next(seen) <= times

    return fails
