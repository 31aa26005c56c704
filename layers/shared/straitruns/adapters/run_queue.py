"""The SQS run queue: the only code that talks to SQS."""

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from straitruns.domain.errors import Unavailable
from straitruns.domain.models import Run

# SQS accepts message delays up to 15 minutes; longer ones are the scheduler's.
MAX_DELAY_SECS = 900
_SEND_BATCH_MAX = 10
DEAD_LETTER_MARK = "strait-dead-letter"
DEAD_LETTER_ATTRIBUTES = {DEAD_LETTER_MARK: {"DataType": "String", "StringValue": "1"}}


@dataclass(frozen=True)
class RunMessage:
    """What the dispatcher needs to claim a run: its id and the generation it expects."""

    run_id: str
    generation: int
    delay_secs: int = 0
    # Set on the message that parks a dead-lettered run on the dead-letter queue; a redrive
    # brings it back to the run queue with the mark, and the dispatcher replays the run.
    dead_letter: bool = False
    # The run's job, so the dispatcher reads the run and its job in one request (absent in
    # messages sent before it was added: the dispatcher then reads the job after the run).
    job_id: str | None = None

    def body(self) -> str:
        body: dict[str, object] = {"run_id": self.run_id, "generation": self.generation}
        if self.job_id:
            body["job_id"] = self.job_id
        return json.dumps(body)


def run_message(run: Run, delay_secs: int = 0, *, dead_letter: bool = False) -> RunMessage:
    """The message that hands `run` (at its current generation) to the dispatcher."""
    return RunMessage(run.id, run.generation, delay_secs, dead_letter=dead_letter, job_id=run.job_id)


def parse_message(body: str, attributes: dict[str, Any] | None = None) -> RunMessage:
    """A run message from an SQS record's body and message attributes. Raises ValueError."""
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
        raise ValueError("not a run message")
    generation = data.get("generation")
    if not isinstance(generation, int):
        raise ValueError("not a run message")
    marks = attributes or {}
    dead_letter = DEAD_LETTER_MARK in marks
    job_id = data.get("job_id")
    return RunMessage(
        data["run_id"],
        generation,
        dead_letter=dead_letter,
        job_id=job_id if isinstance(job_id, str) else None,
    )


class RunQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def send(self, messages: list[RunMessage]) -> list[str]:
        """Sends messages 10 at a time; returns the run ids whose message could not be sent
        (their runs stay queued and the scheduler re-enqueues them)."""
        failed: list[str] = []
        for start in range(0, len(messages), _SEND_BATCH_MAX):
            chunk = messages[start : start + _SEND_BATCH_MAX]
            entries = [
                {
                    "Id": str(position),
                    "MessageBody": message.body(),
                    "DelaySeconds": max(0, min(MAX_DELAY_SECS, message.delay_secs)),
                    **({"MessageAttributes": DEAD_LETTER_ATTRIBUTES} if message.dead_letter else {}),
                }
                for position, message in enumerate(chunk)
            ]
            try:
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError):
                failed.extend(message.run_id for message in chunk)
                continue
            failed.extend(chunk[int(entry["Id"])].run_id for entry in response.get("Failed", []))
        return failed

    def probe(self) -> None:
        """Reads the queue's attributes (the health check). Raises what SQS raises when the queue
        cannot be reached."""
        self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])

    def send_one(self, message: RunMessage) -> None:
        """Sends one message. Raises Unavailable when SQS refuses it."""
        if self.send([message]):
            raise Unavailable("the run queue is unavailable; retry shortly")
