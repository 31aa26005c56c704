"""Engine operations on a run's state item: events numbered by atomic add, heartbeats, wake-ups in
the timer index, concurrency slots, parking. Every write here that is not a status change removes
`fx`, so that only status changes reach the effects function (docs/engine.md#effects)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from straitruns.adapters.store import keys
from straitruns.adapters.store.run_codec import event_item, parked_item
from straitruns.adapters.store.table import ConditionFailed, DynamoTable
from straitruns.domain.errors import NotFound
from straitruns.domain.models import Event, Run, WaitingReason
from straitruns.domain.timefmt import format_ts


def slot_counter(job_id: str, key_hash: str | None = None) -> str:
    """The counter item of a job's concurrency (or of one concurrency key of the job)."""
    return f"SLOTS#{job_id}" + (f"#{key_hash}" if key_hash else "")


def _state_key(run_id: str) -> dict[str, Any]:
    return {"pk": {"S": keys.run_pk(run_id)}, "sk": {"S": keys.STATE_SK}}


class EngineStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def append_event(self, run_id: str, make_event: Callable[[int], Event]) -> Event:
        """Appends an event under the next sequence, taken with an atomic add on the run's state
        item (never retried, so a burst of writers on one run costs one write each), then written
        as its own item. Raises NotFound when the run has no state item."""
        try:
            response = self.table.update_item(
                Key=_state_key(run_id),
                UpdateExpression="ADD seq :one REMOVE fx",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise NotFound("run not found") from exc
            raise
        event = make_event(int(response["Attributes"]["seq"]["N"]))
        self.table.batch_write([event_item(event)])
        return event

    def heartbeat(self, run_id: str, at: datetime) -> None:
        try:
            self.table.update_item(
                Key=_state_key(run_id),
                UpdateExpression="SET heartbeat_at = :at REMOVE fx",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":at": {"S": format_ts(at)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def set_wake(self, run: Run, wake_at: datetime | None) -> bool:
        """Moves the run's wake-up if it is still at `run`'s status and generation."""
        values: dict[str, Any] = {":s": run.status.value, ":g": run.generation}
        if wake_at is None:
            update = "REMOVE wake_at, wake_pk, wake_sk, fx"
        else:
            update = "SET wake_at = :w, wake_pk = :wp, wake_sk = :ws REMOVE fx"
            values |= {
                ":w": format_ts(wake_at),
                ":wp": keys.wake_shard(run.id),
                ":ws": keys.wake_sort_key(wake_at, run.id),
            }
        return self._update_if_unchanged(run, update, values)

    def due_run_ids(self, shard: int, now: datetime, limit: int) -> list[str]:
        """Runs of one timer shard whose wake-up is at or before `now`, earliest first."""
        items, _ = self.table.query(
            index=keys.BY_WAKE,
            key_condition="wake_pk = :p AND wake_sk <= :now",
            values={":p": f"W#{shard}", ":now": format_ts(now) + "#~"},
            limit=limit,
        )
        return [item["pk"].removeprefix("RUN#") for item in items]

    def slot_release_actions(self, run: Run) -> list[dict[str, Any]]:
        """Actions that give back the run's slots; part of the transition that ends its hold,
        whose own condition makes the release happen exactly once."""
        return [
            self.table.update_action(counter, "SLOTS", "ADD active :minus", values={":minus": -1})
            for counter in run.slots
        ]

    def active_slots(self, counter: str) -> int:
        item = self.table.get(counter, "SLOTS")
        return int(item.get("active", 0)) if item else 0

    def park(self, run: Run) -> bool:
        """Marks a run parked on its paused or disabled job (found again when the job resumes);
        the run says why it waits. No status change, no event. False when the run moved on."""
        self.table.batch_write([parked_item(run)])
        return self._update_if_unchanged(
            run,
            "SET waiting_reason = :why REMOVE fx",
            {":s": run.status.value, ":g": run.generation, ":why": WaitingReason.JOB_PAUSED.value},
        )

    def unparked(self, run: Run) -> bool:
        """Clears the parked run's waiting reason (its job was resumed)."""
        return self._update_if_unchanged(
            run, "REMOVE waiting_reason, fx", {":s": run.status.value, ":g": run.generation}
        )

    def _update_if_unchanged(self, run: Run, update: str, values: dict[str, Any]) -> bool:
        try:
            self.table.update_one(
                self.table.update_action(
                    keys.run_pk(run.id),
                    keys.STATE_SK,
                    update,
                    condition="#st = :s AND generation = :g",
                    values=values,
                    names={"#st": "status"},
                )
            )
        except ConditionFailed:
            return False
        return True
