"""Runs in the store: creation, status changes (the state item and its events, the outbox), reads,
and the index-served lists of spec 5 item 1. Layout and costs: docs/data-model.md."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from straitruns.adapters.store import keys
from straitruns.adapters.store.run_codec import (
    blob_keys,
    definition_item,
    encode_fx,
    event_entry,
    event_item,
    index_item,
    inline_events,
    parked_item,
    run_from_items,
    state_changes,
    state_condition,
    state_item,
)
from straitruns.adapters.store.table import ConditionFailed, DynamoTable, Item
from straitruns.domain import run_filter as rf
from straitruns.domain.errors import TransitionRefused
from straitruns.domain.models import Event, Run
from straitruns.domain.run_filter import IndexValue, PayloadIndex, RunFilter, run_index_values
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import format_ts
from straitruns.domain.transitions import Written

# Events a state item keeps inline before a status change moves them to `EVT#` items: the events
# of one simple run (created, dequeued, executing, attempt.started, attempt.finished, completed),
# with room for one that waited for a slot or a dependency.
INLINE_EVENTS_MAX = 8
_SEQUENCE_RETRIES = 10

Fx = Mapping[str, Any]


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


@dataclass(frozen=True)
class NewRun:
    """A run to create, with its creation events and what else its creation writes."""

    run: Run
    events: list[Event]
    parked: bool = False
    extra_items: tuple[Item, ...] = ()
    fx: Fx | None = None
    payload_paths: tuple[str, ...] = ()  # the job's indexed payload paths


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

    def peek(self, refill: int = 1) -> _IndexKey | None:
        """The next key; an empty buffer is refilled with `refill` keys (one Query)."""
        if not self._buffer:
            self._fill(refill)
        return self._buffer[0] if self._buffer else None

    def take(self, count: int) -> list[_IndexKey]:
        self._fill(count)
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken


@dataclass
class _MergedCursor:
    """Several index cursors (the shards of a partition, or partitions of one list) read as one
    ordered stream without duplicates: a k-way merge on `csk`, which is unique per run."""

    cursors: list[_IndexCursor]
    ascending: bool
    _seen: set[str] = field(default_factory=set)
    _share: int = 1  # keys a cursor reads per Query when it runs dry (a share of the page)

    def _pick(self) -> _IndexCursor | None:
        heads = [(cursor.peek(self._share), cursor) for cursor in self.cursors]
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
        # Each cursor reads a share of the page per Query (more as it is consumed): peek alone
        # would read one key per Query, a full page from each would read k pages for one.
        share = max(1, -(-count // len(self.cursors)) + 1)
        self._share = min(count, share)
        for cursor in self.cursors:
            cursor._fill(self._share)
        taken: list[_IndexKey] = []
        while len(taken) < count and (head := self.peek()) is not None:
            picked = self._pick()
            if picked is None:
                break
            picked.take(1)
            self._seen.add(head.run_id)
            taken.append(head)
        return taken


@dataclass
class _ChainedCursor:
    """Cursors over disjoint `csk` ranges read one after the other (in the list's order)."""

    cursors: list["_Cursor"]

    def peek(self) -> _IndexKey | None:
        for cursor in self.cursors:
            head = cursor.peek()
            if head is not None:
                return head
        return None

    def take(self, count: int) -> list[_IndexKey]:
        taken: list[_IndexKey] = []
        for cursor in self.cursors:
            if len(taken) < count:
                taken += cursor.take(count - len(taken))
        return taken


_Cursor = _IndexCursor | _MergedCursor | _ChainedCursor


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
    """Reads and writes runs. `shards` is the number of write shards of the busy index partitions
    (project, project+status, job; docs/data-model.md). Raises Unavailable when the store stays
    throttled."""

    def __init__(self, table: DynamoTable, shards: int = 1) -> None:
        self.table = table
        self.shards = max(1, shards)

    # Creation -------------------------------------------------------------------------------

    def create(
        self,
        run: Run,
        created: Event | list[Event],
        *,
        guard: IdempotencyGuard | None = None,
        replaces: str | None = None,
        parked: bool = False,
        extra_items: Sequence[Item] = (),
        fx: Fx | None = None,
        payload_paths: tuple[str, ...] = (),
    ) -> None:
        """Stores a new run: its definition, its state (holding its creation events), its index
        items, the parked marker and `extra_items`; with a guard, the idempotency guard too, in one
        transaction with the definition and state. `replaces` names the run whose guard of the
        same key was released (its hold ended): the guard moves over only if it still names it.

        Without a guard nothing needs to change together, so the items are written in batches, the
        definition and state last: a creation that stops half-way leaves index items of a run that
        does not exist, which reads skip. Raises IdempotencyKeyHeld.
        """
        events = created if isinstance(created, list) else [created]
        new = NewRun(run, events, parked, tuple(extra_items), fx, payload_paths)
        self.create_many([new], guard=guard, replaces=replaces)

    def create_many(
        self,
        new_runs: Sequence[NewRun],
        *,
        guard: IdempotencyGuard | None = None,
        replaces: str | None = None,
    ) -> None:
        """Stores several new runs (see `create`; a guard applies to a single run)."""
        side: list[Item] = []
        cores: list[Item] = []
        for new in new_runs:
            definition, payload_blobs = definition_item(new.run, self.shards)
            state, result_blobs = state_item(new.run, self.shards, new.events, new.fx)
            side += [index_item(new.run, value) for value in run_index_values(new.run, new.payload_paths)]
            side += [*payload_blobs, *result_blobs, *new.extra_items]
            if new.parked:
                side.append(parked_item(new.run))
            cores += [definition, state]
        if guard is None:
            self.table.batch_write([*side, *cores])
            return
        [new] = new_runs
        if side:
            self.table.batch_write(side)
        guard_item = {"pk": guard.pk, "sk": "IDEM", "run_id": new.run.id, "job_id": guard.job_id}
        actions = [
            self.table.put_action(cores[0], condition="attribute_not_exists(pk)"),
            self.table.put_action(cores[1]),
            self.table.put_action(
                guard_item,
                condition="run_id = :old" if replaces else "attribute_not_exists(pk)",
                values={":old": replaces} if replaces else None,
            ),
        ]
        try:
            self.table.transact(actions)
        except ConditionFailed as failure:
            if not failure.failed_at(2):
                raise
            held = failure.items[2] or self.table.get(guard.pk, "IDEM")
            if held is not None:
                raise IdempotencyKeyHeld(held["run_id"]) from failure
            raise

    # Status changes -------------------------------------------------------------------------

    def transition(
        self,
        old: Run,
        new: Run,
        make_events: Callable[[int], list[Event]],
        extra_actions: Sequence[dict[str, Any]] = (),
        fx: Fx | None = None,
    ) -> Written:
        """Writes `new` over `old` if the run is still at `old`'s status, generation and slots,
        with the events `make_events(first sequence)` makes, in one write of the state item (the
        outbox: the events and `fx` are in the item, so no crash can separate them from the
        change). `extra_actions` (slots given back, a guard released) make it a transaction. When
        only the event counter moved (an SDK event in between), the write is retried on the new
        number, a bounded number of times. Returns the events written and where the run's event
        bookkeeping stands after them.

        Raises TransitionRefused when the run moved on.
        """
        current = old
        for _ in range(_SEQUENCE_RETRIES):
            events = make_events(current.event_seq + 1)
            try:
                inline = self._write_state(current, new, events, extra_actions, fx)
            except ConditionFailed as failure:
                stored = failure.items[0] if failure.items else None
                if stored is None:
                    stored = self.table.get(keys.run_pk(old.id), keys.STATE_SK)
                if stored is None or not _same_claim(old, stored):
                    raise TransitionRefused(old.id, stored) from failure
                current = current.model_copy(
                    update={"event_seq": int(stored["seq"]), "inline_events": len(stored.get("evts") or ())}
                )
                continue
            last = events[-1].sequence if events else current.event_seq
            return Written(events, last, inline)
        raise ConditionFailed(["SequenceContention"], [None])

    def save(self, old: Run, new: Run, fx: Fx | None = None) -> bool:
        """Writes `new` over `old` without a status change or event, if the run is still at
        `old`'s status, generation and slots (with `fx`, effects this write calls for); False when
        it moved on."""
        sets, removes, blobs = state_changes(old, new, self.shards)
        if blobs:
            self.table.batch_write(blobs)
        if fx:
            sets["fx"] = encode_fx(fx)
        else:
            removes.append("fx")
        condition, values = state_condition(old, numbered=False)
        try:
            self._update_state(old.id, sets, removes, condition, values)
        except ConditionFailed:
            return False
        return True

    def _write_state(
        self,
        old: Run,
        new: Run,
        events: list[Event],
        extra_actions: Sequence[dict[str, Any]],
        fx: Fx | None,
    ) -> int:
        """Writes the state; returns how many events the state item holds afterwards."""
        sets, removes, blobs = state_changes(old, new, self.shards)
        entries = [event_entry(event) for event in events]
        flush = old.inline_events + len(entries) > INLINE_EVENTS_MAX
        if flush:
            blobs += [event_item(event) for event in self.inline_events_of(old.id)]
        if blobs:
            self.table.batch_write(blobs)
        if events:
            sets["seq"] = events[-1].sequence
        appended = None
        if flush:
            sets["evts"] = entries
        elif entries:
            appended = entries
        if fx:
            sets["fx"] = encode_fx(fx)
        else:
            removes.append("fx")
        condition, values = state_condition(old)
        self._update_state(old.id, sets, removes, condition, values, appended, extra_actions)
        return len(entries) if flush else old.inline_events + len(entries)

    def _update_state(
        self,
        run_id: str,
        sets: Mapping[str, Any],
        removes: Iterable[str],
        condition: str,
        values: dict[str, Any],
        appended: list[str] | None = None,
        extra_actions: Sequence[dict[str, Any]] = (),
    ) -> None:
        names: dict[str, str] = {"#st": "status"}
        clauses: list[str] = []
        for position, (name, value) in enumerate(sets.items()):
            names[f"#s{position}"] = name
            values[f":s{position}"] = value
            clauses.append(f"#s{position} = :s{position}")
        if appended:
            names["#ev"] = "evts"
            values[":evts"] = appended
            values[":none"] = []
            clauses.append("#ev = list_append(if_not_exists(#ev, :none), :evts)")
        dropped = [name for name in dict.fromkeys(removes) if name not in sets]
        expression = "SET " + ", ".join(clauses) if clauses else ""
        if dropped:
            for position, name in enumerate(dropped):
                names[f"#r{position}"] = name
            expression += " REMOVE " + ", ".join(f"#r{position}" for position in range(len(dropped)))
        action = self.table.update_action(
            keys.run_pk(run_id),
            keys.STATE_SK,
            expression.strip(),
            condition=condition,
            values=values,
            names=names,
        )
        if extra_actions:
            self.table.transact([action, *extra_actions])
        else:
            self.table.update_one(action)

    def inline_events_of(self, run_id: str) -> list[Event]:
        """The events the run's state item holds (strongly consistent)."""
        return inline_events(self.table.get(keys.run_pk(run_id), keys.STATE_SK))

    # Idempotency ------------------------------------------------------------------------------

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
        guard if it still names the run. Returns whether the guard was removed (False: another run
        holds the key now, or nobody does).

        Raises TransitionRefused when the run is no longer at `old`'s status and generation.
        """
        condition, values = state_condition(old, numbered=False)
        check = {
            "ConditionCheck": {
                "TableName": self.table.name,
                "Key": {"pk": {"S": keys.run_pk(old.id)}, "sk": {"S": keys.STATE_SK}},
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": self.table.serialize(values),
            }
        }
        definition, blobs = definition_item(new, self.shards)
        if blobs:
            self.table.batch_write(blobs)
        put = self.table.put_action(definition)
        release = self.table.delete_action(guard.pk, "IDEM", condition="run_id = :r", values={":r": old.id})
        for actions in ([check, put, release], [check, put]):
            try:
                self.table.transact(actions)
            except ConditionFailed as failure:
                if failure.failed_at(0):
                    raise TransitionRefused(old.id, None) from failure
                continue  # the guard is not this run's: clear the run's key alone
            return len(actions) == 3
        return False

    def definition_action(self, run: Run) -> dict[str, Any]:
        """The write of the run's definition as a transaction action (its payload blob, when it
        has one, is written first)."""
        definition, blobs = definition_item(run, self.shards)
        if blobs:
            self.table.batch_write(blobs)
        return self.table.put_action(definition)

    def rewrite_definition(self, old: Run, new: Run) -> bool:
        """Writes `new`'s definition (a new payload) and state over `old`'s, together, if the run is
        still at `old`'s status, generation and slots. False when it moved on."""
        condition, values = state_condition(old, numbered=False)
        definition, payload_blobs = definition_item(new, self.shards)
        sets, removes, result_blobs = state_changes(old, new, self.shards)
        if payload_blobs or result_blobs:
            self.table.batch_write([*payload_blobs, *result_blobs])
        try:
            self._update_state(
                old.id,
                sets,
                [*removes, "fx"],
                condition,
                values,
                extra_actions=[self.table.put_action(definition)],
            )
        except ConditionFailed:
            return False
        return True

    # Index items and parking -------------------------------------------------------------------

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

    # Reads --------------------------------------------------------------------------------------

    def get(self, run_id: str) -> Run | None:
        """The run with its live counters and blobs (strongly consistent), or None."""
        return self.get_many([run_id]).get(run_id)

    def get_many(self, run_ids: Sequence[str], extra: Sequence[tuple[str, str]] = ()) -> dict[str, Run]:
        """Runs by id (strongly consistent); missing ids are absent from the result."""
        return self.get_many_with(run_ids, extra)[0]

    def get_many_with(
        self, run_ids: Sequence[str], extra: Sequence[tuple[str, str]] = ()
    ) -> tuple[dict[str, Run], dict[tuple[str, str], Item]]:
        """Runs by id, and the `extra` items read in the same request (a job, a counter)."""
        wanted = [
            (keys.run_pk(run_id), sk)
            for run_id in run_ids
            for sk in (keys.RUN_SK, keys.STATE_SK, keys.LIVE_SK)
        ]
        items = self.table.batch_get([*wanted, *extra]) if wanted or extra else {}
        blob_wanted = [
            key
            for run_id in run_ids
            for key in blob_keys(
                items.get((keys.run_pk(run_id), keys.RUN_SK)), items.get((keys.run_pk(run_id), keys.STATE_SK))
            )
        ]
        blobs = self.table.batch_get(blob_wanted) if blob_wanted else {}
        runs: dict[str, Run] = {}
        for run_id in run_ids:
            pk = keys.run_pk(run_id)
            definition = items.get((pk, keys.RUN_SK))
            if definition is None:
                continue
            run = run_from_items(
                definition, items.get((pk, keys.STATE_SK)), items.get((pk, keys.LIVE_SK)), blobs
            )
            if run is not None:
                runs[run_id] = run
        return runs, {key: items[key] for key in extra if key in items}

    def list_runs(
        self,
        run_filter: RunFilter,
        *,
        limit: int,
        before: str | None,
        budget: int,
        ascending: bool = False,
        fits: Callable[[Run], bool] | None = None,
        payload_index: PayloadIndex | None = None,
    ) -> RunPage:
        """A page of runs matching `run_filter`, read from the most selective index.

        `before` continues strictly past a `csk` (in the direction of the list). At most `budget`
        index entries are examined; a page that stops early carries `next_cursor`. `fits` may
        refuse a run (response size cap): the page then ends before it. `payload_index` is what the
        filter's job indexes for `payload_contains` (a payload filter on one of its paths reads it).
        """
        cursor = self._cursor(run_filter, before, ascending, payload_index)
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
        partitions and their shards merged), created strictly before `created_before` when given.
        A run that leaves these statuses leaves their partitions, so a sweep that moves runs on
        never reads them again."""
        upper = format_ts(created_before) if created_before else None
        cursors = [
            _IndexCursor(
                self.table,
                keys.BY_PROJECT_STATUS,
                keys.project_status(project_id, status, shard),
                None,
                upper,
                True,
            )
            for status in statuses
            for shard in range(self.shards)
        ]
        if len(cursors) == 1:
            return RunIdStream(cursors[0])
        return RunIdStream(_MergedCursor(cursors, ascending=True))

    def _cursor(
        self, f: RunFilter, before: str | None, ascending: bool, payload_index: PayloadIndex | None
    ) -> _Cursor:
        lower = format_ts(f.created_after) + "$" if f.created_after else None
        upper = format_ts(f.created_before) if f.created_before else None
        if before is not None:
            if ascending:
                lower = max(lower, before) if lower else before
            else:
                upper = min(upper, before) if upper else before

        def on(index: str, partition: str, lo: str | None = None, hi: str | None = None) -> _IndexCursor:
            return _IndexCursor(self.table, index, partition, lo or lower, hi or upper, ascending)

        def sharded(index: str, partition: Callable[[int], str]) -> _Cursor:
            if self.shards == 1:
                return on(index, partition(0))
            return _MergedCursor([on(index, partition(shard)) for shard in range(self.shards)], ascending)

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
        leaf = f.indexed_leaf(payload_index)
        if leaf is not None and payload_index is not None and f.job_id is not None:
            return self._payload_cursor(f, f.job_id, leaf, payload_index, on, ascending, lower, upper)
        if f.status == RunStatus.DEAD_LETTER:
            # Dead letters are few next to a job's runs: their partition is the smaller read.
            return sharded(
                keys.BY_PROJECT_STATUS, lambda s: keys.project_status(f.project_id, f.status or "", s)
            )
        if f.job_id:
            job_id = f.job_id
            return sharded(keys.BY_JOB, lambda s: keys.job_runs(job_id, s))
        if f.status:
            status = f.status
            return sharded(keys.BY_PROJECT_STATUS, lambda s: keys.project_status(f.project_id, status, s))
        if f.metadata_key:
            return by_value(rf.metadata_key_value(f.metadata_key))
        if f.tag_key:
            return by_value(rf.tag_key_value(f.tag_key))
        return sharded(keys.BY_PROJECT, lambda s: keys.project_runs(f.project_id, s))

    def _payload_cursor(
        self,
        f: RunFilter,
        job_id: str,
        leaf: IndexValue,
        index: PayloadIndex,
        on: Callable[..., _IndexCursor],
        ascending: bool,
        lower: str | None,
        upper: str | None,
    ) -> _Cursor:
        """The runs with the leaf (or the job's overflow mark) since the index covers them, then
        the job's older runs, which the filter checks one by one."""
        since = format_ts(index.since)
        indexed_lower = max(lower, since) if lower else since
        indexed: list[_IndexCursor] = [
            on(keys.BY_VALUE, keys.value_key(f.project_id, value.kind, value.digest), lo=indexed_lower)
            for value in (leaf, rf.payload_overflow(job_id))
        ]
        newer: _Cursor = _MergedCursor(indexed, ascending)
        cursors: list[_Cursor] = [newer]
        if lower is None or lower < since:
            older_upper = min(upper, since) if upper else since
            older = [
                on(keys.BY_JOB, keys.job_runs(job_id, shard), hi=older_upper) for shard in range(self.shards)
            ]
            cursors.append(older[0] if len(older) == 1 else _MergedCursor(list(older), ascending))
        return _ChainedCursor(cursors if not ascending else list(reversed(cursors)))


def _same_claim(old: Run, stored: Item | None) -> bool:
    """Whether the stored state is still at `old`'s status, generation and slots (only the event
    counter moved)."""
    if stored is None or "seq" not in stored:
        return False
    return (
        stored.get("status") == old.status.value
        and int(stored.get("generation", 0)) == old.generation
        and tuple(stored.get("slots") or ()) == tuple(old.slots)
    )
