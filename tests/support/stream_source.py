"""The effects function's stream event source on a real table (moto in process, or DynamoDB Local):
a poller of the table's stream with the template's settings, items to write, and what reached the
failure queue."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from straitruns.local.event_sources import StreamCheckpoints, StreamPoller
from straitruns.local.template import DynamoDBStreamEventSource, dynamodb_stream_event_source, load_template

# moto's streams answer only on the regional endpoint, so account-based endpoints are off.
STREAMS_CONFIG = Config(account_id_endpoint_mode="disabled")


@cache
def effects_source() -> DynamoDBStreamEventSource:
    """The template's EffectsFunction stream event (read once per process)."""
    return dynamodb_stream_event_source(load_template(), "EffectsFunction")


def streams_client(endpoint_url: str | None = None) -> Any:
    """A dynamodbstreams client (moto in process when `endpoint_url` is None)."""
    return boto3.client(
        "dynamodbstreams",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=STREAMS_CONFIG,
    )


@dataclass
class StreamTable:
    """A table built from the template, its stream's poller's parts, and its failure queue."""

    dynamodb: Any
    streams: Any
    sqs: Any
    table_name: str
    failure_queue_url: str
    checkpoint_path: Path

    def poller(self, handler: Any) -> StreamPoller:
        """A poller as the dev runner builds it (the template's EffectsFunction event), with its
        checkpoints in `checkpoint_path`: a new one is what a restart of the stack builds."""
        function = replace(effects_source().function, name=f"{self.table_name}-EffectsFunction")
        source = replace(effects_source(), function=function)
        return StreamPoller(
            self.dynamodb,
            self.streams,
            self.table_name,
            source,
            handler,
            "us-east-1",
            sqs=self.sqs,
            failure_queue_url=self.failure_queue_url,
            checkpoints=StreamCheckpoints(self.checkpoint_path),
        )

    def put(self, run: str, **attributes: str) -> None:
        """Write run `run`'s state item with string `attributes` (an `fx` one makes it an outbox record)."""
        item = {"pk": {"S": f"RUN#{run}"}, "sk": {"S": "STATE"}}
        item |= {name: {"S": value} for name, value in attributes.items()}
        self.dynamodb.put_item(TableName=self.table_name, Item=item)

    def stream_arn(self) -> str:
        return str(self.dynamodb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"])

    def failures(self) -> list[dict[str, Any]]:
        """Every on-failure record on the failure queue (received and deleted)."""
        found: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.failure_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.failure_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


def runs_of(records: list[dict[str, Any]]) -> list[str]:
    """The run of each record, from its keys."""
    return [record["dynamodb"]["Keys"]["pk"]["S"].removeprefix("RUN#") for record in records]


class Handler:
    """An effects handler that keeps the records of every invocation and raises for a record of
    one of the runs in `failing` while its count of failures left is above zero (-1: forever)."""

    def __init__(self, failing: dict[str, int] | None = None) -> None:
        self.failing = dict(failing or {})
        self.invocations: list[list[dict[str, Any]]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.invocations.append(event["Records"])
        for run in runs_of(event["Records"]):
            left = self.failing.get(run, 0)
            if left:
                self.failing[run] = left - 1 if left > 0 else left
                raise RuntimeError(f"the effect of run {run} failed")
        return {"batchItemFailures": []}

    @property
    def delivered(self) -> list[str]:
        """The run of every record handed over, in order, once per delivery."""
        return [run for records in self.invocations for run in runs_of(records)]


class Killed(BaseException):
    """The stack killed (SIGKILL) mid-batch: nothing after it runs, no checkpoint is written."""


def restart_after_a_kill_mid_batch(table: StreamTable) -> Handler:
    """Run a's effect; kill the stack while b's batch is in flight; write c; start again. Returns
    the handler of the restarted poller, after it processed the stream."""

    def dies_on_b(event: dict[str, Any], context: Any) -> None:
        if "b" in runs_of(event["Records"]):
            raise Killed

    table.put("a", fx="release")
    table.poller(Handler()).poll_once()
    table.put("b", fx="release")
    try:
        table.poller(dies_on_b).poll_once()
    except Killed:
        pass
    else:
        raise AssertionError("b's batch never reached the handler")
    table.put("c", fx="release")
    after_restart = Handler()
    table.poller(after_restart).poll_once()
    return after_restart
