"""Runs in the store: creation (with its event, idempotency guard, index items), reads, and the
index-served lists of spec 5 item 1."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from straitruns.adapters.store import keys
from straitruns.adapters.store.run_codec import (
    blob_keys,
    index_item,
    live_item,
    parked_item,
    run_from_items,
    run_item,
    unchanged_since,
)
from straitruns.adapters.store.table import ConditionFailed, DynamoTable, Item
from straitruns.domain import run_filter as rf
from straitruns.domain.models import Event, Run
from straitruns.domain.run_filter import IndexValue, RunFilter, run_index_values
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import format_ts, parse_ts


class IdempotencyKeyHeld(Exception):
    """A trigger's idempotency key is held by an existing run (`run_id`)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


@dataclass(frozen=True)
class IdempotencyGuard:
    """One run per (job, key) while the key is held (the key is stored hashed)."""

    job_id: str
    key_hash: str

    @property
    def pk(self) -> str:
        return f"IDEM#{self.job_id}#{self.key_hash}"


@dataclass
class RunPage:
    runs: list[Run]
    next_cursor: str | None  # a `csk` (created_at#id) to continue strictly past, or None at the end
    examined: int = 0


@dataclass
class _IndexKey:
    csk: str
    run_id: str


@dataclass
class _IndexCursor:
    """Reads one index partition in `csk` order, a bounded number of keys at a time."""

    table: DynamoTable
    index: str
    partition: str
    lower: str | None
    upper: str | None
    ascending: bool
    _buffer: list[_IndexKey] = field(default_factory=list)
    _start: dict[str, Any] | None = None
    _done: bool = False

    def _fill(self, want: int) -> None:
        while len(self._buffer) < want and not self._done:
            attr = keys.INDEX_PARTITION_ATTRIBUTE[self.index]
            condition = "#p = :p"
            values: dict[str, Any] = {":p": self.partition}
            if self.lower is not None and self.upper is not None:
                condition += " AND #s BETWEEN :lo AND :hi"
                values |= {":lo": self.lower, ":hi": self.upper}
            elif self.lower is not None:
                condition += " AND #s > :lo"
                values[":lo"] = self.lower
            elif self.upper is not None:
                condition += " AND #s < :hi"
                values[":hi"] = self.upper
            items, self._start = self.table.query(
                index=self.index,
                key_condition=condition,
                values=values,
                names={"#p": attr, "#s": keys.SORT_ATTRIBUTE} if "#s" in condition else {"#p": attr},
                limit=want - len(self._buffer),
                ascending=self.ascending,
                start_key=self._start,
            )
            for item in items:
                # BETWEEN is inclusive; the bounds themselves are exclusive here.
                if item[keys.SORT_ATTRIBUTE] in (self.lower, self.upper):
                    continue
                self._buffer.append(_IndexKey(item[keys.SORT_ATTRIBUTE], item["pk"].removeprefix("RUN#")))
            self._done = self._start is None

    def peek(self) -> _IndexKey | None:
        self._fill(1)
        return self._buffer[0] if self._buffer else None

    def take(self, count: int) -> list[_IndexKey]:
        self._fill(count)
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken


@dataclass
class _MergedCursor:
    """Several index cursors read as one ordered stream without duplicates."""

    cursors: list[_IndexCursor]
    ascending: bool
    _seen: set[str] = field(default_factory=set)

    def _pick(self) -> _IndexCursor | None:
        heads = [(cursor.peek(), cursor) for cursor in self.cursors]
        live = [(head, cursor) for head, cursor in heads if head is not None]
        if not live:
            return None
        chooser = min if self.ascending else max
        return chooser(live, key=lambda pair: pair[0].csk if pair[0] else "")[1]

    def peek(self) -> _IndexKey | None:
        while (cursor := self._pick()) is not None:
            head = cursor.peek()
            if head is not None and head.run_id not in self._seen:
                return head
            cursor.take(1)
        return None

    def take(self, count: int) -> list[_IndexKey]:
        # Read each partition `count` keys per Query; peek alone would read one key per Query.
        for cursor in self.cursors:
            cursor._fill(count)
        taken: list[_IndexKey] = []
        while len(taken) < count and (head := self.peek()) is not None:
            picked = self._pick()
            if picked is None:
                break
            picked.take(1)
            self._seen.add(head.run_id)
            taken.append(head)
        return taken


_Cursor = _IndexCursor | _MergedCursor


class RunIdStream:
    """Run ids read from index partitions in `csk` order, a bounded number of keys at a time."""

    def __init__(self, cursor: _Cursor) -> None:
        self._cursor = cursor

    def take(self, count: int) -> list[str]:
        """The next `count` run ids at most (fewer at the end)."""
        return [key.run_id for key in self._cursor.take(count)]

    def has_more(self) -> bool:
        """Whether another id follows (reads at most one more index page)."""
        return self._cursor.peek() is not None


class RunStore:
    """Reads and writes runs. Raises Unavailable when the store stays throttled."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # Writes -------------------------------------------------------------------------------

    def create(
        self,
        run: Run,
        created_event: Event,
        *,
        guard: IdempotencyGuard | None = None,
        replaces: str | None = None,
        parked: bool = False,
    ) -> None:
        """Stores a new run with its creation event (sequence 1), its LIVE item and, when given,
        its idempotency guard, all in one transaction. `replaces` names the run whose guard of the
        same key was released (its hold ended): the guard moves over only if it still names it.
        Index items are written first: an index item whose run does not exist is skipped on read,
        so a failed creation leaves nothing visible.

        Raises IdempotencyKeyHeld when the guard's key is held by another run.
        """
        index_items = [index_item(run, value) for value in run_index_values(run)]
        if parked:
            index_items.append(parked_item(run))
        if index_items:
            self.table.batch_write(index_items)
        item, blobs = run_item(run)
        actions = [
            self.table.put_action(item, condition="attribute_not_exists(pk)"),
            self.table.put_action(live_item(run, created_event.sequence)),
            self.table.put_action(event_item(created_event)),
            *(self.table.put_action(blob) for blob in blobs),
        ]
        if guard is not None:
            guard_item = {"pk": guard.pk, "sk": "IDEM", "run_id": run.id, "job_id": guard.job_id}
            actions.append(
                self.table.put_action(
                    guard_item,
                    condition="run_id = :old" if replaces else "attribute_not_exists(pk)",
                    values={":old": replaces} if replaces else None,
                )
            )
        try:
            self.table.transact(actions)
        except ConditionFailed as failure:
            held = failure.items[-1] if guard is not None and failure.failed_at(len(actions) - 1) else None
            if held is not None:
                raise IdempotencyKeyHeld(held["run_id"]) from failure
            if guard is not None and failure.failed_at(len(actions) - 1):
                current = self.table.get(guard.pk, "IDEM")
                if current is not None:
                    raise IdempotencyKeyHeld(current["run_id"]) from failure
            raise

    def transition(
        self,
        old: Run,
        new: Run,
        make_event: Callable[[int], Event],
        extra_actions: Sequence[dict[str, Any]] = (),
    ) -> Event:
        """See `_transition`: one conditional status change with its event."""
        return _transition(self.table, old, new, make_event, extra_actions)

    def idempotent_run_id(self, guard: IdempotencyGuard) -> str | None:
        """The run named by the guard of this key, or None when there is no guard."""
        item = self.table.get(guard.pk, "IDEM")
        return str(item["run_id"]) if item else None

    def release_idempotency_key(self, guard: IdempotencyGuard, run_id: str) -> bool:
        """Removes the guard if it still names `run_id` (a reset of the run's key)."""
        try:
            self.table.transact(
                [self.table.delete_action(guard.pk, "IDEM", condition="run_id = :r", values={":r": run_id})]
            )
        except ConditionFailed:
            return False
        return True

    def reset_idempotency_key(self, old: Run, new: Run, guard: IdempotencyGuard) -> bool:
        """Writes `new` (the run without its idempotency key) over `old` and removes the key's
        guard if it still names the run, in one transaction. Returns whether the guard was removed
        (False: another run holds the key now, or nobody does).

        Raises TransitionRefused when the run is no longer at `old`'s status and generation.
        """
        item, blobs = run_item(new)
        condition, values = unchanged_since(old)
        put = self.table.put_action(item, condition=condition, values=values)
        put["Put"]["ExpressionAttributeNames"] = {"#st": "status"}
        run_writes = [put, *(self.table.put_action(blob) for blob in blobs)]
        release = self.table.delete_action(guard.pk, "IDEM", condition="run_id = :r", values={":r": old.id})
        for actions in ([*run_writes, release], run_writes):
            try:
                self.table.transact(actions)
            except ConditionFailed as failure:
                if failure.failed_at(0):
                    raise TransitionRefused(old.id, failure.items[0]) from failure
                continue  # the guard is not this run's: clear the run's key alone
            return len(actions) > len(run_writes)
        return False

    def add_index_items(self, run: Run, values: Iterable[IndexValue]) -> None:
        """Puts the run under more filter values (written before the run shows them: an index item
        of a value the run does not have is skipped on read, a missing one would hide the run)."""
        items = [index_item(run, value) for value in values]
        if items:
            self.table.batch_write(items)

    def remove_index_items(self, run: Run, values: Iterable[IndexValue]) -> None:
        """Removes index items of values the run no longer has (cleanup; stale ones are harmless)."""
        pk = keys.run_pk(run.id)
        stale = [(pk, f"{keys.INDEX_SK_PREFIX}{value.kind}#{value.digest}") for value in values]
        if stale:
            self.table.batch_write(deletes=stale)

    def parked_run_ids(self, job_id: str, limit: int) -> list[str]:
        """Runs parked on a paused or disabled job, oldest first."""
        cursor = _IndexCursor(self.table, keys.BY_VALUE, keys.parked_runs(job_id), None, None, True)
        return [key.run_id for key in cursor.take(limit)]

    def unpark(self, run_ids: Sequence[str]) -> None:
        self.table.batch_write(deletes=[(keys.run_pk(run_id), keys.PARK_SK) for run_id in run_ids])

    # Reads --------------------------------------------------------------------------------

    def get(self, run_id: str) -> Run | None:
        """The run with its live counters and blobs (strongly consistent), or None."""
        return self.get_many([run_id]).get(run_id)

    def get_many(self, run_ids: Sequence[str]) -> dict[str, Run]:
        """Runs by id (strongly consistent); missing ids are absent from the result."""
        if not run_ids:
            return {}
        wanted = [(keys.run_pk(run_id), sk) for run_id in run_ids for sk in (keys.RUN_SK, keys.LIVE_SK)]
        items = self.table.batch_get(wanted)
        blob_wanted = [
            key for run_id in run_ids for key in blob_keys(items.get((keys.run_pk(run_id), "RUN"), {}))
        ]
        blobs = self.table.batch_get(blob_wanted) if blob_wanted else {}
        runs: dict[str, Run] = {}
        for run_id in run_ids:
            item = items.get((keys.run_pk(run_id), keys.RUN_SK))
            if item is not None:
                runs[run_id] = run_from_items(item, items.get((keys.run_pk(run_id), keys.LIVE_SK)), blobs)
        return runs

    def list_runs(
        self,
        run_filter: RunFilter,
        *,
        limit: int,
        before: str | None,
        budget: int,
        ascending: bool = False,
        fits: Callable[[Run], bool] | None = None,
    ) -> RunPage:
        """A page of runs matching `run_filter`, read from the most selective index.

        `before` continues strictly past a `csk` (in the direction of the list). At most `budget`
        index entries are examined; a page that stops early carries `next_cursor`. `fits` may
        refuse a run (response size cap): the page then ends before it.
        """
        cursor = self._cursor(run_filter, before, ascending)
        matched: list[Run] = []
        examined = 0
        last: str | None = None
        while len(matched) < limit and examined < budget:
            batch = cursor.take(min(limit - len(matched), budget - examined))
            if not batch:
                return RunPage(matched, None, examined)
            runs = self.get_many([key.run_id for key in batch])
            for position, key in enumerate(batch):
                run = runs.get(key.run_id)
                if run is not None and run_filter.matches(run):
                    if fits is not None and not fits(run):
                        return RunPage(matched, last, examined + position)
                    matched.append(run)
                last = key.csk
            examined += len(batch)
        return RunPage(matched, last if cursor.peek() is not None else None, examined)

    def in_statuses(
        self, project_id: str, statuses: Sequence[RunStatus], created_before: datetime | None = None
    ) -> RunIdStream:
        """Ids of the project's runs in any of `statuses`, oldest first (the by_project_status
        partitions merged), created strictly before `created_before` when given. A run that leaves
        these statuses leaves their partitions, so a sweep that moves runs on never reads them again."""
        upper = format_ts(created_before) if created_before else None
        cursors = [
            _IndexCursor(
                self.table, keys.BY_PROJECT_STATUS, keys.project_status(project_id, status), None, upper, True
            )
            for status in statuses
        ]
        if len(cursors) == 1:
            return RunIdStream(cursors[0])
        return RunIdStream(_MergedCursor(cursors, ascending=True))

    def _cursor(self, f: RunFilter, before: str | None, ascending: bool) -> _Cursor:
        lower = format_ts(f.created_after) + "$" if f.created_after else None
        upper = format_ts(f.created_before) if f.created_before else None
        if before is not None:
            if ascending:
                lower = max(lower, before) if lower else before
            else:
                upper = min(upper, before) if upper else before

        def on(index: str, partition: str) -> _IndexCursor:
            return _IndexCursor(self.table, index, partition, lower, upper, ascending)

        def by_value(value: IndexValue) -> _IndexCursor:
            return on(keys.BY_VALUE, keys.value_key(f.project_id, value.kind, value.digest))

        if f.batch_id:
            return on(keys.BY_BATCH, keys.batch_runs(f.batch_id))
        if f.parent_run_id:
            return on(keys.BY_PARENT, keys.parent_runs(f.parent_run_id))
        if f.metadata_key and f.metadata_value is not None:
            return by_value(rf.metadata_pair_value(f.metadata_key, f.metadata_value))
        if f.tag_key and f.tag_value is not None:
            return by_value(rf.tag_pair_value(f.tag_key, f.tag_value))
        leaf_values = f.payload_index_values()
        if leaf_values:
            return _MergedCursor([by_value(leaf_values[0]), by_value(rf.OVERFLOW)], ascending)
        if f.status == RunStatus.DEAD_LETTER:
            # Dead letters are few next to a job's runs: their partition is the smaller read.
            return on(keys.BY_PROJECT_STATUS, keys.project_status(f.project_id, f.status))
        if f.job_id:
            return on(keys.BY_JOB, keys.job_runs(f.job_id))
        if f.status:
            return on(keys.BY_PROJECT_STATUS, keys.project_status(f.project_id, f.status))
        if f.metadata_key:
            return by_value(rf.metadata_key_value(f.metadata_key))
        if f.tag_key:
            return by_value(rf.tag_key_value(f.tag_key))
        return on(keys.BY_PROJECT, keys.project_runs(f.project_id))


def event_item(event: Event) -> Item:
    return {
        "pk": keys.run_pk(event.run_id),
        "sk": keys.event_sk(event.sequence),
        "type": "event",
        "id": event.id,
        "sequence": event.sequence,
        "event_type": event.type,
        "level": event.level,
        "message": event.message,
        "data": event.data,
        "created_at": format_ts(event.created_at),
    }


def event_from_item(item: Item) -> Event:
    return Event(
        id=item["id"],
        run_id=item["pk"].removeprefix("RUN#"),
        sequence=item["sequence"],
        type=item["event_type"],
        level=item["level"],
        message=item.get("message"),
        data=item.get("data"),
        created_at=parse_ts(item["created_at"]),
    )


class TransitionRefused(Exception):
    """The run was not in the expected status and generation (another actor won)."""

    def __init__(self, run_id: str, current: Item | None) -> None:
        super().__init__(run_id)
        self.current_status = current.get("status") if current else None


_SEQUENCE_RETRIES = 10


def _transition(
    table: DynamoTable,
    old: Run,
    new: Run,
    make_event: Callable[[int], Event],
    extra_actions: Sequence[dict[str, Any]] = (),
) -> Event:
    """Writes `new` over `old` if the run is still at `old`'s status and generation, with the
    status_change event made by `make_event(sequence)` and `extra_actions` (slot release,
    idempotency hold), in one transaction. The sequence is taken
    from the LIVE counter under a condition; losing only that race is retried (bounded).

    Raises TransitionRefused when the run moved on.
    """
    item, blobs = run_item(new)
    pk = keys.run_pk(old.id)
    for _ in range(_SEQUENCE_RETRIES):
        live = table.get(pk, keys.LIVE_SK) or {}
        current = int(live.get("seq", 0))
        event = make_event(current + 1)
        live_update = "SET seq = :next"
        values: dict[str, Any] = {":next": current + 1, ":cur": current}
        # Only a transition that sets or clears the heartbeat touches it: the LIVE item may hold
        # later beats than the run this transition was computed from.
        if new.heartbeat_at is not None and new.heartbeat_at != old.heartbeat_at:
            live_update += ", heartbeat_at = :hb"
            values[":hb"] = format_ts(new.heartbeat_at)
        elif new.heartbeat_at is None and old.heartbeat_at is not None:
            live_update += " REMOVE heartbeat_at"
        condition, run_values = unchanged_since(old)
        actions = [
            table.put_action(item, condition=condition, values=run_values),
            table.update_action(pk, keys.LIVE_SK, live_update, condition="seq = :cur", values=values),
            table.put_action(event_item(event), condition="attribute_not_exists(pk)"),
            *(table.put_action(blob) for blob in blobs),
            *extra_actions,
        ]
        actions[0]["Put"]["ExpressionAttributeNames"] = {"#st": "status"}
        try:
            table.transact(actions)
            return event
        except ConditionFailed as failure:
            if failure.failed_at(0):
                raise TransitionRefused(old.id, failure.items[0]) from failure
    raise ConditionFailed(["SequenceContention"], [None])
