"""What a run records through the in-run plane, in its item collection (`pk = RUN#<id>`):
checkpoints, usage, tool calls, outputs, state and stream chunks; and raw reads of its events.

| `sk` | item |
|---|---|
| `CKPT#<sequence:012d>` | checkpoint; the sequence is taken with an atomic add on `LIVE.ckpt_seq` |
| `USAGE#<id>` | usage record; written with an atomic add of the run's totals on `LIVE` |
| `TOOL#<id>` | tool call |
| `OUT#<output_key>` | output, one per key; an upsert keeps the first write's `id` and `created_at` |
| `OUTAT#<created_at>#<id>` | the output's place in `created_at` order (holds its key) |
| `STATE#<key>` | state entry |
| `CHUNK#<sequence:012d>` | stream chunk (`LIVE.chunk_seq`), expiring after 24 h (`expires_ttl`) |

Sequences are numbered like SDK events (ARCHITECTURE.md): an atomic add, never retried, then the
item is written; a reader may meet a number that is allocated but not written yet
(services/event_log.py waits for it). Every read here goes to the base table, strongly consistent.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from straitruns.adapters.store import keys
from straitruns.adapters.store.events import EventReads
from straitruns.adapters.store.table import ConditionFailed, DynamoTable, Item
from straitruns.domain.errors import Unavailable
from straitruns.domain.models import Checkpoint, Event, Output, StateEntry, StreamChunk, ToolCall, UsageRecord
from straitruns.domain.timefmt import format_ts, parse_ts

# Above every character a sort key suffix of this collection holds (digits, ULIDs, keys, times).
_HIGH = "~"
# Items asked of one Query (DynamoDB also stops a page at 1 MB); readers that know how many they
# want pass their own.
_PAGE = 100
_OUTPUTS_PER_READ = 100  # BatchGetItem takes 100 keys
_CONFLICT_RETRIES = 5
_UPSERT_RETRIES = 5
_USAGE_COUNTERS = ("prompt_tokens", "completion_tokens", "total_tokens", "cost_microusd")


class TelemetryStore:
    """Reads and writes a run's in-run records. Raises Unavailable when the store stays throttled."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table
        self.events = EventReads(table)

    # Sequences ----------------------------------------------------------------------------

    def _next(self, run_id: str, counter: str) -> int:
        """The next number of a LIVE counter, by atomic add. Only an add DynamoDB refused (a
        transaction on the LIVE item was in flight: nothing was added) is tried again."""
        response = self.table.update_item(
            Key={"pk": {"S": keys.run_pk(run_id)}, "sk": {"S": keys.LIVE_SK}},
            UpdateExpression="ADD #c :one",
            ExpressionAttributeNames={"#c": counter},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"][counter]["N"])

    def _range(self, run_id: str, prefix: str, after_sk: str | None, page: int = _PAGE) -> Iterator[Item]:
        """Items of the run whose sort key starts with `prefix` and comes strictly after `after_sk`,
        in sort-key order, read `page` at a time as they are consumed."""
        start: dict[str, Any] | None = None
        while True:
            items, start = self.table.query(
                index=None,
                key_condition="pk = :pk AND sk BETWEEN :lo AND :hi",
                values={":pk": keys.run_pk(run_id), ":lo": after_sk or prefix, ":hi": prefix + _HIGH},
                limit=page,
                start_key=start,
            )
            yield from (item for item in items if item["sk"] != after_sk)
            if start is None:
                return

    # Events (raw: services/event_log.py waits for numbers still being written) ----------------

    def iter_events(self, run_id: str, after_sequence: int = 0, page: int = _PAGE) -> Iterator[Event]:
        """The run's stored events after `after_sequence`, in sequence order (gaps not waited for)."""
        return self.events.iterate(run_id, after_sequence, page)

    def events_between(self, run_id: str, first: int, last: int) -> list[Event]:
        """The stored events numbered `first`..`last` (inclusive), in order."""
        return self.events.between(run_id, first, last)

    # Checkpoints --------------------------------------------------------------------------

    def append_checkpoint(self, run_id: str, make: Callable[[int], Checkpoint]) -> Checkpoint:
        """Stores `make(sequence)` under the run's next checkpoint sequence (1, 2, 3...)."""
        checkpoint = make(self._next(run_id, "ckpt_seq"))
        self.table.batch_write([_checkpoint_item(checkpoint)])
        return checkpoint

    def get_checkpoint(self, run_id: str, sequence: int) -> Checkpoint | None:
        """The run's checkpoint `sequence`, or None."""
        item = self.table.get(keys.run_pk(run_id), keys.checkpoint_sk(sequence))
        return _checkpoint(item) if item else None

    def latest_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The run's checkpoint with the highest sequence, or None when it has none."""
        items, _ = self.table.query(
            index=None,
            key_condition="pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": keys.run_pk(run_id), ":prefix": keys.CHECKPOINT_SK_PREFIX},
            limit=1,
            ascending=False,
        )
        return _checkpoint(items[0]) if items else None

    def checkpoints(self, run_id: str, limit: int) -> list[Checkpoint]:
        """The run's first `limit` checkpoints, by sequence."""
        return list(islice(self.iter_checkpoints(run_id), limit))

    def iter_checkpoints(
        self, run_id: str, after_sequence: int = 0, page: int = _PAGE
    ) -> Iterator[Checkpoint]:
        """The run's checkpoints after `after_sequence`, by sequence (read as consumed)."""
        after = keys.checkpoint_sk(after_sequence) if after_sequence > 0 else None
        return (_checkpoint(item) for item in self._range(run_id, keys.CHECKPOINT_SK_PREFIX, after, page))

    # Usage --------------------------------------------------------------------------------

    def add_usage(self, record: UsageRecord) -> None:
        """Stores the record and adds it to the run's usage totals (LIVE), in one transaction."""
        pk = keys.run_pk(record.run_id)
        item = {
            "pk": pk,
            "sk": keys.usage_sk(record.id),
            "type": "usage",
            **record.model_dump(exclude={"run_id", "created_at"}),
            "created_at": format_ts(record.created_at),
        }
        add = ", ".join(f"{name} :{name}" for name in _USAGE_COUNTERS)
        values = {f":{name}": getattr(record, name) for name in _USAGE_COUNTERS}
        self.table.transact(
            [
                self.table.put_action(item, condition="attribute_not_exists(pk)"),
                self.table.update_action(pk, keys.LIVE_SK, f"ADD {add}", values=values),
            ]
        )

    def iter_usage(
        self, run_id: str, after_id: str | None = None, page: int = _PAGE
    ) -> Iterator[UsageRecord]:
        """The run's usage records after `after_id`, by id (ULIDs: creation time, then random)."""
        after = keys.usage_sk(after_id) if after_id else None
        for item in self._range(run_id, keys.USAGE_SK_PREFIX, after, page):
            yield UsageRecord(
                run_id=run_id,
                created_at=parse_ts(item["created_at"]),
                **{name: item[name] for name in ("id", "provider", "model", *_USAGE_COUNTERS)},
            )

    # Tool calls ---------------------------------------------------------------------------

    def add_tool_call(self, call: ToolCall) -> None:
        item = {
            "pk": keys.run_pk(call.run_id),
            "sk": keys.tool_call_sk(call.id),
            "type": "tool_call",
            **call.model_dump(exclude={"run_id", "created_at"}),
            "created_at": format_ts(call.created_at),
        }
        self.table.batch_write([item])

    def iter_tool_calls(
        self, run_id: str, after_id: str | None = None, page: int = _PAGE
    ) -> Iterator[ToolCall]:
        """The run's tool calls after `after_id`, by id."""
        after = keys.tool_call_sk(after_id) if after_id else None
        for item in self._range(run_id, keys.TOOL_CALL_SK_PREFIX, after, page):
            yield ToolCall(
                id=item["id"],
                run_id=run_id,
                tool_name=item["tool_name"],
                input=item.get("input"),
                output=item.get("output"),
                duration_ms=item.get("duration_ms"),
                status=item.get("status"),
                created_at=parse_ts(item["created_at"]),
            )

    # Outputs ------------------------------------------------------------------------------

    def upsert_output(self, output: Output) -> Output:
        """Stores the output of its key. The first write of a key gives the output its `id` and
        `created_at` (and its place in the list); later writes replace `schema` and `value` and keep
        them. Returns the output as stored. Raises Unavailable when concurrent writes of the key
        keep winning."""
        pk = keys.run_pk(output.run_id)
        for _ in range(_UPSERT_RETRIES):
            current = self.table.get(pk, keys.output_sk(output.output_key))
            if current is None:
                position = keys.created_sort_key(output.created_at, output.id)
                pointer = {"pk": pk, "sk": keys.output_order_sk(position), "output_key": output.output_key}
                actions = [
                    self.table.put_action(_output_item(output), condition="attribute_not_exists(pk)"),
                    self.table.put_action(pointer),
                ]
                stored = output
            else:
                stored = output.model_copy(
                    update={"id": current["id"], "created_at": parse_ts(current["created_at"])}
                )
                put = self.table.put_action(
                    _output_item(stored), condition="#id = :id", values={":id": stored.id}
                )
                put["Put"]["ExpressionAttributeNames"] = {"#id": "id"}
                actions = [put]
            try:
                self.table.transact(actions)
            except ConditionFailed:
                continue  # another write of this key came first: read it again
            return stored
        raise Unavailable("the output is being written concurrently; retry shortly")

    def iter_outputs(
        self, run_id: str, after_position: str | None = None, page: int = _PAGE
    ) -> Iterator[tuple[str, Output]]:
        """The run's outputs by `created_at` (then id) after `after_position` (`created_at#id`), with
        their positions. Read a page of positions at a time, then those outputs."""
        after = keys.output_order_sk(after_position) if after_position else None
        pointers = self._range(run_id, keys.OUTPUT_ORDER_SK_PREFIX, after, page)
        pk = keys.run_pk(run_id)
        while batch := list(islice(pointers, min(page, _OUTPUTS_PER_READ))):
            found = self.table.batch_get([(pk, keys.output_sk(pointer["output_key"])) for pointer in batch])
            for pointer in batch:
                item = found.get((pk, keys.output_sk(pointer["output_key"])))
                position = pointer["sk"].removeprefix(keys.OUTPUT_ORDER_SK_PREFIX)
                # A pointer whose output is missing (its creation failed half-way) is skipped.
                if item is not None and position.endswith(f"#{item['id']}"):
                    yield position, _output(item)

    # State --------------------------------------------------------------------------------

    def put_state(self, entry: StateEntry) -> None:
        item = {
            "pk": keys.run_pk(entry.run_id),
            "sk": keys.state_sk(entry.key),
            "type": "state",
            "key": entry.key,
            "value": entry.value,
            "updated_at": format_ts(entry.updated_at),
        }
        self.table.batch_write([item])

    def get_state(self, run_id: str, key: str) -> StateEntry | None:
        item = self.table.get(keys.run_pk(run_id), keys.state_sk(key))
        return _state(run_id, item) if item else None

    def delete_state(self, run_id: str, key: str) -> None:
        """Removes the entry (nothing happens when there is none)."""
        self.table.batch_write(deletes=[(keys.run_pk(run_id), keys.state_sk(key))])

    def iter_state(
        self, run_id: str, after_key: str | None = None, page: int = _PAGE
    ) -> Iterator[StateEntry]:
        """The run's state entries after `after_key`, ordered by key."""
        after = keys.state_sk(after_key) if after_key else None
        return (_state(run_id, item) for item in self._range(run_id, keys.STATE_SK_PREFIX, after, page))

    # Stream chunks ------------------------------------------------------------------------

    def append_chunk(
        self, run_id: str, make: Callable[[int], StreamChunk], expires_at: datetime
    ) -> StreamChunk:
        """Stores `make(sequence)` under the run's next chunk sequence (counted across its streams);
        the chunk expires at `expires_at`."""
        chunk = make(self._next(run_id, "chunk_seq"))
        item = {
            "pk": keys.run_pk(run_id),
            "sk": keys.chunk_sk(chunk.sequence),
            "type": "chunk",
            "stream_id": chunk.stream_id,
            "chunk": chunk.chunk,
            "done": chunk.done,
            "sequence": chunk.sequence,
            "created_at": format_ts(chunk.created_at),
            keys.TTL_ATTRIBUTE: int(expires_at.timestamp()),
        }
        self.table.batch_write([item])
        return chunk

    def iter_chunks(
        self, run_id: str, after_sequence: int = 0, now: datetime | None = None, page: int = _PAGE
    ) -> Iterator[StreamChunk]:
        """The run's unexpired chunks after `after_sequence`, in sequence order, every stream."""
        moment = (now or datetime.now(UTC)).timestamp()
        after = keys.chunk_sk(after_sequence) if after_sequence > 0 else None
        for item in self._range(run_id, keys.CHUNK_SK_PREFIX, after, page):
            if int(item.get(keys.TTL_ATTRIBUTE, 0)) > moment:
                yield _chunk(run_id, item)

    def chunks_after(
        self, run_id: str, after_sequence: int, stream_id: str | None, limit: int, now: datetime | None = None
    ) -> list[StreamChunk]:
        """Up to `limit` unexpired chunks after `after_sequence` (of one stream when `stream_id` is
        given), in sequence order. Numbers still being written are not waited for (see
        services/event_log.py for the reader that waits)."""
        chunks = self.iter_chunks(run_id, after_sequence, now)
        wanted = (chunk for chunk in chunks if stream_id is None or chunk.stream_id == stream_id)
        return list(islice(wanted, limit))

    def chunks_between(
        self, run_id: str, first: int, last: int, now: datetime | None = None
    ) -> list[StreamChunk]:
        """The stored, unexpired chunks numbered `first`..`last` (inclusive)."""
        chunks = self.iter_chunks(run_id, first - 1, now)
        return [chunk for chunk in islice(chunks, last - first + 1) if chunk.sequence <= last]


def _checkpoint_item(checkpoint: Checkpoint) -> Item:
    return {
        "pk": keys.run_pk(checkpoint.run_id),
        "sk": keys.checkpoint_sk(checkpoint.sequence),
        "type": "checkpoint",
        "id": checkpoint.id,
        "sequence": checkpoint.sequence,
        "source": checkpoint.source,
        "state": checkpoint.state,
        "created_at": format_ts(checkpoint.created_at),
    }


def _checkpoint(item: Item) -> Checkpoint:
    return Checkpoint(
        id=item["id"],
        run_id=item["pk"].removeprefix("RUN#"),
        sequence=item["sequence"],
        source=item["source"],
        state=item["state"],
        created_at=parse_ts(item["created_at"]),
    )


def _output_item(output: Output) -> Item:
    return {
        "pk": keys.run_pk(output.run_id),
        "sk": keys.output_sk(output.output_key),
        "type": "output",
        "id": output.id,
        "output_key": output.output_key,
        "schema": output.schema_,
        "value": output.value,
        "created_at": format_ts(output.created_at),
    }


def _output(item: Item) -> Output:
    return Output(
        id=item["id"],
        run_id=item["pk"].removeprefix("RUN#"),
        output_key=item["output_key"],
        schema_=item.get("schema"),
        value=item["value"],
        created_at=parse_ts(item["created_at"]),
    )


def _state(run_id: str, item: Item) -> StateEntry:
    return StateEntry(
        run_id=run_id, key=item["key"], value=item["value"], updated_at=parse_ts(item["updated_at"])
    )


def _chunk(run_id: str, item: Item) -> StreamChunk:
    return StreamChunk(
        run_id=run_id,
        stream_id=item["stream_id"],
        sequence=item["sequence"],
        chunk=item.get("chunk", ""),
        done=bool(item.get("done", False)),
        created_at=parse_ts(item["created_at"]),
    )
