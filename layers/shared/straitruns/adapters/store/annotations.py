"""Annotations (spec 6: `annotate`): string pairs merged into a run's metadata.

They live in the run's `LIVE` item (`annotations`, JSON text, with a version for optimistic writes)
and are merged into `metadata` when the run is read (run_codec), so they survive every write of the
run item made from a copy read before them (the dispatcher records an attempt's outcome from the run
it read before calling the endpoint). The metadata filter index items follow them.
"""

from collections.abc import Callable
from typing import Any

import simplejson

from straitruns.adapters.store import keys
from straitruns.adapters.store.run_codec import index_item
from straitruns.adapters.store.table import ConditionFailed, DynamoTable, serialize
from straitruns.domain.errors import Unavailable
from straitruns.domain.models import Run
from straitruns.domain.run_filter import run_index_values

_RETRIES = 5

Merge = Callable[[dict[str, str]], dict[str, str]]


class AnnotationsRefused(Exception):
    """The run is no longer at the status and generation it was read at."""


class AnnotationStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def annotate(self, run: Run, merge: Merge) -> dict[str, str]:
        """Replaces the run's annotations with `merge(current annotations)` while the run is still at
        `run`'s status and generation, and keeps the metadata index items in step. Returns the run's
        metadata afterwards. `merge` may raise (a limit); it is called again if another annotate
        came first.

        Raises AnnotationsRefused when the run moved on, Unavailable when writers keep colliding.
        """
        pk = keys.run_pk(run.id)
        for _ in range(_RETRIES):
            live = self.table.get(pk, keys.LIVE_SK) or {}
            current: dict[str, str] = simplejson.loads(live.get("annotations") or "{}")
            version = int(live.get("annotations_version", 0))
            annotations = merge(current)
            before = {**run.metadata, **current}
            after = {**before, **annotations}
            old_values = run_index_values(run.model_copy(update={"metadata": before}))
            new_values = run_index_values(run.model_copy(update={"metadata": after}))
            if added := new_values - old_values:
                self.table.batch_write([index_item(run, value) for value in added])
            try:
                self.table.transact([self._still(run), self._write(pk, annotations, version)])
            except ConditionFailed as failure:
                if failure.failed_at(0):
                    raise AnnotationsRefused(run.id) from failure
                continue
            if removed := old_values - new_values:
                stale = [(pk, f"{keys.INDEX_SK_PREFIX}{value.kind}#{value.digest}") for value in removed]
                self.table.batch_write(deletes=stale)
            return after
        raise Unavailable("the run is being annotated concurrently; retry shortly")

    def _still(self, run: Run) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self.table.name,
                "Key": {"pk": {"S": keys.run_pk(run.id)}, "sk": {"S": keys.STATE_SK}},
                "ConditionExpression": "#st = :s AND generation = :g",
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": serialize({":s": run.status.value, ":g": run.generation}),
            }
        }

    def _write(self, pk: str, annotations: dict[str, str], version: int) -> dict[str, Any]:
        condition = "annotations_version = :v" if version else "attribute_not_exists(annotations_version)"
        values: dict[str, Any] = {
            ":a": simplejson.dumps(annotations, separators=(",", ":")),
            ":next": version + 1,
        }
        if version:
            values[":v"] = version
        return self.table.update_action(
            pk,
            keys.LIVE_SK,
            "SET annotations = :a, annotations_version = :next",
            condition=condition,
            values=values,
        )
