"""Driving the execution engine in tests as its AWS event sources do.

`Engine` plays the SQS event source mapping (receive with every message attribute, hand each
message to `dispatcher.handle`, delete it once handled) and the EventBridge schedule
(`scheduler.tick`). `run_until` loops both until a run reaches a status.

Time. With a FrozenClock the engine's notion of "now" only moves when a test advances it, but SQS
message delays on moto are real seconds. Tests therefore either
- use `retry_initial_delay_secs=0` (retries are sent with no delay and arrive at the next drain), or
- advance the clock to the run's `next_retry_at`/`scheduled_at` and call `Engine.redeliver`, which
  sends the run's message with no delay: SQS delivering the delayed message when it falls due. The
  delayed copy still in the queue turns up later as a duplicate, which the dispatcher drops as stale
  (a claim moves the generation on), exactly the at-least-once case it must handle.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.run_queue import RunMessage, RunQueue, parse_message
from straitruns.adapters.store import keys
from straitruns.adapters.store.engine import slot_counter
from straitruns.domain import transitions
from straitruns.domain.models import Run
from straitruns.settings import Settings
from straitruns.wiring import Services, build_services
from tests.support.app import ADMIN_SECRET, TABLE_NAME, ApiClient, effects_pump, provision

RUN_TOKEN_SECRET = "test-run-token-secret-0123456789abcdef-xyz"
PUBLIC_URL = "http://strait.test:8080"


def engine_services(
    dynamodb: Any, sqs: Any, clock: Any, table_name: str = TABLE_NAME, **overrides: Any
) -> Services:
    """Services ready to dispatch: a run-token secret and a public URL are set, private endpoints
    allowed; `overrides` replace any setting (allow_private_endpoints included)."""
    urls = provision(dynamodb, sqs, table_name)
    values: dict[str, Any] = {
        "table_name": table_name,
        "run_queue_url": urls.run_queue_url,
        "dead_letter_queue_url": urls.dead_letter_queue_url,
        "admin_secret": ADMIN_SECRET,
        "allow_private_endpoints": True,
        "run_token_secret": RUN_TOKEN_SECRET,
        "public_url": PUBLIC_URL,
        **overrides,
    }
    return build_services(Settings(**values), dynamodb_client=dynamodb, sqs_client=sqs, clock=clock)


@dataclass(frozen=True)
class Delivery:
    """One message handed to the dispatcher, and what the dispatcher said it did."""

    run_id: str
    generation: int
    dead_letter: bool
    outcome: str


class Engine:
    """The dispatcher's and the scheduler's event sources, driven by hand."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.sqs = services.queue.client
        self.queue_url = services.queue.queue_url

    # SQS -> dispatcher ------------------------------------------------------------------------

    def receive(
        self, queue_url: str | None = None, wait_secs: int = 0, batch_size: int = 10
    ) -> list[dict[str, Any]]:
        """Up to `batch_size` visible messages (with every message attribute), not deleted."""
        response = self.sqs.receive_message(
            QueueUrl=queue_url or self.queue_url,
            MaxNumberOfMessages=batch_size,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=wait_secs,
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def handle(self, message: dict[str, Any]) -> Delivery:
        """Hands one received message to the dispatcher and deletes it once handled. A dispatcher
        error propagates and the message stays (SQS would deliver it again)."""
        parsed = parse_message(message["Body"], message.get("MessageAttributes"))
        outcome = self.services.dispatcher.handle(parsed)
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return Delivery(parsed.run_id, parsed.generation, parsed.dead_letter, outcome)

    def deliver(self, wait_secs: int = 0) -> list[Delivery]:
        """One batch: the messages visible now, each dispatched (then the effects they caused)."""
        delivered = [self.handle(message) for message in self.receive(wait_secs=wait_secs)]
        self.effects()
        return delivered

    def effects(self) -> int:
        """The stream event source of the effects function: delivers every pending change."""
        return effects_pump(self.services).pump()

    def drain(self, max_batches: int = 50) -> list[Delivery]:
        """Dispatches until no message is visible (messages sent meanwhile included), with the
        effects of every change made on the way."""
        deliveries: list[Delivery] = []
        self.effects()
        for _ in range(max_batches):
            batch = self.deliver()
            if not batch:
                return deliveries
            deliveries.extend(batch)
        raise AssertionError(f"the run queue did not drain in {max_batches} batches: {deliveries[-10:]}")

    def send(self, run_id: str, generation: int | None = None, dead_letter: bool = False) -> None:
        """Puts a message for the run on the run queue (at its current generation by default)."""
        if generation is None:
            generation = self.run(run_id).generation
        failed = self.services.queue.send([RunMessage(run_id, generation, dead_letter=dead_letter)])
        assert not failed, f"could not send the message of {run_id}"

    def redeliver(self, run_id: str) -> list[Delivery]:
        """SQS delivering the run's delayed message now: send it undelayed, then drain."""
        self.send(run_id)
        return self.drain()

    def lose_messages(self, run_id: str) -> int:
        """Deletes the run's visible messages from the run queue (a lost send); other messages are
        made visible again at once. Returns how many were deleted."""
        lost = 0
        others: list[str] = []
        while messages := self.receive():
            for message in messages:
                if parse_message(message["Body"]).run_id == run_id:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                    lost += 1
                else:
                    others.append(message["ReceiptHandle"])
        for handle in others:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0
            )
        return lost

    def visible_run_ids(self, queue_url: str | None = None) -> list[str]:
        """Run ids of the visible messages of a queue; the messages stay (made visible again)."""
        url = queue_url or self.queue_url
        seen: list[str] = []
        handles: list[str] = []
        while messages := self.receive(url):
            seen.extend(parse_message(message["Body"]).run_id for message in messages)
            handles.extend(message["ReceiptHandle"] for message in messages)
        for handle in handles:
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        return seen

    # EventBridge -> scheduler -----------------------------------------------------------------

    def tick(self) -> dict[str, int]:
        done = self.services.scheduler.tick()
        self.effects()
        return done

    # Reading the run --------------------------------------------------------------------------

    def run(self, run_id: str) -> Run:
        run = self.services.runs.get(run_id)
        assert run is not None, f"run {run_id} does not exist"
        return run

    def events(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The run's events as `{sequence, type, message, data}` (data parsed), in order."""
        return [
            {
                "sequence": event.sequence,
                "type": event.type,
                "message": event.message,
                "data": json.loads(event.data) if event.data else None,
            }
            for event in self.services.event_log.events_after(run_id, 0, 1000)
            if kind is None or event.type == kind
        ]

    def status_history(self, run_id: str) -> list[tuple[str | None, str]]:
        """The (from, to) pairs of the run's status_change events, in order."""
        return [(e["data"]["from"], e["data"]["to"]) for e in self.events(run_id, "status_change")]

    def claim(self, run_id: str) -> Run:
        """Claims a queued run as the dispatcher does (`dequeued`, a new generation, a slot of the
        job's `max_concurrency`) and goes no further: a dispatcher that vanished after its claim."""
        services = self.services
        run = self.run(run_id)
        job = services.jobs_store.get(run.job_id)
        assert job is not None
        if job.max_concurrency and not run.slots:
            run = self._take_slot(run, slot_counter(job.id), job.max_concurrency)
        return services.state.apply(run, transitions.claimed(run, services.clock.now()))

    def _take_slot(self, run: Run, counter: str, maximum: int) -> Run:
        """A slot of `counter` reserved for the queued run, as a drain of its queue reserves it."""
        table = self.services.table
        table.transact(
            [
                table.update_action(
                    counter,
                    "SLOTS",
                    "ADD active :one",
                    condition="attribute_not_exists(active) OR active < :max",
                    values={":one": 1, ":max": maximum},
                ),
                table.update_action(
                    keys.run_pk(run.id),
                    keys.STATE_SK,
                    "SET slots = :slots",
                    condition="attribute_not_exists(slots)",
                    values={":slots": [counter]},
                ),
            ]
        )
        return self.run(run.id)

    def start_attempt(self, run_id: str) -> Run:
        """Claims a queued run and moves it to `executing` with its attempt's deadline, as the
        dispatcher does right before its HTTP call, without calling anything: an attempt whose
        executor then disappears."""
        claimed = self.claim(run_id)
        job = self.services.jobs_store.get(claimed.job_id)
        assert job is not None
        now = self.services.clock.now()
        timeout = claimed.timeout_secs_override or job.timeout_secs
        return self.services.state.apply(claimed, transitions.started(now, now + timedelta(seconds=timeout)))


class SentMessages:
    """Records every message sent through a RunQueue adapter (the messages still go out)."""

    def __init__(self, queue: RunQueue) -> None:
        self.messages: list[RunMessage] = []
        original: Callable[[list[RunMessage]], list[str]] = queue.send

        def send(messages: list[RunMessage]) -> list[str]:
            self.messages.extend(messages)
            return original(messages)

        queue.send = send  # type: ignore[method-assign]

    def of(self, run_id: str) -> list[RunMessage]:
        return [message for message in self.messages if message.run_id == run_id]


def run_until(
    api: ApiClient,
    run_id: str,
    statuses: Iterable[str],
    *,
    engine: Engine | None = None,
    advance_secs: float = 0.0,
    max_rounds: int = 20,
    timeout_secs: float = 15.0,
    poll_secs: float = 0.05,
) -> dict[str, Any]:
    """Drains the run queue and ticks the scheduler until the run (read through the API) is in one
    of `statuses`; returns it. With a FrozenClock the loop never sleeps: it advances the clock by
    `advance_secs` between rounds and gives up after `max_rounds`. With a real clock it polls every
    `poll_secs` until `timeout_secs`. Raises AssertionError naming the status reached and the
    run's history when the run never gets there."""
    engine = engine or Engine(api.services)
    wanted = set(statuses)
    frozen = isinstance(api.services.clock, FrozenClock)
    deadline = time.monotonic() + timeout_secs
    rounds = 0
    while True:
        engine.drain()
        response = api.http.get(f"/v1/runs/{run_id}", headers=api.auth)
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        if run["status"] in wanted:
            return run
        rounds += 1
        out_of_time = rounds >= max_rounds if frozen else time.monotonic() > deadline
        if out_of_time:
            raise AssertionError(
                f"run {run_id} is {run['status']}, never one of {sorted(wanted)}; "
                f"history {engine.status_history(run_id)}, error {run['error']!r}"
            )
        engine.tick()
        if frozen and advance_secs:
            api.services.clock.advance(advance_secs)  # type: ignore[attr-defined]
        elif not frozen:
            time.sleep(poll_secs)


def seconds_between(start: str | datetime, end: str | datetime) -> float:
    """Seconds from `start` to `end` (RFC 3339 strings as the API shows them, or datetimes)."""

    def moment(value: str | datetime) -> datetime:
        return value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))

    return (moment(end) - moment(start)).total_seconds()


def run_workers(
    engine: Engine, workers: int, done: Callable[[], bool], timeout_secs: float = 30.0
) -> list[Delivery]:
    """`workers` threads dispatch from the run queue at once, one message per receive (concurrent
    Lambda invocations of an SQS event source with batch size 1) until `done()` holds (polled every
    50 ms by the caller's thread, which also plays the effects function's stream event source, so a
    freed concurrency slot reaches the next waiting run). Returns every delivery. Raises the first
    worker error, or AssertionError on timeout."""
    stop = threading.Event()
    deliveries: list[Delivery] = []
    errors: list[BaseException] = []

    def work() -> None:
        while not stop.is_set():
            try:
                for message in engine.receive(wait_secs=1, batch_size=1):
                    deliveries.append(engine.handle(message))
            except BaseException as exc:  # reported to the caller
                errors.append(exc)
                stop.set()

    threads = [threading.Thread(target=work, name=f"dispatcher-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_secs
    try:
        while not stop.is_set() and not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"not done after {timeout_secs} s; deliveries so far: {deliveries}")
            engine.effects()
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    if errors:
        raise errors[0]
    return deliveries
