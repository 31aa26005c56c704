"""Reading a run's events: `EVT#<sequence>` items (SDK events, engine events written outside a
status change, and status-change events moved out of the state item) together with the events its
state item still holds (docs/data-model.md). Every read is strongly consistent; a number taken but
not yet written is simply absent here (services/event_log.py waits for it)."""

from collections.abc import Iterator
from typing import Any

from straitruns.adapters.store import keys
from straitruns.adapters.store.run_codec import event_from_item, inline_events
from straitruns.adapters.store.table import DynamoTable, Item
from straitruns.domain.models import Event

# The highest sequence a sort key can hold (12 digits).
LAST_SEQUENCE = 10**12 - 1
_PAGE = 100


class EventReads:
    """Raises Unavailable when the store stays throttled."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def state(self, run_id: str) -> Item | None:
        return self.table.get(keys.run_pk(run_id), keys.STATE_SK)

    def after(self, run_id: str, after: int, limit: int) -> tuple[list[Event], bool]:
        """Up to `limit` events numbered above `after`, in sequence order, and whether more may
        follow. An idle run costs one small read (its state item): no newer number, no query."""
        state = self.state(run_id)
        inline = {event.sequence: event for event in inline_events(state) if event.sequence > after}
        if state is not None:
            last = int(state.get("seq", 0))
            if last <= after:
                return [], False
            wanted = range(after + 1, min(last, after + limit) + 1)
            if all(number in inline for number in wanted):
                return [inline[number] for number in wanted], last > after + limit
        items, start = self._query(run_id, after, limit)
        stored = [event_from_item(item) for item in items]
        merged = sorted({**inline, **{event.sequence: event for event in stored}}.values(), key=_sequence)
        if start is not None and stored:
            # Items after the last one read may come before the inline events: stop there.
            merged = [event for event in merged if event.sequence <= stored[-1].sequence]
            return merged[:limit], True
        return merged[:limit], len(merged) > limit

    def iterate(self, run_id: str, after: int = 0, page: int = _PAGE) -> Iterator[Event]:
        """Every event numbered above `after`, in sequence order, read `page` at a time."""
        pending = sorted(
            (event for event in inline_events(self.state(run_id)) if event.sequence > after), key=_sequence
        )
        start: dict[str, Any] | None = None
        seen = after
        while True:
            items, start = self._query(run_id, seen, page, start)
            for item in items:
                event = event_from_item(item)
                while pending and pending[0].sequence < event.sequence:
                    yield pending.pop(0)
                if pending and pending[0].sequence == event.sequence:
                    pending.pop(0)
                yield event
            if start is None:
                yield from pending
                return

    def between(self, run_id: str, first: int, last: int) -> list[Event]:
        """The stored events numbered `first`..`last` (inclusive), in order."""
        found: list[Event] = []
        for event in self.iterate(run_id, first - 1):
            if event.sequence > last:
                break
            found.append(event)
        return found

    def _query(
        self, run_id: str, after: int, limit: int, start: dict[str, Any] | None = None
    ) -> tuple[list[Item], dict[str, Any] | None]:
        return self.table.query(
            index=None,
            key_condition="pk = :pk AND sk BETWEEN :lo AND :hi",
            values={
                ":pk": keys.run_pk(run_id),
                ":lo": keys.event_sk(after + 1),
                ":hi": keys.event_sk(LAST_SEQUENCE),
            },
            limit=limit,
            start_key=start,
        )


def _sequence(event: Event) -> int:
    return event.sequence
