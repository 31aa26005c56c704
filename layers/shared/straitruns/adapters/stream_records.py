"""Reading a range of records of the table's stream again (the replay of failed effects): the only
code besides the local event source that talks to DynamoDB Streams."""

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from straitruns.domain.errors import RecordsExpired

_GONE = {"TrimmedDataAccessException", "ResourceNotFoundException", "ExpiredIteratorException"}
_EMPTY_READS = 5


class DynamoStreamRecords:
    def __init__(self, client: Any) -> None:
        self.client = client

    def records(self, stream_arn: str, shard_id: str, first: str, last: str) -> Iterator[dict[str, Any]]:
        """The shard's records numbered `first`..`last`, in order. Raises RecordsExpired."""
        try:
            iterator: str | None = self.client.get_shard_iterator(
                StreamArn=stream_arn,
                ShardId=shard_id,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=first,
            )["ShardIterator"]
            empty = 0
            while iterator and empty < _EMPTY_READS:
                response = self.client.get_records(ShardIterator=iterator, Limit=1000)
                records = response.get("Records", [])
                empty = 0 if records else empty + 1
                for record in records:
                    if int(record["dynamodb"]["SequenceNumber"]) > int(last):
                        return
                    yield record
                iterator = response.get("NextShardIterator")
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _GONE:
                raise RecordsExpired(exc.response["Error"]["Code"]) from exc
            raise
