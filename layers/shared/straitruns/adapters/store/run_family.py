"""Spawned children of a run: the count a run may spawn (a conditional atomic add on its `LIVE`
item) and the children a waiting parent awaits (`AWAIT#<generation>#<child id>` items of the
parent's collection; the parent's generation moves on when it is re-queued, so each wait has its own
set and nothing needs cleaning up)."""

from botocore.exceptions import ClientError

from straitruns.adapters.store import keys
from straitruns.adapters.store.table import DynamoTable


class RunFamilyStore:
    """Raises Unavailable when the store stays throttled."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def reserve_child(self, parent_id: str, maximum: int) -> bool:
        """Counts one more child of the parent; False (nothing counted) when it has `maximum`."""
        try:
            self.table.update_item(
                Key={"pk": {"S": keys.run_pk(parent_id)}, "sk": {"S": keys.LIVE_SK}},
                UpdateExpression="ADD children :one",
                ConditionExpression="attribute_not_exists(children) OR children < :max",
                ExpressionAttributeValues={":one": {"N": "1"}, ":max": {"N": str(maximum)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_child(self, parent_id: str) -> None:
        """Gives back a reservation whose child could not be created."""
        self.table.update_item(
            Key={"pk": {"S": keys.run_pk(parent_id)}, "sk": {"S": keys.LIVE_SK}},
            UpdateExpression="ADD children :minus",
            ExpressionAttributeValues={":minus": {"N": "-1"}},
        )

    def add_awaited(self, parent_id: str, generation: int, child_id: str) -> None:
        """Records that the parent, at `generation`, awaits `child_id`."""
        sk = keys.awaited_prefix(generation) + child_id
        self.table.batch_write(
            [{"pk": keys.run_pk(parent_id), "sk": sk, "type": "await", "child_id": child_id}]
        )

    def awaited(self, parent_id: str, generation: int) -> list[str]:
        """The children the parent awaits at `generation`, by id (at most the 1,000 it may spawn)."""
        items = self.table.query_all(
            key_condition="pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": keys.run_pk(parent_id), ":prefix": keys.awaited_prefix(generation)},
            limit=10_000,
        )
        return [str(item["child_id"]) for item in items]
