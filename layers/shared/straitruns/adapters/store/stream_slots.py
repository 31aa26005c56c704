"""Counters of open streams (spec 7: at most 100 per project and STRAIT_SSE_MAX_CONNECTIONS in
all), kept in the table so that every stream function instance counts against the same caps.

A counter lives in time windows: item `SSESLOTS#<scope>` / `W#<window>` counts the streams opened in
that window that are still open. A window is longer than the longest connection, so the streams
open at any moment were opened in the current window or the one before. Taking a slot reads the
previous window's count (which only falls: nothing opens in a past window) and adds one to the
current window under the condition `active < limit - previous`, in one transaction over every
scope, so two concurrent opens can never both take the last slot. A slot that is never given back
(a crashed instance) stops counting two windows later.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from straitruns.adapters.store import keys
from straitruns.adapters.store.table import ConditionFailed, DynamoTable

TOTAL_SCOPE = "*"


@dataclass(frozen=True)
class SlotLimit:
    """At most `limit` open streams in `scope` (a project id, or TOTAL_SCOPE for all of them)."""

    scope: str
    limit: int


def _counter(scope: str) -> str:
    return f"SSESLOTS#{scope}"


def _window(window: int) -> str:
    return f"W#{window}"


class StreamSlotStore:
    """Takes and gives back stream slots. Raises Unavailable when the store stays throttled."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def take(self, limits: Sequence[SlotLimit], window: int, expires_epoch: int) -> bool:
        """Takes one slot in every scope of `limits` in `window` (all or none); False when a scope
        is full. `expires_epoch` lets the table's TTL reclaim the counter items."""
        previous = self.table.batch_get([(_counter(limit.scope), _window(window - 1)) for limit in limits])
        actions = []
        for limit in limits:
            earlier = previous.get((_counter(limit.scope), _window(window - 1)), {})
            room = limit.limit - max(0, int(earlier.get("active", 0)))
            if room <= 0:
                return False
            actions.append(
                self.table.update_action(
                    _counter(limit.scope),
                    _window(window),
                    f"ADD active :one SET {keys.TTL_ATTRIBUTE} = :ttl",
                    condition="attribute_not_exists(active) OR active < :room",
                    values={":one": 1, ":room": room, ":ttl": expires_epoch},
                )
            )
        try:
            self.table.transact(actions)
        except ConditionFailed:
            return False
        return True

    def give_back(self, scopes: Sequence[str], window: int) -> None:
        """Gives back the slots taken in `window` in every scope (once per take)."""
        self.table.transact(
            [
                self.table.update_action(
                    _counter(scope), _window(window), "ADD active :minus", values={":minus": -1}
                )
                for scope in scopes
            ]
        )

    def open_count(self, scope: str, window: int) -> int:
        """Streams counted in `scope` now (opened in `window` or the one before, still open)."""
        found = self.table.batch_get([(_counter(scope), _window(w)) for w in (window - 1, window)])
        return sum(max(0, int(item.get("active", 0))) for item in found.values())
