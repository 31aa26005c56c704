"""Run <-> the items of its collection (docs/data-model.md):

- `RUN`, the definition: what a trigger decides and nothing changes afterwards in the normal course
  (payload, metadata, tags, links, overrides). Written once, so its size is paid once. It carries the
  index keys that never change (project, job, parent).
- `ST`, the state: status, attempt, times, errors and the engine's bookkeeping, small, rewritten by
  every status change. It carries the index keys that follow the status (project+status, timer,
  batch), the event counter `seq`, the events of the latest status changes (`evts`, until they are
  moved to `EVT#` items) and `fx`, the effects the write calls for (the outbox: the stream delivers
  every write of this item, and EffectsFunction takes those with `fx`).
- `LIVE`: counters of the in-run plane (usage totals, annotations, checkpoint and chunk numbers).
- `BLOB#payload`, `BLOB#result#<digest>`: JSON values too large to keep inline.
- `IX#...`: filter index items (metadata, tags, indexed payload paths).

A run written before this layout (one `RUN` item with every field and `LIVE.seq`) is read as it
is; `straitruns.migrate` rewrites such runs in this layout.
"""

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import simplejson

from straitruns.adapters.store import keys
from straitruns.adapters.store.table import Item, deserialize
from straitruns.domain import limits
from straitruns.domain.jsonvalue import json_size
from straitruns.domain.models import ChangeRecord, Event, EventLevel, ExecutionTrace, Run, UsageTotals
from straitruns.domain.run_filter import IndexValue
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import format_ts, parse_ts

LAYOUT_VERSION = 2

# The definition's fields; every other field of a run (but its id and usage totals) is state.
DEFINITION_FIELDS = (
    "job_id",
    "project_id",
    "payload",
    "metadata",
    "tags",
    "triggered_by",
    "created_by",
    "created_at",
    "priority",
    "idempotency_key",
    "concurrency_key",
    "job_version",
    "job_version_id",
    "workflow_step_run_id",
    "parent_run_id",
    "continuation_of",
    "lineage_depth",
    "batch_id",
    "replayed_from",
    "max_attempts_override",
    "timeout_secs_override",
    "retry_backoff",
    "retry_initial_delay_secs",
    "retry_max_delay_secs",
)
_NOT_STORED = ("id", "usage_totals", "event_seq", "inline_events", "payload", "result", "execution_trace")
STATE_FIELDS = tuple(
    name for name in Run.model_fields if name not in DEFINITION_FIELDS and name not in _NOT_STORED
)
_TIME_FIELDS = frozenset(
    name for name, info in Run.model_fields.items() if info.annotation in (datetime, datetime | None)
)
_MAP_FIELDS = ("metadata", "tags")
# A result up to this size stays in the state item: written with the change that completes the run,
# it costs less than an item of its own (write units round up per item); a larger one gets its own
# item, written once, so the state item stays small for reads.
RESULT_INLINE_BYTES = 8 * 1024


def _ts(value: datetime | None) -> str | None:
    return format_ts(value) if value else None


def _stored(name: str, value: Any) -> Any:
    """One field's stored form (None: the attribute is absent)."""
    if value is None:
        return None
    if name in _TIME_FIELDS:
        return _ts(value)
    if name in _MAP_FIELDS:
        return simplejson.dumps(value, separators=(",", ":")) if value else None
    if isinstance(value, tuple):
        return list(value) if value else None
    if hasattr(value, "value"):  # StrEnum
        return value.value
    return value


def result_digest(result: str) -> str:
    return hashlib.sha256(result.encode()).hexdigest()[:32]


# Definition ------------------------------------------------------------------------------------


def definition_item(run: Run, shards: int) -> tuple[Item, list[Item]]:
    """The run's `RUN` item and the blob of a payload too large to keep inline."""
    pk = keys.run_pk(run.id)
    shard = keys.write_shard(run.id, shards)
    item: Item = {"pk": pk, "sk": keys.RUN_SK, "type": "run", "v": LAYOUT_VERSION, "id": run.id}
    for name in DEFINITION_FIELDS:
        if name != "payload":
            item[name] = _stored(name, getattr(run, name))
    blobs: list[Item] = []
    if json_size(run.payload) > limits.INLINE_JSON_BYTES:
        item["payload_ref"] = True
        blobs.append({"pk": pk, "sk": f"{keys.BLOB_SK_PREFIX}payload", "body": run.payload})
    else:
        item["payload"] = run.payload
    item[keys.SORT_ATTRIBUTE] = keys.created_sort_key(run.created_at, run.id)
    item["project_pk"] = keys.project_runs(run.project_id, shard)
    item["job_pk"] = keys.job_runs(run.job_id, shard)
    if run.parent_run_id:
        item["parent_pk"] = keys.parent_runs(run.parent_run_id)
    return {name: value for name, value in item.items() if value is not None}, blobs


# State -----------------------------------------------------------------------------------------


def state_attributes(run: Run, shards: int) -> tuple[Item, list[Item]]:
    """The state item's attributes that follow from the run (not `seq`, `evts`, `fx`), and the item
    of a result too large to keep inline."""
    shard = keys.write_shard(run.id, shards)
    attrs: Item = {
        "type": "state",
        "v": LAYOUT_VERSION,
        "project_id": run.project_id,
        "job_id": run.job_id,
        "parent_run_id": run.parent_run_id,
        keys.SORT_ATTRIBUTE: keys.created_sort_key(run.created_at, run.id),
        "status_pk": keys.project_status(run.project_id, run.status, shard),
    }
    for name in STATE_FIELDS:
        attrs[name] = _stored(name, getattr(run, name))
    # Booleans and counters that are false or zero are left out: absent reads back as the default.
    for name in ("ever_claimed", "debug_mode"):
        if not attrs.get(name):
            attrs[name] = None
    if not attrs.get("fingerprint_streak"):
        attrs["fingerprint_streak"] = None
    if run.execution_trace is not None:
        attrs["execution_trace"] = run.execution_trace.model_dump_json()
    blobs: list[Item] = []
    if run.result is not None:
        if json_size(run.result) > RESULT_INLINE_BYTES:
            digest = result_digest(run.result)
            attrs["result_blob"] = digest
            blobs.append({"pk": keys.run_pk(run.id), "sk": keys.result_blob_sk(digest), "body": run.result})
        else:
            attrs["result"] = run.result
    if run.batch_id:
        attrs["batch_pk"] = keys.batch_runs(run.batch_id)
    if run.wake_at:
        attrs["wake_pk"] = keys.wake_shard(run.id)
        attrs[keys.WAKE_SORT_ATTRIBUTE] = keys.wake_sort_key(run.wake_at, run.id)
    return {name: value for name, value in attrs.items() if value is not None}, blobs


def state_item(
    run: Run, shards: int, events: list[Event], fx: Mapping[str, Any] | None
) -> tuple[Item, list[Item]]:
    """The state item of a new run, holding its creation events."""
    attrs, blobs = state_attributes(run, shards)
    item: Item = {"pk": keys.run_pk(run.id), "sk": keys.STATE_SK, **attrs}
    item["seq"] = events[-1].sequence if events else 0
    item["evts"] = [event_entry(event) for event in events]
    if fx:
        item["fx"] = encode_fx(fx)
    return item, blobs


def encode_fx(fx: Mapping[str, Any]) -> str:
    return simplejson.dumps(dict(fx), separators=(",", ":"), sort_keys=True)


def decode_fx(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = simplejson.loads(text)
    return value if isinstance(value, dict) else {}


def state_condition(old: Run, *, numbered: bool = True) -> tuple[str, dict[str, Any]]:
    """The condition (`#st` names `status`) under which a write computed from `old` may replace the
    stored state: the same status, generation and concurrency slots, and (`numbered`: a write that
    adds events) the same event sequence. A slot taken after `old` was read must not be written
    over, or it would never be given back."""
    values: dict[str, Any] = {":from": old.status.value, ":gen": old.generation}
    condition = "#st = :from AND generation = :gen"
    if numbered:
        values[":seq"] = old.event_seq
        condition += " AND seq = :seq"
    if not old.slots:
        return condition + " AND attribute_not_exists(slots)", values
    values[":slots"] = list(old.slots)
    return condition + " AND slots = :slots", values


def state_changes(old: Run, new: Run, shards: int) -> tuple[dict[str, Any], list[str], list[Item]]:
    """What a write of `new` over `old` sets and removes in the state item, and the blob items
    it needs first."""
    before, _ = state_attributes(old, shards)
    after, blobs = state_attributes(new, shards)
    sets = {name: value for name, value in after.items() if before.get(name) != value}
    removes = [name for name in before if name not in after]
    return sets, removes, blobs


# Events kept in the state item -----------------------------------------------------------------


_STATUS_CHANGE = "status_change"


def _status_message(data: str | None) -> str | None:
    """The message of a `status_change` event, derived from its data (`queued -> dequeued`)."""
    if not data:
        return None
    change = simplejson.loads(data)
    return f"{change.get('from') or 'created'} -> {change.get('to')}"


def event_entry(event: Event) -> str:
    """An event as kept in the state item's `evts` list (compact JSON text; a status change's
    message, which its data says, is not kept twice)."""
    entry: dict[str, Any] = {
        "i": event.id,
        "q": event.sequence,
        "t": event.type,
        "l": event.level.value,
        "c": format_ts(event.created_at),
    }
    derived = event.type == _STATUS_CHANGE and event.message == _status_message(event.data)
    if event.message is not None and not derived:
        entry["m"] = event.message
    if event.data is not None:
        entry["d"] = event.data
    return simplejson.dumps(entry, separators=(",", ":"))


def event_from_entry(run_id: str, text: str) -> Event:
    entry = simplejson.loads(text)
    message = entry.get("m")
    if message is None and entry["t"] == _STATUS_CHANGE:
        message = _status_message(entry.get("d"))
    return Event(
        id=entry["i"],
        run_id=run_id,
        sequence=entry["q"],
        type=entry["t"],
        level=EventLevel(entry["l"]),
        message=message,
        data=entry.get("d"),
        created_at=parse_ts(entry["c"]),
    )


def inline_events(state: Item | None) -> list[Event]:
    """The events a state item holds, in sequence order."""
    if not state:
        return []
    run_id = str(state["pk"]).removeprefix("RUN#")
    return [event_from_entry(run_id, text) for text in state.get("evts") or ()]


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


# Other items of the collection -------------------------------------------------------------------


def index_item(run: Run, value: IndexValue) -> Item:
    """A small item that puts the run under one hashed filter value of the by_value index."""
    return {
        "pk": keys.run_pk(run.id),
        "sk": f"{keys.INDEX_SK_PREFIX}{value.kind}#{value.digest}",
        "value_pk": keys.value_key(run.project_id, value.kind, value.digest),
        keys.SORT_ATTRIBUTE: keys.created_sort_key(run.created_at, run.id),
    }


def parked_item(run: Run) -> Item:
    """Marks a run parked on its paused or disabled job, found again when the job resumes."""
    return {
        "pk": keys.run_pk(run.id),
        "sk": keys.PARK_SK,
        "value_pk": keys.parked_runs(run.job_id),
        keys.SORT_ATTRIBUTE: keys.created_sort_key(run.created_at, run.id),
        "generation": run.generation,
    }


def blob_keys(definition: Item | None, state: Item | None) -> list[tuple[str, str]]:
    """Keys of the blob items a stored run refers to."""
    wanted: list[tuple[str, str]] = []
    if definition and definition.get("payload_ref"):
        wanted.append((definition["pk"], f"{keys.BLOB_SK_PREFIX}payload"))
    if state and state.get("result_blob"):
        wanted.append((state["pk"], keys.result_blob_sk(state["result_blob"])))
    if definition and definition.get("status") is not None and definition.get("result_ref"):
        wanted.append((definition["pk"], f"{keys.BLOB_SK_PREFIX}result"))  # the layout before v2
    return wanted


def is_legacy(definition: Item) -> bool:
    """A run item written before the definition/state split (it holds the status itself)."""
    return "status" in definition and definition.get("v") != LAYOUT_VERSION


def run_from_items(
    definition: Item, state: Item | None, live: Item | None, blobs: Mapping[tuple[str, str], Item]
) -> Run | None:
    """Rebuilds a run from its items; None when its state item is missing (a creation that did not
    finish: such a run does not exist)."""
    if is_legacy(definition):
        return _legacy_run(definition, live, blobs)
    if state is None:
        return None
    data: dict[str, Any] = {"id": definition["id"]}
    for name in DEFINITION_FIELDS:
        if name in definition:
            data[name] = definition[name]
    data["payload"] = (
        blobs[(definition["pk"], f"{keys.BLOB_SK_PREFIX}payload")]["body"]
        if definition.get("payload_ref")
        else definition.get("payload", "{}")
    )
    for name in STATE_FIELDS:
        if name in state:
            data[name] = state[name]
    for name in _TIME_FIELDS:
        if data.get(name):
            data[name] = parse_ts(data[name])
    for name in _MAP_FIELDS:
        data[name] = simplejson.loads(data.get(name) or "{}")
    for name in ("slots", "resumed_after"):
        data[name] = tuple(data.get(name) or ())
    if state.get("result_blob"):
        data["result"] = blobs[(state["pk"], keys.result_blob_sk(state["result_blob"]))]["body"]
    elif "result" in state:
        data["result"] = state["result"]
    if state.get("execution_trace"):
        data["execution_trace"] = ExecutionTrace.model_validate_json(state["execution_trace"])
    data["event_seq"] = int(state.get("seq", 0))
    data["inline_events"] = len(state.get("evts") or ())
    _merge_live(data, live)
    return Run.model_validate(data)


def _merge_live(data: dict[str, Any], live: Item | None) -> None:
    if not live:
        return
    data["usage_totals"] = UsageTotals(**{k: live.get(k, 0) for k in UsageTotals.model_fields})
    # SDK annotations (adapters/store/annotations.py) win over the run's metadata.
    if live.get("annotations"):
        data["metadata"] = {**data["metadata"], **simplejson.loads(live["annotations"])}


_LEGACY_TIME_FIELDS = (
    "wake_at",
    "claimed_at",
    "timeout_at",
    "queued_at",
    "scheduled_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "next_retry_at",
    "expires_at",
    "created_at",
)


def _legacy_run(item: Item, live: Item | None, blobs: Mapping[tuple[str, str], Item]) -> Run:
    """A run stored in the layout before v2 (read-only: `straitruns.migrate` converts it)."""
    data: dict[str, Any] = {name: value for name, value in item.items() if name in Run.model_fields}
    for name in _LEGACY_TIME_FIELDS:
        data[name] = parse_ts(item[name]) if item.get(name) else None
    for name in _MAP_FIELDS:
        data[name] = simplejson.loads(item.get(name) or "{}")
    for name in ("payload", "result"):
        if item.get(f"{name}_ref"):
            data[name] = blobs[(item["pk"], f"{keys.BLOB_SK_PREFIX}{name}")]["body"]
    data["slots"] = tuple(item.get("slots") or ())
    data["resumed_after"] = tuple(item.get("resumed_after") or ())
    if item.get("execution_trace"):
        data["execution_trace"] = ExecutionTrace.model_validate_json(item["execution_trace"])
    live = live or {}
    data["heartbeat_at"] = parse_ts(live["heartbeat_at"]) if live.get("heartbeat_at") else None
    data["event_seq"] = int(live.get("seq", 0))
    _merge_live(data, live)
    return Run.model_validate(data)


def change_record(image: Mapping[str, Any]) -> ChangeRecord | None:
    """The status change a stream record of a state item describes (its NEW_IMAGE, in DynamoDB's
    typed JSON), or None when the record is of another item or asks no effect."""
    item = deserialize(image)
    if item.get("sk") != keys.STATE_SK or not item.get("fx"):
        return None
    fx = decode_fx(item["fx"])
    return ChangeRecord(
        run_id=str(item["pk"]).removeprefix("RUN#"),
        job_id=str(item.get("job_id", "")),
        parent_run_id=item.get("parent_run_id"),
        status=RunStatus(item["status"]),
        generation=int(item.get("generation", 0)),
        effects=frozenset(fx.get("k") or ()),
        released_slots=tuple(fx.get("slots") or ()),
        slot_queue=item.get("slot_queue"),
        sequence=int(item.get("seq", 0)),
    )
