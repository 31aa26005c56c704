"""Reads behind the live streams (spec 7): a run's events and stream chunks after a sequence, each
one Query by sort-key range on the run's item collection, and a consistent snapshot of where the
run stands (its status and the last event and chunk numbers taken).

Events are `EVT#<sequence>` items and the events the run's state item still holds (read together by
events.py); chunks are
`CHUNK#<sequence>` items written by the in-run plane (`stream_id`, `chunk`, `done`, `sequence`,
`created_at`, `expires_ttl`), numbered by an atomic add on the LIVE item's `chunk_seq`. Every read
is strongly consistent: a stream must see a number as soon as its writer has returned.
"""

from dataclasses import dataclass

from straitruns.adapters.store import keys
from straitruns.adapters.store.events import EventReads
from straitruns.adapters.store.table import DynamoTable, Item
from straitruns.domain.models import Event, StreamChunk
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import parse_ts

# The highest sequence a sort key can hold (12 digits).
_LAST_SEQUENCE = 10**12 - 1


@dataclass(frozen=True)
class RunSnapshot:
    """A run's project and status with the LIVE counters, read as one snapshot: `status` is the
    status after the event numbered `event_sequence` and before any later one."""

    project_id: str
    status: RunStatus
    event_sequence: int
    chunk_sequence: int


@dataclass(frozen=True)
class LiveCounters:
    """The last event and chunk numbers taken (a taken number may still be being written)."""

    event_sequence: int
    chunk_sequence: int


@dataclass(frozen=True)
class StoredChunk:
    """One stored chunk number: the chunk, or None when it has expired (its TTL has passed but
    DynamoDB has not deleted it yet; reads treat it as gone, while its number still counts)."""

    sequence: int
    chunk: StreamChunk | None


@dataclass(frozen=True)
class Page[T]:
    """Items of one Query, in sequence order; `more` when the Query stopped before the end."""

    items: list[T]
    more: bool


class StreamReads:
    """Store reads of the streams. Raises Unavailable when the store stays throttled."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table
        self.events = EventReads(table)

    def snapshot(self, run_id: str) -> RunSnapshot | None:
        """The run's project, status and counters as one consistent read, or None when the run
        does not exist."""
        pk = keys.run_pk(run_id)
        state, live = self.table.transact_get(
            [(pk, keys.STATE_SK, ("project_id", "status", "seq")), (pk, keys.LIVE_SK, ("chunk_seq",))]
        )
        if state is None:
            return None
        return RunSnapshot(
            project_id=str(state["project_id"]),
            status=RunStatus(state["status"]),
            event_sequence=int(state.get("seq", 0)),
            chunk_sequence=int((live or {}).get("chunk_seq", 0)),
        )

    def counters(self, run_id: str) -> LiveCounters:
        """The last event and chunk numbers taken (one consistent read of two small items)."""
        pk = keys.run_pk(run_id)
        state, live = self.table.transact_get(
            [(pk, keys.STATE_SK, ("seq",)), (pk, keys.LIVE_SK, ("chunk_seq",))]
        )
        return LiveCounters(int((state or {}).get("seq", 0)), int((live or {}).get("chunk_seq", 0)))

    def events_after(self, run_id: str, after: int, limit: int) -> Page[Event]:
        """Up to `limit` events numbered above `after`, in sequence order."""
        events, more = self.events.after(run_id, after, limit)
        return Page(events, more)

    def chunks_after(self, run_id: str, after: int, limit: int, now_epoch: int) -> Page[StoredChunk]:
        """Up to `limit` chunk numbers above `after` of every stream of the run, in sequence order
        (a stream filter is applied by the caller: the numbers count across streams). A chunk whose
        `expires_ttl` is at or before `now_epoch` comes back as expired."""
        items, more = self._range(run_id, keys.chunk_sk(after + 1), keys.chunk_sk(_LAST_SEQUENCE), limit)
        return Page([_stored_chunk(item, now_epoch) for item in items], more)

    def _range(self, run_id: str, lowest: str, highest: str, limit: int) -> tuple[list[Item], bool]:
        items, last_key = self.table.query(
            index=None,
            key_condition="pk = :pk AND sk BETWEEN :lo AND :hi",
            values={":pk": keys.run_pk(run_id), ":lo": lowest, ":hi": highest},
            limit=limit,
        )
        return items, last_key is not None


def _stored_chunk(item: Item, now_epoch: int) -> StoredChunk:
    sequence = int(item["sequence"])
    expires = item.get(keys.TTL_ATTRIBUTE)
    if expires is not None and int(expires) <= now_epoch:
        return StoredChunk(sequence, None)
    chunk = StreamChunk(
        run_id=item["pk"].removeprefix("RUN#"),
        stream_id=str(item["stream_id"]),
        sequence=sequence,
        chunk=str(item.get("chunk", "")),
        done=bool(item.get("done", False)),
        created_at=parse_ts(item["created_at"]),
    )
    return StoredChunk(sequence, chunk)
