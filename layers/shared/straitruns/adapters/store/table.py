"""A thin wrapper over the low-level DynamoDB client: marshalling, batching limits, retries of
unprocessed items and transaction conflicts, and a count of the items read."""

import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from straitruns.domain.errors import Unavailable

Item = dict[str, Any]
Key = tuple[str, str]

_BATCH_GET_MAX = 100
_BATCH_WRITE_MAX = 25
_TRANSACTION_RETRIES = 8
_THROTTLING = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class ConditionFailed(Exception):
    """A conditional write was refused. `reasons` holds one code per transaction action
    (`None`, `ConditionalCheckFailed`, ...) and `items` the current item where DynamoDB returned it."""

    def __init__(self, reasons: list[str | None], items: list[Item | None]) -> None:
        super().__init__(f"condition failed: {reasons}")
        self.reasons = reasons
        self.items = items

    def failed_at(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


@dataclass
class ReadMeter:
    """Counts items read (query results and batch-get items) and calls made (from any thread)."""

    items_read: int = 0
    calls: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, operation: str, items: int) -> None:
        with self._lock:
            self.items_read += items
            self.calls += 1
            self.by_operation[operation] = self.by_operation.get(operation, 0) + items


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items() if value is not None}


def deserialize(raw: Mapping[str, Any]) -> Item:
    item = {name: _deserializer.deserialize(value) for name, value in raw.items()}
    for name, value in item.items():
        if isinstance(value, Decimal):
            item[name] = int(value) if value == value.to_integral_value() else value
    return item


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _unavailable(exc: ClientError) -> Unavailable:
    return Unavailable(f"the store is busy ({exc.response['Error']['Code']}); retry shortly")


def _is_throttle(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] in _THROTTLING


def _backoff(attempt: int) -> None:
    time.sleep(min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.0))


class DynamoTable:
    """One DynamoDB table. Raises Unavailable when DynamoDB stays throttled after retries."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.name = table_name
        self.meter = ReadMeter()

    def get(self, pk: str, sk: str) -> Item | None:
        """Strongly consistent read of one item."""
        try:
            response = self.client.get_item(TableName=self.name, Key=_key(pk, sk), ConsistentRead=True)
        except ClientError as exc:
            if _is_throttle(exc):
                raise _unavailable(exc) from exc
            raise
        raw = response.get("Item")
        self.meter.record("get", 1 if raw else 0)
        return deserialize(raw) if raw else None

    def batch_get(self, keys: Iterable[Key]) -> dict[Key, Item]:
        """Strongly consistent read of many items; missing ones are absent from the result."""
        unique = list(dict.fromkeys(keys))
        found: dict[Key, Item] = {}
        for start in range(0, len(unique), _BATCH_GET_MAX):
            pending: list[dict[str, Any]] = [
                _key(pk, sk) for pk, sk in unique[start : start + _BATCH_GET_MAX]
            ]
            attempt = 0
            while pending:
                request = {self.name: {"Keys": pending, "ConsistentRead": True}}
                try:
                    response = self.client.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    if not _is_throttle(exc) or attempt >= _TRANSACTION_RETRIES:
                        raise _unavailable(exc) if _is_throttle(exc) else exc from exc
                    attempt += 1
                    _backoff(attempt)
                    continue
                raws = response.get("Responses", {}).get(self.name, [])
                self.meter.record("batch_get", len(raws))
                for raw in raws:
                    item = deserialize(raw)
                    found[(item["pk"], item["sk"])] = item
                pending = response.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
                if pending:
                    attempt += 1
                    if attempt > _TRANSACTION_RETRIES:
                        raise Unavailable("the store is busy (unprocessed keys); retry shortly")
                    _backoff(attempt)
        return found

    def query(
        self,
        *,
        index: str | None,
        key_condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
        limit: int | None = None,
        ascending: bool = True,
        start_key: dict[str, Any] | None = None,
    ) -> tuple[list[Item], dict[str, Any] | None]:
        """One Query page: (items, LastEvaluatedKey or None). Base-table queries are consistent."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": serialize(values),
            "ScanIndexForward": ascending,
        }
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if index:
            request["IndexName"] = index
        else:
            request["ConsistentRead"] = True
        if limit:
            request["Limit"] = limit
        if start_key:
            request["ExclusiveStartKey"] = start_key
        try:
            response = self.client.query(**request)
        except ClientError as exc:
            if _is_throttle(exc):
                raise _unavailable(exc) from exc
            raise
        items = [deserialize(raw) for raw in response.get("Items", [])]
        self.meter.record("query", len(items))
        return items, response.get("LastEvaluatedKey")

    def query_all(self, *, key_condition: str, values: Mapping[str, Any], limit: int) -> list[Item]:
        """Every item of a base-table query, up to `limit` items."""
        items: list[Item] = []
        start: dict[str, Any] | None = None
        while len(items) < limit:
            page, start = self.query(
                index=None,
                key_condition=key_condition,
                values=values,
                limit=limit - len(items),
                start_key=start,
            )
            items.extend(page)
            if start is None:
                break
        return items

    def transact_get(self, gets: Sequence[tuple[str, str, Sequence[str]]]) -> list[Item | None]:
        """Reads items as one snapshot (TransactGetItems): each `(pk, sk, attributes)` returns only
        those attributes (all when empty), or None when the item is missing. A read that collides
        with a write transaction is retried; raises Unavailable when that or throttling persists."""
        requests: list[dict[str, Any]] = []
        for pk, sk, attributes in gets:
            get: dict[str, Any] = {"TableName": self.name, "Key": _key(pk, sk)}
            if attributes:
                get["ProjectionExpression"] = ", ".join(f"#a{n}" for n in range(len(attributes)))
                get["ExpressionAttributeNames"] = {f"#a{n}": name for n, name in enumerate(attributes)}
            requests.append({"Get": get})
        for attempt in range(_TRANSACTION_RETRIES + 1):
            try:
                response = self.client.transact_get_items(TransactItems=requests)
            except self.client.exceptions.TransactionCanceledException as exc:
                if attempt == _TRANSACTION_RETRIES:
                    raise Unavailable("the store is busy (transaction conflicts); retry shortly") from exc
            except ClientError as exc:
                if not _is_throttle(exc) or attempt == _TRANSACTION_RETRIES:
                    raise _unavailable(exc) if _is_throttle(exc) else exc from exc
            else:
                raws = [entry.get("Item") for entry in response.get("Responses", [])]
                self.meter.record("transact_get", sum(1 for raw in raws if raw))
                return [deserialize(raw) if raw else None for raw in raws]
            _backoff(attempt)
        raise Unavailable("the store is busy; retry shortly")  # not reached: the loop returns or raises

    def transact(self, actions: Sequence[dict[str, Any]]) -> None:
        """Runs a write transaction, retrying conflicts with other transactions.

        Raises ConditionFailed when a condition of this transaction is false, Unavailable when
        conflicts or throttling persist.
        """
        for attempt in range(_TRANSACTION_RETRIES + 1):
            try:
                self.client.transact_write_items(TransactItems=list(actions))
                return
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons", [])
                codes = [reason.get("Code") if reason.get("Code") != "None" else None for reason in reasons]
                if "ConditionalCheckFailed" in codes:
                    items = [deserialize(r["Item"]) if r.get("Item") else None for r in reasons]
                    raise ConditionFailed(codes, items) from exc
                if attempt == _TRANSACTION_RETRIES:
                    raise Unavailable("the store is busy (transaction conflicts); retry shortly") from exc
            except ClientError as exc:
                if not _is_throttle(exc) or attempt == _TRANSACTION_RETRIES:
                    raise _unavailable(exc) if _is_throttle(exc) else exc from exc
            _backoff(attempt)

    def update_item(self, **request: Any) -> dict[str, Any]:
        """One UpdateItem on this table. An update that collides with a transaction in flight
        (TransactionConflict) or is throttled did not happen, so it is retried (bounded); raises
        Unavailable when that persists."""
        for attempt in range(_TRANSACTION_RETRIES + 1):
            try:
                response: dict[str, Any] = self.client.update_item(TableName=self.name, **request)
                return response
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                retryable = code == "TransactionConflictException" or _is_throttle(exc)
                if not retryable or attempt == _TRANSACTION_RETRIES:
                    raise _unavailable(exc) if retryable else exc from exc
            _backoff(attempt)
        raise Unavailable("the store is busy; retry shortly")

    def update_one(self, action: Mapping[str, Any]) -> dict[str, Any]:
        """Runs one `update_action(...)` as a single UpdateItem (a conditional write of one item
        needs no transaction). Raises ConditionFailed (with the stored item when DynamoDB returns
        it), Unavailable when throttling or transaction conflicts persist."""
        request = {name: value for name, value in action["Update"].items() if name != "TableName"}
        try:
            return self.update_item(**request)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raw = exc.response.get("Item")
            raise ConditionFailed(["ConditionalCheckFailed"], [deserialize(raw) if raw else None]) from exc

    @staticmethod
    def serialize(values: Mapping[str, Any]) -> dict[str, Any]:
        return serialize(values)

    def batch_write(self, puts: Sequence[Item] = (), deletes: Sequence[Key] = ()) -> None:
        """Writes items 25 at a time, retrying unprocessed ones. Raises Unavailable if they persist."""
        requests: list[dict[str, Any]] = [{"PutRequest": {"Item": serialize(item)}} for item in puts]
        requests += [{"DeleteRequest": {"Key": _key(pk, sk)}} for pk, sk in deletes]
        for start in range(0, len(requests), _BATCH_WRITE_MAX):
            pending = requests[start : start + _BATCH_WRITE_MAX]
            attempt = 0
            while pending:
                try:
                    response = self.client.batch_write_item(RequestItems={self.name: pending})
                    pending = response.get("UnprocessedItems", {}).get(self.name, [])
                except ClientError as exc:
                    if not _is_throttle(exc):
                        raise
                if pending:
                    attempt += 1
                    if attempt > _TRANSACTION_RETRIES:
                        raise Unavailable("the store is busy (unprocessed writes); retry shortly")
                    _backoff(attempt)

    # Transaction action builders -------------------------------------------------------------

    def put_action(
        self, item: Item, condition: str | None = None, values: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        if condition:
            put["ConditionExpression"] = condition
            put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if values:
            put["ExpressionAttributeValues"] = serialize(values)
        return {"Put": put}

    def update_action(
        self,
        pk: str,
        sk: str,
        update: str,
        *,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        action: dict[str, Any] = {"TableName": self.name, "Key": _key(pk, sk), "UpdateExpression": update}
        if condition:
            action["ConditionExpression"] = condition
            action["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if values:
            action["ExpressionAttributeValues"] = serialize(values)
        if names:
            action["ExpressionAttributeNames"] = dict(names)
        return {"Update": action}

    def delete_action(
        self, pk: str, sk: str, condition: str | None = None, values: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        action: dict[str, Any] = {"TableName": self.name, "Key": _key(pk, sk)}
        if condition:
            action["ConditionExpression"] = condition
        if values:
            action["ExpressionAttributeValues"] = serialize(values)
        return {"Delete": action}
