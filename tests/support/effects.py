"""Driving the effects of status changes in tests (docs/engine.md#effects).

Deployed, DynamoDB Streams delivers every write of a run's state item to the effects function; on
moto the tests play that event source by hand: `EffectsPump.pump()` reads the table's stream from
where it stopped, keeps the records the template's filter passes (those with `fx`), and hands them
to the real handler (`straitruns.entry.stream_effects_handler`) as Lambda would, until no effect
writes anything more.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
from botocore.config import Config

from straitruns.entry import stream_effects_handler
from straitruns.wiring import Services

# moto's in-process streams see writes only from clients with this setting (and so do these).
MOTO_CLIENT_CONFIG = Config(account_id_endpoint_mode="disabled")
# What Powertools reads of a Lambda context.
_CONTEXT = SimpleNamespace(
    function_name="strait-runs-effects",
    memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:strait-runs-effects",
    aws_request_id="test",
)


class EffectsPump:
    """Reads the table's stream and invokes the effects handler with what it finds."""

    def __init__(self, services: Services, streams: Any | None = None) -> None:
        self.services = services
        self.handler = stream_effects_handler(lambda: services)
        client = services.table.client
        local = "amazonaws.com" not in client.meta.endpoint_url  # DynamoDB Local, not moto in process
        credentials = client._request_signer._credentials  # the table client's own
        self.streams = streams or boto3.client(
            "dynamodbstreams",
            region_name=client.meta.region_name,
            endpoint_url=client.meta.endpoint_url if local else None,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.token,
            config=MOTO_CLIENT_CONFIG,
        )
        self.stream_arn: str | None = None
        self.iterators: dict[str, str | None] = {}
        self.delivered = 0

    def _arn(self) -> str | None:
        """The table's stream (None: a table a test made without one, whose effects it does not
        look at)."""
        if self.stream_arn is None:
            table = self.services.table.client.describe_table(TableName=self.services.table.name)["Table"]
            self.stream_arn = table.get("LatestStreamArn")
        return self.stream_arn

    def _records(self) -> list[dict[str, Any]]:
        arn = self._arn()
        if arn is None:
            return []
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self.iterators:
                self.iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self.iterators[shard_id]
            while iterator:
                response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records += response.get("Records", [])
                iterator = response.get("NextShardIterator")
                self.iterators[shard_id] = iterator
                if not response.get("Records"):
                    break
        return records

    def pump(self, max_rounds: int = 50) -> int:
        """Delivers every pending record with effects, and the records those effects write, until
        none is left. Returns how many records it delivered."""
        delivered = 0
        for _ in range(max_rounds):
            records = [record for record in self._records() if _has_effects(record)]
            if not records:
                self.delivered += delivered
                return delivered
            for record in records:
                self._deliver(record)
                delivered += 1
        raise AssertionError(f"effects still pending after {max_rounds} rounds")

    def _deliver(self, record: dict[str, Any], attempts: int = 5) -> None:
        """One record to the handler, again after a failure (as the event source retries it
        before the records after it); raises AssertionError when it keeps failing."""
        event = {"Records": [{**record, "eventSourceARN": self._arn()}]}
        for _ in range(attempts):
            response = self.handler(event, _CONTEXT)
            failures = response.get("batchItemFailures") if isinstance(response, dict) else None
            if not failures:
                return
        raise AssertionError(f"an effect kept failing: {record['dynamodb'].get('Keys')}")


def _has_effects(record: dict[str, Any]) -> bool:
    """The template's filter: the new image of the write holds `fx`."""
    image = record.get("dynamodb", {}).get("NewImage") or {}
    return "fx" in image
