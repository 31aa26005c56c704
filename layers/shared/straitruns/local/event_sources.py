"""The engine's AWS event sources, played by the local dev runner (`make dev`).

Deployed, Lambda's SQS event source mapping feeds the run queue to the dispatcher function, and an
EventBridge rule invokes the scheduler function (template.yaml). Locally the runner plays both and
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

Both threads stop on stop(). Dispatches still in flight get STOP_GRACE_SECS to finish; the worker
threads are daemons, so an endpoint that takes minutes never holds Ctrl-C up. An abandoned attempt
is settled by the scheduler's rules (lost heartbeat) at the next start.
"""

import base64
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from botocore.exceptions import BotoCoreError, ClientError

from straitruns.entry import schedule_handler, sqs_dispatch_handler
from straitruns.local.template import Template, TemplateError, load_template
from straitruns.wiring import Services

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
# The account moto reports in the local queues' ARNs; the scheduled event names the same one.
LOCAL_ACCOUNT_ID = "123456789012"
# Lambda's own defaults for a function that sets neither property, nor has it in Globals.
LAMBDA_DEFAULT_TIMEOUT_SECS = 3
LAMBDA_DEFAULT_MEMORY_MB = 128

_FUNCTION_TYPE = "AWS::Serverless::Function"
_SQS_BATCH_MAX = 10


# --- what the template says about the functions and their event sources ------------------------


@dataclass(frozen=True, slots=True)
class LambdaFunction:
    """A function of the template, as a local invocation presents it to the handler."""

    logical_id: str
    name: str
    timeout_secs: int
    memory_mb: int

    def arn(self, region: str) -> str:
        return f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{self.name}"


@dataclass(frozen=True, slots=True)
class SqsEventSource:
    """A function's SQS event: which queue, how many messages a batch holds, and whether the
    function reports partial batch failures."""

    function: LambdaFunction
    queue_logical_id: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass(frozen=True, slots=True)
class ScheduleEventSource:
    """A function's EventBridge schedule event."""

    function: LambdaFunction
    rule_name: str
    schedule: str

    def rule_arn(self, region: str) -> str:
        return f"arn:aws:events:{region}:{LOCAL_ACCOUNT_ID}:rule/{self.rule_name}"


def sqs_event_source(
    template: Template, function_id: str, queue_id: str, name_prefix: str = "strait-runs"
) -> SqsEventSource:
    """The SQS event of `function_id` on the queue `queue_id`. Raises TemplateError if there is none."""
    function = lambda_function(template, function_id, name_prefix)
    for properties in _events(template, function_id, "SQS").values():
        if properties.get("Queue") != {"Fn::GetAtt": [queue_id, "Arn"]}:
            continue
        batch_size = properties.get("BatchSize", _SQS_BATCH_MAX)
        if not isinstance(batch_size, int) or not 1 <= batch_size <= _SQS_BATCH_MAX:
            raise TemplateError(f"{function_id}: the SQS BatchSize must be 1..{_SQS_BATCH_MAX} locally")
        return SqsEventSource(
            function=function,
            queue_logical_id=queue_id,
            batch_size=batch_size,
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
        )
    raise TemplateError(f"{function_id} has no SQS event on {queue_id}")


def schedule_event_source(
    template: Template, function_id: str, name_prefix: str = "strait-runs"
) -> ScheduleEventSource:
    """The (first) Schedule event of `function_id`, its rule named `<name_prefix>-<function id><event
    id>` as SAM names it (minus the suffix). Raises TemplateError if there is none."""
    function = lambda_function(template, function_id, name_prefix)
    for event_id, properties in _events(template, function_id, "Schedule").items():
        rule_name = f"{name_prefix}-{function_id}{event_id}"
        return ScheduleEventSource(function, rule_name, str(properties.get("Schedule", "")))
    raise TemplateError(f"{function_id} has no Schedule event")


def lambda_function(template: Template, logical_id: str, name_prefix: str = "strait-runs") -> LambdaFunction:
    """A function's timeout and memory (its own, else the Globals', else Lambda's defaults), named
    `<name_prefix>-<logical id>` (deployed, SAM adds the stack name and a suffix instead)."""
    properties = _function_properties(template, logical_id)
    defaults = template.get("Globals", {}).get("Function", {})
    timeout = properties.get("Timeout", defaults.get("Timeout", LAMBDA_DEFAULT_TIMEOUT_SECS))
    memory = properties.get("MemorySize", defaults.get("MemorySize", LAMBDA_DEFAULT_MEMORY_MB))
    if not isinstance(timeout, int) or not isinstance(memory, int):
        raise TemplateError(f"{logical_id}: Timeout and MemorySize must be integers")
    return LambdaFunction(logical_id, f"{name_prefix}-{logical_id}", timeout, memory)


def _function_properties(template: Template, logical_id: str) -> dict[str, Any]:
    resource = template.get("Resources", {}).get(logical_id)
    if not isinstance(resource, dict) or resource.get("Type") != _FUNCTION_TYPE:
        raise TemplateError(f"the template declares no function {logical_id!r}")
    properties: dict[str, Any] = resource.get("Properties", {})
    return properties


def _events(template: Template, function_id: str, event_type: str) -> dict[str, dict[str, Any]]:
    events = _function_properties(template, function_id).get("Events", {})
    return {
        event_id: event.get("Properties", {})
        for event_id, event in events.items()
        if isinstance(event, dict) and event.get("Type") == event_type
    }


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
        while (messages := self._batches.get()) is not None:
            try:
                self.invoke(handler, messages)
            except Exception:  # a settle that failed: the messages come back and are dropped as stale
                logger.exception("could not settle a dispatch batch")
            finally:
                self._free_workers.release()

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
