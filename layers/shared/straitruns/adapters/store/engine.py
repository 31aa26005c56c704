"""Engine operations on runs: events numbered by atomic add, heartbeats, wake-ups in the timer
index, concurrency slots, parking, and the idempotency hold of a finished run."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from straitruns.adapters.store import keys
from straitruns.adapters.store.run_codec import parked_item, run_item, unchanged_since
from straitruns.adapters.store.runs import event_item
from straitruns.adapters.store.table import ConditionFailed, DynamoTable
from straitruns.domain.models import Event, Run
from straitruns.domain.timefmt import format_ts


def slot_counter(job_id: str, key_hash: str | None = None) -> str:
    """The counter item of a job's concurrency (or of one concurrency key of the job)."""
    return f"SLOTS#{job_id}" + (f"#{key_hash}" if key_hash else "")


class EngineStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def append_event(self, run_id: str, make_event: Callable[[int], Event]) -> Event:
        """Appends an event under the next sequence, taken with an atomic add (never retried, so a
        burst of writers on one run costs one write each)."""
        response = self.table.update_item(
            Key={"pk": {"S": keys.run_pk(run_id)}, "sk": {"S": keys.LIVE_SK}},
            UpdateExpression="ADD seq :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        event = make_event(int(response["Attributes"]["seq"]["N"]))
        self.table.batch_write([event_item(event)])
        return event

    def save(self, old: Run, new: Run) -> bool:
        """Writes `new` over `old` without a status change, if the run is still at `old`'s status,
        generation and slots; False when it moved on."""
        item, blobs = run_item(new)
        condition, values = unchanged_since(old)
        put = self.table.put_action(item, condition=condition, values=values)
        put["Put"]["ExpressionAttributeNames"] = {"#st": "status"}
        try:
            self.table.transact([put, *(self.table.put_action(blob) for blob in blobs)])
        except ConditionFailed:
            return False
        return True

    def heartbeat(self, run_id: str, at: datetime) -> None:
        self.table.update_item(
            Key={"pk": {"S": keys.run_pk(run_id)}, "sk": {"S": keys.LIVE_SK}},
            UpdateExpression="SET heartbeat_at = :at",
            ExpressionAttributeValues={":at": {"S": format_ts(at)}},
        )

    def set_wake(self, run: Run, wake_at: datetime | None) -> bool:
        """Moves the run's wake-up if it is still at `run`'s status and generation."""
        values: dict[str, Any] = {":s": run.status.value, ":g": run.generation}
        if wake_at is None:
            update = "REMOVE wake_at, wake_pk, wake_sk"
        else:
            update = "SET wake_at = :w, wake_pk = :wp, wake_sk = :ws"
            values |= {
                ":w": format_ts(wake_at),
                ":wp": keys.wake_shard(run.id),
                ":ws": keys.wake_sort_key(wake_at, run.id),
            }
        try:
            self.table.transact(
                [
                    self.table.update_action(
                        keys.run_pk(run.id),
                        keys.RUN_SK,
                        update,
                        condition="#st = :s AND generation = :g",
                        values=values,
                        names={"#st": "status"},
                    )
                ]
            )
        except ConditionFailed:
            return False
        return True

    def due_run_ids(self, shard: int, now: datetime, limit: int) -> list[str]:
        """Runs of one timer shard whose wake-up is at or before `now`, earliest first."""
        items, _ = self.table.query(
            index=keys.BY_WAKE,
            key_condition="wake_pk = :p AND wake_sk <= :now",
            values={":p": f"W#{shard}", ":now": format_ts(now) + "#~"},
            limit=limit,
        )
        return [item["pk"].removeprefix("RUN#") for item in items]

    def acquire_slots(self, run: Run, counters: list[tuple[str, int]]) -> bool:
        """Takes one slot in each counter (all or none) for a dequeued run; False when a counter is
        at its maximum or the run moved on."""
        actions = [
            self.table.update_action(
                counter,
                "SLOTS",
                "ADD active :one",
                condition="attribute_not_exists(active) OR active < :max",
                values={":one": 1, ":max": maximum},
            )
            for counter, maximum in counters
        ]
        actions.append(
            self.table.update_action(
                keys.run_pk(run.id),
                keys.RUN_SK,
                "SET slots = :slots",
                condition="#st = :s AND generation = :g",
                values={
                    ":slots": [counter for counter, _ in counters],
                    ":s": run.status.value,
                    ":g": run.generation,
                },
                names={"#st": "status"},
            )
        )
        try:
            self.table.transact(actions)
        except ConditionFailed:
            return False
        return True

    def slot_release_actions(self, run: Run) -> list[dict[str, Any]]:
        """Actions that give back the run's slots; part of the transition that leaves
        dequeued/executing, whose own condition makes the release happen exactly once."""
        return [
            self.table.update_action(counter, "SLOTS", "ADD active :minus", values={":minus": -1})
            for counter in run.slots
        ]

    def active_slots(self, counter: str) -> int:
        item = self.table.get(counter, "SLOTS")
        return int(item.get("active", 0)) if item else 0

    def park(self, run: Run) -> None:
        """Marks a run parked on its paused or disabled job (found again when the job resumes)."""
        self.table.batch_write([parked_item(run)])
