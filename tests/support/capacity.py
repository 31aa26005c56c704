"""Counting what a workload costs: DynamoDB requests and consumed capacity (every request asks for
`ReturnConsumedCapacity=INDEXES`, as DynamoDB Local reports it), and SQS requests, by operation.

`CapacityMeter.attach(client)` registers botocore event handlers on a client; the meter is shared
by every client it is attached to and is safe to use from many threads. Used by the cost tests
(tests/ddblocal/test_run_cost.py) and `make bench`."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# DynamoDB operations that report consumed capacity when asked.
_CAPACITY_OPERATIONS = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchGetItem",
    "BatchWriteItem",
    "Query",
    "Scan",
    "TransactWriteItems",
    "TransactGetItems",
}
_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


@dataclass
class CapacityMeter:
    requests: Counter[str] = field(default_factory=Counter)
    write_units: float = 0.0
    read_units: float = 0.0
    units_by_operation: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attach(self, client: Any) -> Any:
        """Counts every request `client` makes from now on; returns the client."""
        service = client.meta.service_model.service_name
        events = client.meta.events
        if service == "dynamodb":
            events.register("provide-client-params.dynamodb.*", _ask_for_capacity)
        events.register(f"after-call.{service}.*", self._after_call(service))
        return client

    def _after_call(self, service: str) -> Any:
        def record(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            name = f"{service}:{model.name}"
            consumed = parsed.get("ConsumedCapacity")
            entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
            units = sum(float(entry.get("CapacityUnits", 0.0)) for entry in entries)
            with self._lock:
                self.requests[name] += 1
                self.units_by_operation[name] += units
                if service == "dynamodb":
                    if model.name in _READS:
                        self.read_units += units
                    else:
                        self.write_units += units

        return record

    def dynamodb_requests(self) -> int:
        return sum(count for name, count in self.requests.items() if name.startswith("dynamodb:"))

    def sqs_requests(self, *operations: str) -> int:
        wanted = {f"sqs:{operation}" for operation in operations}
        return sum(
            count
            for name, count in self.requests.items()
            if name.startswith("sqs:") and (not wanted or name in wanted)
        )

    def snapshot(self) -> CapacityMeter:
        with self._lock:
            return CapacityMeter(
                Counter(self.requests), self.write_units, self.read_units, Counter(self.units_by_operation)
            )

    def since(self, before: CapacityMeter) -> CapacityMeter:
        """What was counted after `before` (a snapshot)."""
        now = self.snapshot()
        return CapacityMeter(
            now.requests - before.requests,
            now.write_units - before.write_units,
            now.read_units - before.read_units,
            now.units_by_operation - before.units_by_operation,
        )

    def describe(self) -> str:
        operations = ", ".join(f"{count} {name}" for name, count in sorted(self.requests.items()))
        return (
            f"{self.dynamodb_requests()} DynamoDB requests, {self.write_units:g} WCU, "
            f"{self.read_units:g} RCU; {operations}"
        )


def _ask_for_capacity(params: dict[str, Any], model: Any, **_: Any) -> None:
    if model.name in _CAPACITY_OPERATIONS:
        params.setdefault("ReturnConsumedCapacity", "INDEXES")
