"""The SQS run queue: the only code that talks to SQS."""

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from straitruns.domain.errors import Unavailable

# SQS accepts message delays up to 15 minutes; longer ones are the scheduler's.
MAX_DELAY_SECS = 900
_SEND_BATCH_MAX = 10


@dataclass(frozen=True)
class RunMessage:
    """What the dispatcher needs to claim a run: its id and the generation it expects."""

    run_id: str
    generation: int
    delay_secs: int = 0

    def body(self) -> str:
        return json.dumps({"run_id": self.run_id, "generation": self.generation})


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

    def send_one(self, message: RunMessage) -> None:
        """Sends one message. Raises Unavailable when SQS refuses it."""
        if self.send([message]):
            raise Unavailable("the run queue is unavailable; retry shortly")
