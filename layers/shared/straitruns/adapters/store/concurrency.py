"""Concurrency queues in the store (docs/engine.md#concurrency): a run that needs a slot waits as an
item of its queue's partition (`CQ#<job>[#<key hash>]`), sorted by priority then creation, and a
slot is reserved for it in one transaction that takes the slot (`SLOTS#...` counter under
`active < max`), removes it from the queue (or moves it to the next queue it needs) and records the
slot on its state item, while the job is neither paused nor disabled."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from straitruns.adapters.store import keys
from straitruns.adapters.store.table import ConditionFailed, DynamoTable, Item
from straitruns.domain.models import Run


class Reservation(StrEnum):
    RESERVED = "reserved"
    FULL = "full"  # the counter is at its maximum
    GONE = "gone"  # the run is no longer in this queue (another drain took it)
    JOB_HELD = "job_held"  # the job is paused, disabled or deleted
    MOVED = "moved"  # the run changed (cancelled, paused, restarted...): it leaves the queue


@dataclass(frozen=True)
class Stage:
    """One slot a run needs: the queue it waits in, the counter it takes a slot of, and the
    counter's maximum (the job's limit when the run joined the queue)."""

    queue: str
    counter: str
    maximum: int


@dataclass(frozen=True)
class Waiting:
    """One run of a queue, as its entry holds it: enough to reserve its slot and send it on
    without reading the run (the generation it waits at, the stage after this one)."""

    queue: str
    position: str
    run_id: str
    job_id: str
    generation: int
    stage: Stage
    then: Stage | None


def queue_entry(run: Run, stage: Stage, then: Stage | None, position: str | None = None) -> Item:
    """The run's entry in `stage.queue`, followed by `then` when it needs one more slot."""
    item: Item = {
        "pk": stage.queue,
        "sk": position or keys.queue_position(run.priority, keys.created_sort_key(run.created_at, run.id)),
        "run_id": run.id,
        "job_id": run.job_id,
        "generation": run.generation,
        "counter": stage.counter,
        "max": stage.maximum,
    }
    if then is not None:
        item |= {"then_queue": then.queue, "then_counter": then.counter, "then_max": then.maximum}
    return item


def _waiting(item: Item) -> Waiting:
    then = None
    if item.get("then_queue"):
        then = Stage(str(item["then_queue"]), str(item["then_counter"]), int(item["then_max"]))
    return Waiting(
        queue=str(item["pk"]),
        position=str(item["sk"]),
        run_id=str(item["run_id"]),
        job_id=str(item["job_id"]),
        generation=int(item["generation"]),
        stage=Stage(str(item["pk"]), str(item["counter"]), int(item["max"])),
        then=then,
    )


class ConcurrencyStore:
    """Raises Unavailable when the store stays throttled."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add(self, entry: Item) -> None:
        """Writes a queue entry (made by `queue_entry`)."""
        self.table.batch_write([entry])

    def head(self, queue: str, limit: int) -> list[Waiting]:
        """The first `limit` runs of the queue, in queue order."""
        items, _ = self.table.query(
            index=None, key_condition="pk = :q", values={":q": queue}, limit=max(1, limit)
        )
        return [_waiting(item) for item in items]

    def remove(self, queue: str, position: str) -> None:
        self.table.batch_write(deletes=[(queue, position)])

    def counter(self, counter: str) -> int:
        item = self.table.get(counter, "SLOTS")
        return int(item.get("active", 0)) if item else 0

    def reserve(self, waiting: Waiting) -> Reservation:
        """Takes a slot of the entry's counter for its run: the run leaves the queue, enters the
        next one when it needs another slot, and its state records the slot, in one transaction,
        while the job is neither paused nor disabled and the run still waits at that generation."""
        stage = waiting.stage
        actions: list[dict[str, Any]] = [
            self.table.update_action(
                stage.counter,
                "SLOTS",
                "ADD active :one",
                condition="attribute_not_exists(active) OR active < :max",
                values={":one": 1, ":max": stage.maximum},
            ),
            self.table.delete_action(waiting.queue, waiting.position, condition="attribute_exists(pk)"),
        ]
        if waiting.then is not None:
            follow = {
                "pk": waiting.then.queue,
                "sk": waiting.position,
                "run_id": waiting.run_id,
                "job_id": waiting.job_id,
                "generation": waiting.generation,
                "counter": waiting.then.counter,
                "max": waiting.then.maximum,
            }
            actions.append(self.table.put_action(follow))
        actions.append(
            {
                "ConditionCheck": {
                    "TableName": self.table.name,
                    "Key": {"pk": {"S": f"JOB#{waiting.job_id}"}, "sk": {"S": "JOB"}},
                    "ConditionExpression": "paused = :no AND enabled = :yes",
                    "ExpressionAttributeValues": self.table.serialize({":no": False, ":yes": True}),
                }
            }
        )
        actions.append(self._state_update(waiting))
        try:
            self.table.transact(actions)
        except ConditionFailed as failure:
            return _refusal(failure, moves=waiting.then is not None)
        return Reservation.RESERVED

    def _state_update(self, waiting: Waiting) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":q": waiting.queue,
            ":g": waiting.generation,
            ":queued": "queued",
            ":none": [],
            ":slot": [waiting.stage.counter],
        }
        update = "SET slots = list_append(if_not_exists(slots, :none), :slot)"
        if waiting.then is not None:
            update += ", slot_queue = :next REMOVE fx"
            values[":next"] = waiting.then.queue
        else:
            update += " REMOVE slot_queue, waiting_reason, fx"
        return self.table.update_action(
            keys.run_pk(waiting.run_id),
            keys.STATE_SK,
            update,
            condition="#st = :queued AND generation = :g AND slot_queue = :q",
            values=values,
            names={"#st": "status"},
        )


def _refusal(failure: ConditionFailed, *, moves: bool) -> Reservation:
    if failure.failed_at(0):
        return Reservation.FULL
    if failure.failed_at(1):
        return Reservation.GONE
    if failure.failed_at(3 if moves else 2):
        return Reservation.JOB_HELD
    return Reservation.MOVED
