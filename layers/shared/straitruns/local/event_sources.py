"""The engine's AWS event sources, played by the local dev runner (`make dev`).

Deployed, Lambda's SQS event source mapping feeds the run queue to the dispatcher function, an
EventBridge rule invokes the scheduler function, and a DynamoDB Streams event source mapping feeds
the table's stream to the effects function (template.yaml). Locally the runner plays all three and
calls the same handlers (`straitruns.entry`) with the same events, so the handlers never know which
world they run in:

- `RunQueuePoller` (the dispatcher's event source mapping). One thread long-polls the run queue for
  up to the template's `BatchSize` messages with every attribute, and hands each batch, as one SQS
  event, to a free worker; it receives only while a worker is free. Each of the DISPATCH_WORKERS
  worker threads holds a handler of its own and runs one invocation at a time, like one Lambda
  execution environment. When the handler returns, the messages it did not list in
  `batchItemFailures` are deleted (with `ReportBatchItemFailures`, as the template declares); the
  listed ones, or the whole batch if the handler raised or answered what Lambda would refuse, are
  made visible again after RETRY_VISIBILITY_SECS. Messages in flight keep the queue's visibility
  timeout (960 s, longer than any attempt), so a long dispatch is never delivered twice, as on AWS;
  only the wait before a failed message comes back is shorter (AWS: the rest of the 960 s).
- `SchedulerTimer` (the EventBridge rule). One thread invokes the scheduler handler with a
  scheduled event every STRAIT_SCHEDULER_INTERVAL_SECS (deployed: once a minute), one tick at a
  time, starting at once, so runs abandoned by a previous stop are reaped at the next start.
- `StreamPoller` (the effects function's DynamoDB Streams event source mapping). One thread reads
  the table's stream (DynamoDB Local's, or moto's) shard by shard, a child only once its parent is
  finished, drops the records no FilterCriteria pattern matches, and invokes the handler with
  batches of up to BatchSize records, one batch of a shard at a time. It honours partial batch
  responses, bisects a batch on a function error, sends the on-failure record of a batch that
  failed past MaximumRetryAttempts to the failure queue, and keeps a checkpoint per shard in a JSON
  file of the data dir, written after every settled batch, so a restart resumes where the last
  settled batch ended (records not settled are delivered again: at least once, as on AWS).

The threads stop on stop(). Dispatches still in flight get STOP_GRACE_SECS to finish; the worker
threads are daemons, so an endpoint that takes minutes never holds Ctrl-C up. An abandoned attempt
is settled by the scheduler's rules (lost heartbeat) at the next start.
"""

import base64
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from botocore.exceptions import BotoCoreError, ClientError

from straitruns.entry import schedule_handler, sqs_dispatch_handler, stream_effects_handler
from straitruns.local.event_filters import passes
from straitruns.local.provision import effects_failure_queue_name
from straitruns.local.template import (
    LOCAL_ACCOUNT_ID,
    STREAM_INFINITE_RETRIES,
    DynamoDBStreamEventSource,
    LambdaFunction,
    ScheduleEventSource,
    SqsEventSource,
    Template,
    dynamodb_stream_event_source,
    load_template,
    schedule_event_source,
    sqs_event_source,
)
from straitruns.settings import Settings
from straitruns.wiring import Services, streams_client

logger = logging.getLogger("straitruns.local.event_sources")

Handler = Callable[[dict[str, Any], Any], Any]

DISPATCH_WORKERS = 8
RECEIVE_WAIT_SECS = 1
RETRY_VISIBILITY_SECS = 30
STOP_GRACE_SECS = 5.0
# A failed receive (the local SQS restarting, say) is retried after this long.
RECEIVE_RETRY_SECS = 1.0
# How often a waiting thread looks at its stop flag.
_STOP_CHECK_SECS = 0.25
# The stream poller: Lambda polls a shard 4 times a second, so an idle poller backs off from the
# first to the second wait between empty reads; a failed batch is retried after STREAM_RETRY_SECS.
STREAM_IDLE_MIN_SECS = 0.05
STREAM_IDLE_MAX_SECS = 0.25
STREAM_RETRY_SECS = 0.25
# Records asked of one GetRecords call (the API's maximum).
STREAM_READ_LIMIT = 1000
# How often the shard list is read again while no shard ends (a shard's end always rereads it).
SHARD_REFRESH_SECS = 10.0
# poll_once() stops after this many invocations, so a record retried forever cannot hang a test.
POLL_ONCE_MAX_INVOCATIONS = 1000
STREAM_CHECKPOINT_FILE = "effects-stream-checkpoints.json"


# --- the invocation: context and events ----------------------------------------------------------


class LocalLambdaContext:
    """The context object of one local invocation: the attributes Lambda's Python runtime sets, and
    the remaining time counted down from the function's timeout."""

    def __init__(self, function: LambdaFunction, region: str) -> None:
        request_id = str(uuid.uuid4())
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn(region)
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + function.timeout_secs

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source sends for `messages` (as ReceiveMessage returns them)."""
    return {"Records": [sqs_record(message, queue_arn, region) for message in messages]}


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event, in Lambda's field names and order."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record |= {
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return attribute | {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}


def scheduled_event(source: ScheduleEventSource, region: str, now: datetime) -> dict[str, Any]:
    """The event an EventBridge schedule rule sends at `now`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT_ID,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [source.rule_arn(region)],
        "detail": {},
    }


def unsettled_message_ids(message_ids: Sequence[str], response: object) -> set[str]:
    """The messages of a batch that stay on the queue after the handler answered `response`, read
    as Lambda reads a ReportBatchItemFailures response: none for a null or empty response or list;
    the ones listed; all of them when the response is malformed or names a message not in the batch.
    """
    everything = set(message_ids)
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return everything
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    listed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        listed.add(identifier)
    return listed


def stream_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """One record of a DynamoDB Streams event, as Lambda's event source mapping hands it to the
    function, from a record as GetRecords returns it through boto3: Lambda's field names and order,
    ApproximateCreationDateTime in epoch seconds, binary attribute values in base64."""
    change = record.get("dynamodb", {})
    dynamodb: dict[str, Any] = {}
    if "ApproximateCreationDateTime" in change:
        dynamodb["ApproximateCreationDateTime"] = _epoch_seconds(change["ApproximateCreationDateTime"])
    for image in ("Keys", "NewImage", "OldImage"):
        if image in change:
            dynamodb[image] = {name: _lambda_value(value) for name, value in change[image].items()}
    for name in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if name in change:
            dynamodb[name] = change[name]
    lambda_record: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:  # a removal by TTL
        lambda_record["userIdentity"] = dict(record["userIdentity"])
    return lambda_record


def _epoch_seconds(value: object) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, int | float):
        return int(value)
    raise TypeError(f"not a stream record time: {value!r}")


def _lambda_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """An attribute value as Lambda's JSON carries it (boto3 decodes B and BS to bytes)."""
    [(kind, content)] = value.items()
    if kind == "B":
        return {"B": base64.b64encode(content).decode("ascii")}
    if kind == "BS":
        return {"BS": [base64.b64encode(item).decode("ascii") for item in content]}
    if kind == "M":
        return {"M": {name: _lambda_value(item) for name, item in content.items()}}
    if kind == "L":
        return {"L": [_lambda_value(item) for item in content]}
    return {kind: content}


def first_unsettled_record(sequence_numbers: Sequence[str], response: object) -> int | None:
    """Where a batch of stream records is retried from after the handler answered `response`, read
    as Lambda reads a ReportBatchItemFailures response: None (every record settled) for a null or
    empty response or list; the position of the listed record that comes first in the batch; 0 (the
    whole batch) when the response is malformed or names a record not in the batch."""
    if response is None:
        return None
    if not isinstance(response, Mapping):
        return 0
    failures = response.get("batchItemFailures")
    if failures is None:
        return None
    if not isinstance(failures, list):
        return 0
    positions = {sequence_number: position for position, sequence_number in enumerate(sequence_numbers)}
    listed: list[int] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return 0
        listed.append(positions[identifier])
    return min(listed, default=None)


def stream_failure_record(
    batch: Sequence[Mapping[str, Any]],
    *,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    request_id: str,
    invoke_count: int,
    function_error: bool,
    now: datetime,
) -> dict[str, Any]:
    """The record Lambda sends to a stream event source's on-failure destination when `batch`
    (Lambda-shaped records of one shard, in order) failed past its retries. It names the batch
    (shard and sequence range), not its records: they are read again from the table."""
    first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _arrival(first),
            "approximateArrivalOfLastRecord": _arrival(last),
            "batchSize": len(batch),
            "streamArn": stream_arn,
        },
    }


def _arrival(change: Mapping[str, Any]) -> str:
    seconds = change.get("ApproximateCreationDateTime", 0)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the components --------------------------------------------------------------------------------


class RunQueuePoller:
    """The dispatcher's SQS event source mapping (see the module docstring). A Component."""

    name = "dispatcher"

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        source: SqsEventSource,
        make_handler: Callable[[], Handler],
        region: str,
        *,
        workers: int = DISPATCH_WORKERS,
        wait_secs: int = RECEIVE_WAIT_SECS,
    ) -> None:
        """`make_handler` builds one handler per worker (each is one execution environment)."""
        if workers < 1:
            raise ValueError("a poller needs at least one worker")
        self._sqs = sqs
        self._queue_url = queue_url
        self._source = source
        self._make_handler = make_handler
        self._region = region
        self._workers = workers
        self._wait_secs = wait_secs
        self._queue_arn = ""
        self._stopping = threading.Event()
        self._free_workers = threading.Semaphore(workers)
        self._batches: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()
        self._poller: threading.Thread | None = None
        self._worker_threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return self._poller is not None and self._poller.is_alive() and not self._stopping.is_set()

    @property
    def source(self) -> SqsEventSource:
        return self._source

    def queue_arn(self) -> str:
        """The run queue's ARN, as the records' eventSourceARN (asked of SQS once)."""
        if not self._queue_arn:
            attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
            self._queue_arn = str(attributes["Attributes"]["QueueArn"])
        return self._queue_arn

    def start(self) -> Self:
        """Start the workers and the poller. Raises ClientError or BotoCoreError if the queue
        cannot be read."""
        self.queue_arn()
        # Built here, so that a handler that cannot be built fails the start, not a worker.
        handlers = [self._make_handler() for _ in range(self._workers)]
        self._stopping.clear()
        self._worker_threads = [
            threading.Thread(target=self._work, args=(handler,), name=f"dispatcher-{number}", daemon=True)
            for number, handler in enumerate(handlers, start=1)
        ]
        for thread in self._worker_threads:
            thread.start()
        self._poller = threading.Thread(target=self._poll, name="run-queue-poller", daemon=True)
        self._poller.start()
        return self

    def stop(self) -> None:
        """Stop polling, let the dispatches in flight finish within STOP_GRACE_SECS and abandon the
        rest (their threads are daemons); idempotent."""
        poller, workers = self._poller, self._worker_threads
        self._poller, self._worker_threads = None, []
        if poller is None:
            return
        self._stopping.set()
        deadline = time.monotonic() + STOP_GRACE_SECS
        poller.join(self._wait_secs + STOP_GRACE_SECS)
        for _ in workers:
            self._batches.put(None)
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        abandoned = sum(thread.is_alive() for thread in workers)
        if abandoned:
            logger.warning("abandoned %d dispatch batch(es) still in flight at stop", abandoned)

    def receive(self) -> list[dict[str, Any]]:
        """One long poll of the run queue, as the event source mapping makes it."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._source.batch_size,
            WaitTimeSeconds=self._wait_secs,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def invoke(self, handler: Handler, messages: Sequence[Mapping[str, Any]]) -> set[str]:
        """Invoke `handler` with the batch as one SQS event, then delete the messages it settled and
        make the others visible again after RETRY_VISIBILITY_SECS; returns the ids of the others."""
        ids = [str(message["MessageId"]) for message in messages]
        event = sqs_event(messages, self.queue_arn(), self._region)
        try:
            response = handler(event, LocalLambdaContext(self._source.function, self._region))
        except Exception:
            logger.exception("the dispatcher failed a whole batch of %d message(s)", len(ids))
            unsettled = set(ids)
        else:
            settles_partially = self._source.report_batch_item_failures
            unsettled = unsettled_message_ids(ids, response) if settles_partially else set()
        self._settle(messages, unsettled)
        return unsettled

    def _poll(self) -> None:
        while not self._stopping.is_set():
            if not self._free_workers.acquire(timeout=_STOP_CHECK_SECS):
                continue
            messages = self._receive_or_none()
            if not messages:
                self._free_workers.release()
                continue
            if self._stopping.is_set():
                self._settle(messages, {str(message["MessageId"]) for message in messages}, visibility=0)
                self._free_workers.release()
                return
            self._batches.put(messages)

    def _receive_or_none(self) -> list[dict[str, Any]] | None:
        try:
            return self.receive()
        except (BotoCoreError, ClientError) as error:
            logger.warning("could not receive from the run queue (%s); retrying", error)
            self._stopping.wait(RECEIVE_RETRY_SECS)
            return None

    def _work(self, handler: Handler) -> None:
        while (messages := self._next_batch()) is not None:
            try:
                self.invoke(handler, messages)
            except Exception:  # a settle that failed: the messages come back and are dropped as stale
                logger.exception("could not settle a dispatch batch")
            finally:
                self._free_workers.release()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """The next batch for a worker, or None once the source stops (the sentinel `stop` puts,
        or, should it never come, the stop flag seen between bounded waits)."""
        while True:
            try:
                return self._batches.get(timeout=RECEIVE_RETRY_SECS)
            except queue.Empty:
                if self._stopping.is_set():
                    return None

    def _settle(
        self,
        messages: Sequence[Mapping[str, Any]],
        unsettled: set[str],
        visibility: int = RETRY_VISIBILITY_SECS,
    ) -> None:
        done = [
            {"Id": str(position), "ReceiptHandle": message["ReceiptHandle"]}
            for position, message in enumerate(messages)
            if message["MessageId"] not in unsettled
        ]
        again = [
            {"Id": str(position), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": visibility}
            for position, message in enumerate(messages)
            if message["MessageId"] in unsettled
        ]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=done)
        if again:
            self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=again)


class SchedulerTimer:
    """The scheduler's EventBridge rule (see the module docstring). A Component."""

    name = "scheduler"

    def __init__(
        self, handler: Handler, source: ScheduleEventSource, region: str, interval_secs: float
    ) -> None:
        """Invoke `handler` every `interval_secs` (> 0) once started."""
        if interval_secs <= 0:
            raise ValueError("the scheduler interval must be positive")
        self._handler = handler
        self._source = source
        self._region = region
        self._interval = interval_secs
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    def start(self) -> Self:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="scheduler-timer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop ticking; a tick in progress gets STOP_GRACE_SECS to finish. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(STOP_GRACE_SECS)
        if thread.is_alive():
            logger.warning("abandoned a scheduler tick still in progress at stop")

    def tick(self) -> Any:
        """One invocation of the handler with a scheduled event; returns its answer, or None if it
        raised (logged: EventBridge would just invoke it again at the next tick)."""
        event = scheduled_event(self._source, self._region, datetime.now(UTC))
        try:
            return self._handler(event, LocalLambdaContext(self._source.function, self._region))
        except Exception:
            logger.exception("the scheduler tick failed")
            return None

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            self.tick()
            if self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started))):
                return


class StreamSourceError(RuntimeError):
    """The stream event source cannot start: the table has no stream."""


@dataclass
class PollOutcome:
    """What the stream poller did in one poll_once() (or one pass of its thread)."""

    # The records the handler settled, in order (a record delivered again after a restart, or
    # after a partial failure of its batch, appears once per settlement).
    settled: list[dict[str, Any]] = field(default_factory=list)
    # The records of batches that failed past their retries, named on the failure queue.
    discarded: list[dict[str, Any]] = field(default_factory=list)
    # Records no filter pattern matched: never delivered, but passed by the checkpoint.
    filtered: int = 0
    invocations: int = 0
    failed_invocations: int = 0
    finished_shards: int = 0

    @property
    def progressed(self) -> bool:
        """Whether a record or a shard was done with (settled, discarded, filtered or finished)."""
        return bool(self.settled or self.discarded or self.filtered or self.finished_shards)

    def add(self, other: "PollOutcome") -> None:
        self.settled += other.settled
        self.discarded += other.discarded
        self.filtered += other.filtered
        self.invocations += other.invocations
        self.failed_invocations += other.failed_invocations
        self.finished_shards += other.finished_shards


@dataclass
class _Batch:
    """Records of one shard, in order, handed to one invocation."""

    records: list[dict[str, Any]]
    # The checkpoint once every record is settled: the last record read into the batch (records
    # a filter dropped between two of them included).
    through: str


@dataclass
class _Shard:
    """What the poller knows of one shard of the stream."""

    shard_id: str
    parent_id: str | None
    checkpoint: str | None = None  # the sequence number of the last record done with
    finished: bool = False  # closed, and every record done with: its children may be read
    at_latest: bool = False  # to be read from LATEST (a first start with StartingPosition LATEST)
    iterator: str | None = None
    exhausted: bool = False  # GetRecords gave no next iterator: the shard is closed and read
    buffer: deque[dict[str, Any]] = field(default_factory=deque)  # read, not in a batch yet
    pending: deque[_Batch] = field(default_factory=deque)  # to retry, in order, before the buffer
    failure: tuple[_Batch, dict[str, Any]] | None = None  # a batch given up on, its record unsent


SavedShard = tuple[str | None, bool]


class StreamCheckpoints:
    """The stream poller's checkpoint per shard, in a JSON file (only in memory when `path` is
    None): `{"stream_arn": ..., "shards": {<shard id>: {"sequence_number": ..., "finished": ...}}}`.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: tuple[str, dict[str, SavedShard]] | None = None

    def load(self, stream_arn: str) -> dict[str, SavedShard] | None:
        """The checkpoints kept for `stream_arn`, or None when none are: no file, an unreadable one
        (logged), or one of another stream (the table was created again)."""
        saved = self._memory if self.path is None else self._read()
        if saved is None or saved[0] != stream_arn:
            return None
        return dict(saved[1])

    def save(self, stream_arn: str, shards: Mapping[str, SavedShard]) -> None:
        """Replace the checkpoints with `shards` (shard id -> (last sequence number done with, or
        None; whether the shard is finished)), atomically: the file is written aside, flushed to
        disk and renamed over the old one. Raises OSError if it cannot be written."""
        kept = dict(shards)
        if self.path is None:
            self._memory = (stream_arn, kept)
            return
        document = {
            "stream_arn": stream_arn,
            "shards": {
                shard_id: {"sequence_number": sequence_number, "finished": finished}
                for shard_id, (sequence_number, finished) in kept.items()
            },
        }
        staging = self.path.with_name(f".{self.path.name}.tmp")
        with staging.open("w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, self.path)

    def _read(self) -> tuple[str, dict[str, SavedShard]] | None:
        assert self.path is not None
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            shards = {
                str(shard_id): (_optional_string(saved["sequence_number"]), bool(saved["finished"]))
                for shard_id, saved in document["shards"].items()
            }
            return str(document["stream_arn"]), shards
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            logger.warning("ignoring the unreadable stream checkpoints %s (%s)", self.path, error)
            return None


class StreamPoller:
    """The effects function's DynamoDB Streams event source mapping (see the module docstring and
    docs/local-stack.md). A Component; poll_once() drives it by hand instead."""

    name = "effects"

    def __init__(
        self,
        dynamodb: Any,
        streams: Any,
        table_name: str,
        source: DynamoDBStreamEventSource,
        handler: Handler,
        region: str,
        *,
        sqs: Any = None,
        failure_queue_url: str | None = None,
        checkpoints: StreamCheckpoints | None = None,
    ) -> None:
        """Read the stream of `table_name` (found with the `dynamodb` client) through the
        `streams` client (dynamodbstreams). A batch given up on is named on `failure_queue_url`
        through `sqs`; without a URL it is only logged."""
        if failure_queue_url is not None and sqs is None:
            raise ValueError("an on-failure queue needs an SQS client")
        self._dynamodb = dynamodb
        self._streams = streams
        self._table_name = table_name
        self._source = source
        self._handler = handler
        self._region = region
        self._sqs = sqs
        self._failure_queue_url = failure_queue_url
        self._checkpoints = checkpoints or StreamCheckpoints(None)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream_arn = ""
        self._saved: dict[str, SavedShard] = {}
        self._first_listing = False
        self._shards: dict[str, _Shard] = {}
        self._list_shards_at = 0.0
        self._invocations: Counter[str] = Counter()
        self._retries: Counter[str] = Counter()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    @property
    def source(self) -> DynamoDBStreamEventSource:
        return self._source

    def stream_arn(self) -> str:
        """The stream read (the table's latest), found at the first call. Raises StreamSourceError
        if the table has no stream enabled, ClientError if it cannot be described."""
        with self._lock:
            self._open()
            return self._stream_arn

    def start(self) -> Self:
        """Find the stream and its checkpoints, then poll it in a thread. Raises StreamSourceError
        or ClientError as stream_arn() does."""
        self.stream_arn()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling; a batch in flight gets STOP_GRACE_SECS to finish, and is delivered again
        at the next start if it has not by then (its checkpoint is not written). Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(STOP_GRACE_SECS)
        if thread.is_alive():
            logger.warning("abandoned a stream batch still in flight at stop")

    def poll_once(self, max_invocations: int = POLL_ONCE_MAX_INVOCATIONS) -> PollOutcome:
        """Process everything the stream holds now, in the calling thread: every batch delivered,
        retried as the source says until it is settled or given up on, and every checkpoint
        written. Stops early after `max_invocations`. Raises what stream_arn() raises, and
        ClientError or BotoCoreError if the stream cannot be read."""
        total = PollOutcome()
        while total.invocations < max_invocations:
            with self._lock:
                self._open()
                outcome = self._cycle(lambda: False)
            total.add(outcome)
            if not outcome.progressed and not outcome.failed_invocations:
                break
        return total

    # --- one pass over the shards (under the lock) -------------------------------------------------

    def _open(self) -> None:
        if self._stream_arn:
            return
        table = self._dynamodb.describe_table(TableName=self._table_name)["Table"]
        stream_arn = table.get("LatestStreamArn")
        if not stream_arn or not table.get("StreamSpecification", {}).get("StreamEnabled"):
            raise StreamSourceError(
                f"table {self._table_name} has no stream: provision it from the template (make dev does)"
            )
        saved = self._checkpoints.load(stream_arn)
        self._stream_arn = str(stream_arn)
        self._first_listing = saved is None
        self._saved = saved or {}

    def _cycle(self, should_stop: Callable[[], bool]) -> PollOutcome:
        outcome = PollOutcome()
        if time.monotonic() >= self._list_shards_at:
            self._list_shards()
        for shard in list(self._shards.values()):
            if should_stop():
                break
            if self._readable(shard):
                self._advance(shard, outcome, should_stop)
        return outcome

    def _list_shards(self) -> None:
        listed: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StreamArn": self._stream_arn}
        while True:
            description = self._streams.describe_stream(**request)["StreamDescription"]
            listed += description.get("Shards", [])
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            request["ExclusiveStartShardId"] = last
        for shard in listed:
            if shard["ShardId"] not in self._shards:
                self._shards[shard["ShardId"]] = self._known_shard(shard)
        # A shard no longer listed was trimmed (its records expired): nothing of it can be read.
        for shard_id in set(self._shards) - {shard["ShardId"] for shard in listed}:
            del self._shards[shard_id]
        self._first_listing = False
        self._list_shards_at = time.monotonic() + SHARD_REFRESH_SECS
        self._save()

    def _known_shard(self, description: Mapping[str, Any]) -> _Shard:
        shard = _Shard(description["ShardId"], description.get("ParentShardId"))
        if shard.shard_id in self._saved:
            shard.checkpoint, shard.finished = self._saved[shard.shard_id]
        elif self._first_listing and self._source.starting_position == "LATEST":
            # LATEST applies to the shards there are when the mapping is created; a shard that
            # opens later is read from its start, as on AWS.
            closed = "EndingSequenceNumber" in description.get("SequenceNumberRange", {})
            shard.finished, shard.at_latest = closed, not closed
        return shard

    def _readable(self, shard: _Shard) -> bool:
        parent = self._shards.get(shard.parent_id) if shard.parent_id else None
        return not shard.finished and (parent is None or parent.finished)

    def _advance(self, shard: _Shard, outcome: PollOutcome, should_stop: Callable[[], bool]) -> None:
        """Deliver the shard's batches one after the other until it is caught up, or one fails."""
        while not should_stop():
            if shard.failure is not None and not self._give_up(shard, outcome):
                return
            batch = shard.pending.popleft() if shard.pending else self._next_batch(shard, outcome)
            if batch is None:
                if shard.exhausted:
                    self._finish(shard, outcome)
                return
            if not self._deliver(shard, batch, outcome):
                return

    def _next_batch(self, shard: _Shard, outcome: PollOutcome) -> _Batch | None:
        """Up to BatchSize records that pass the filters, read on from the buffer (and the stream
        when it runs out); None once the shard holds nothing more for now."""
        while True:
            if not shard.buffer and (shard.exhausted or not self._read(shard)):
                return None
            records: list[dict[str, Any]] = []
            through = ""
            while shard.buffer and len(records) < self._source.batch_size:
                record = shard.buffer.popleft()
                through = record["dynamodb"]["SequenceNumber"]
                if passes(self._source.filter_patterns, record):
                    records.append(record)
                else:
                    outcome.filtered += 1
            if records:
                return _Batch(records, through)
            self._checkpoint(shard, through)  # only filtered records: they are done with

    def _read(self, shard: _Shard) -> bool:
        """One GetRecords of the shard into its buffer; whether it returned records."""
        if shard.iterator is None:
            shard.iterator = self._shard_iterator(shard)
            if shard.iterator is None:
                shard.exhausted = True
                return False
        try:
            response = self._streams.get_records(ShardIterator=shard.iterator, Limit=STREAM_READ_LIMIT)
        except ClientError as error:
            code = _error_code(error)
            if code not in (
                "ExpiredIteratorException",
                "TrimmedDataAccessException",
                "ResourceNotFoundException",
            ):
                raise
            # Asked again from the checkpoint at the next read: the buffer is empty, so the
            # records after the checkpoint are exactly those not read yet.
            shard.iterator = None
            shard.exhausted = code == "ResourceNotFoundException"
            return False
        records = response.get("Records", [])
        shard.buffer.extend(stream_record(record, self._stream_arn, self._region) for record in records)
        shard.iterator = response.get("NextShardIterator")
        shard.exhausted = shard.iterator is None
        return bool(records)

    def _shard_iterator(self, shard: _Shard) -> str | None:
        request: dict[str, Any] = {"StreamArn": self._stream_arn, "ShardId": shard.shard_id}
        if shard.checkpoint is not None:
            request |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.checkpoint}
        else:
            request["ShardIteratorType"] = "LATEST" if shard.at_latest else "TRIM_HORIZON"
        try:
            return str(self._streams.get_shard_iterator(**request)["ShardIterator"])
        except ClientError as error:
            code = _error_code(error)
            if code == "ResourceNotFoundException":
                return None
            if code != "TrimmedDataAccessException" or shard.checkpoint is None:
                raise
        logger.warning(
            "the records after the checkpoint of shard %s expired; reading on from its oldest record",
            shard.shard_id,
        )
        request = {
            "StreamArn": self._stream_arn,
            "ShardId": shard.shard_id,
            "ShardIteratorType": "TRIM_HORIZON",
        }
        return str(self._streams.get_shard_iterator(**request)["ShardIterator"])

    def _deliver(self, shard: _Shard, batch: _Batch, outcome: PollOutcome) -> bool:
        """Invoke the handler with the batch; whether the shard may go on (the batch was settled,
        or given up on and named on the failure queue)."""
        sequence_numbers = [_sequence_number(record) for record in batch.records]
        context = LocalLambdaContext(self._source.function, self._region)
        self._invocations.update(sequence_numbers)
        outcome.invocations += 1
        try:
            response = self._handler({"Records": batch.records}, context)
        except Exception:
            logger.exception(
                "the %s function failed a batch of %d stream record(s)",
                self._source.function.logical_id,
                len(batch.records),
            )
            return self._failed(shard, batch, 0, context, outcome, function_error=True)
        first_failed = (
            first_unsettled_record(sequence_numbers, response)
            if self._source.report_batch_item_failures
            else None
        )
        if first_failed is None:
            self._settle(shard, batch.records, batch.through, outcome)
            return True
        return self._failed(shard, batch, first_failed, context, outcome, function_error=False)

    def _failed(
        self,
        shard: _Shard,
        batch: _Batch,
        first_failed: int,
        context: LocalLambdaContext,
        outcome: PollOutcome,
        *,
        function_error: bool,
    ) -> bool:
        outcome.failed_invocations += 1
        if first_failed:
            done = batch.records[:first_failed]
            self._settle(shard, done, _sequence_number(done[-1]), outcome)
        rest = _Batch(batch.records[first_failed:], batch.through)
        if function_error and self._source.bisect_batch_on_function_error and len(rest.records) > 1:
            # Each half is retried as a batch of its own; splitting consumes no retry, as on AWS.
            middle = (len(rest.records) + 1) // 2
            shard.pending.appendleft(_Batch(rest.records[middle:], rest.through))
            shard.pending.appendleft(
                _Batch(rest.records[:middle], _sequence_number(rest.records[middle - 1]))
            )
            return False
        sequence_numbers = [_sequence_number(record) for record in rest.records]
        self._retries.update(sequence_numbers)
        limit = self._source.maximum_retry_attempts
        if (
            limit == STREAM_INFINITE_RETRIES
            or max(self._retries[number] for number in sequence_numbers) <= limit
        ):
            shard.pending.appendleft(rest)
            return False
        shard.failure = (
            rest,
            stream_failure_record(
                rest.records,
                shard_id=shard.shard_id,
                stream_arn=self._stream_arn,
                function_arn=context.invoked_function_arn,
                request_id=context.aws_request_id,
                invoke_count=max(self._invocations[number] for number in sequence_numbers),
                function_error=function_error,
                now=datetime.now(UTC),
            ),
        )
        return self._give_up(shard, outcome)

    def _give_up(self, shard: _Shard, outcome: PollOutcome) -> bool:
        """Send the on-failure record of the batch given up on, then pass it; False (to try again
        at the next pass) if the failure queue cannot be reached."""
        assert shard.failure is not None
        batch, failure = shard.failure
        info = failure["DDBStreamBatchInfo"]
        if self._failure_queue_url is not None:
            try:
                self._sqs.send_message(QueueUrl=self._failure_queue_url, MessageBody=json.dumps(failure))
            except (BotoCoreError, ClientError) as error:
                logger.warning("could not send a stream batch's on-failure record (%s); retrying", error)
                return False
        logger.error(
            "stream records %s..%s of shard %s failed past %d retries; %s",
            info["startSequenceNumber"],
            info["endSequenceNumber"],
            shard.shard_id,
            self._source.maximum_retry_attempts,
            "named on the failure queue" if self._failure_queue_url else "discarded (no on-failure queue)",
        )
        shard.failure = None
        outcome.discarded += batch.records
        self._forget(batch.records)
        self._checkpoint(shard, batch.through)
        return True

    def _settle(
        self, shard: _Shard, records: list[dict[str, Any]], through: str, outcome: PollOutcome
    ) -> None:
        outcome.settled += records
        self._forget(records)
        self._checkpoint(shard, through)

    def _forget(self, records: Sequence[Mapping[str, Any]]) -> None:
        for record in records:
            self._invocations.pop(_sequence_number(record), None)
            self._retries.pop(_sequence_number(record), None)

    def _finish(self, shard: _Shard, outcome: PollOutcome) -> None:
        shard.finished = True
        outcome.finished_shards += 1
        self._list_shards_at = 0.0  # its children are read next
        self._save()

    def _checkpoint(self, shard: _Shard, through: str) -> None:
        shard.checkpoint = through
        self._save()

    def _save(self) -> None:
        saved = {shard.shard_id: (shard.checkpoint, shard.finished) for shard in self._shards.values()}
        self._checkpoints.save(self._stream_arn, saved)

    # --- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        idle = STREAM_IDLE_MIN_SECS
        while not self._stopping.is_set():
            try:
                with self._lock:
                    outcome = self._cycle(self._stopping.is_set)
            except Exception as error:  # the engine restarting, a full disk: logged, then retried
                logger.warning("could not poll the table's stream (%s); retrying", error, exc_info=True)
                wait = RECEIVE_RETRY_SECS
            else:
                if outcome.failed_invocations:
                    wait = STREAM_RETRY_SECS
                elif outcome.progressed:
                    idle, wait = STREAM_IDLE_MIN_SECS, 0.0
                else:
                    wait, idle = idle, min(idle * 2, STREAM_IDLE_MAX_SECS)
            self._stopping.wait(wait)


def _optional_string(value: object) -> str | None:
    return None if value is None else str(value)


def _sequence_number(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# --- the factories of local/dev.py's BACKGROUND_WORKERS ---------------------------------------------


def dispatcher_event_source(services: Services, template: Template | None = None) -> RunQueuePoller:
    """The run queue poller of the dev runner, invoking `sqs_dispatch_handler` with `services`."""
    source = sqs_event_source(
        template or load_template(), "DispatcherFunction", "RunQueue", services.settings.table_name
    )
    return RunQueuePoller(
        services.queue.client,
        services.queue.queue_url,
        source,
        lambda: sqs_dispatch_handler(lambda: services),
        services.settings.region,
    )


def scheduler_event_source(services: Services, template: Template | None = None) -> SchedulerTimer:
    """The scheduler timer of the dev runner, invoking `schedule_handler` with `services` every
    STRAIT_SCHEDULER_INTERVAL_SECS."""
    source = schedule_event_source(
        template or load_template(), "SchedulerFunction", services.settings.table_name
    )
    return SchedulerTimer(
        schedule_handler(lambda: services),
        source,
        services.settings.region,
        services.settings.scheduler_interval_secs,
    )


def effects_event_source(
    services: Services,
    template: Template | None = None,
    data_dir: Path | None = None,
    *,
    failure_queue_url: str | None = None,
    streams: Any = None,
) -> StreamPoller:
    """The table stream's poller of the dev runner, invoking `stream_effects_handler` with
    `services`. Its checkpoints live in `<data_dir>/effects-stream-checkpoints.json` (default: the
    data dir of `make dev`); a batch given up on is named on `failure_queue_url` (default: the
    queue `<table>-effects-failures`, which provisioning creates); `streams` is the dynamodbstreams
    client (default: one for the settings' DynamoDB endpoint).

    Raises TemplateError if the template's EffectsFunction event cannot be played, and ClientError
    if the failure queue does not exist.
    """
    settings = services.settings
    source = dynamodb_stream_event_source(
        template or load_template(), "EffectsFunction", name_prefix=settings.table_name
    )
    sqs = services.queue.client
    if failure_queue_url is None:
        failure_queue_url = str(
            sqs.get_queue_url(QueueName=effects_failure_queue_name(settings.table_name))["QueueUrl"]
        )
    return StreamPoller(
        services.table.client,
        streams if streams is not None else stream_client(settings),
        settings.table_name,
        source,
        stream_effects_handler(lambda: services),
        settings.region,
        sqs=sqs,
        failure_queue_url=failure_queue_url,
        checkpoints=StreamCheckpoints((data_dir or _dev_data_dir()) / STREAM_CHECKPOINT_FILE),
    )


def stream_client(settings: Settings) -> Any:
    """A dynamodbstreams client for the settings' DynamoDB endpoint (DynamoDB Local's, the moto
    server's, or moto in process when there is none)."""
    return streams_client(settings)


def _dev_data_dir() -> Path:
    # The data dir `make dev` uses, read from the environment as the runner reads it (imported
    # here because the runner imports this module).
    from straitruns.local.dev import LocalConfig

    return LocalConfig.from_env(os.environ).data_dir
