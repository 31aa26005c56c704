"""Run <-> items of its collection: the run item, the LIVE item, JSON blobs, index items."""

from datetime import datetime
from typing import Any

import simplejson

from straitruns.adapters.store import keys
from straitruns.adapters.store.table import Item
from straitruns.domain import limits
from straitruns.domain.jsonvalue import json_size
from straitruns.domain.models import ExecutionTrace, Run, UsageTotals
from straitruns.domain.run_filter import IndexValue
from straitruns.domain.timefmt import format_ts, parse_ts

_TIME_FIELDS = (
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
_MAP_FIELDS = ("metadata", "tags")
_BLOB_FIELDS = ("payload", "result")
# Attributes kept in the LIVE item (volatile; merged into the run on read).
LIVE_FIELDS = ("heartbeat_at",)


def _ts(value: datetime | None) -> str | None:
    return format_ts(value) if value else None


def run_item(run: Run) -> tuple[Item, list[Item]]:
    """The run item and the blob items for JSON values too large to keep inline."""
    data = run.model_dump(exclude={"usage_totals", "execution_trace", *LIVE_FIELDS})
    item: Item = {"pk": keys.run_pk(run.id), "sk": keys.RUN_SK, "type": "run"}
    blobs: list[Item] = []
    for name, value in data.items():
        if name in _TIME_FIELDS:
            item[name] = _ts(value)
        elif name in _MAP_FIELDS:
            item[name] = simplejson.dumps(value, separators=(",", ":"))
        elif name in _BLOB_FIELDS and value is not None and json_size(value) > limits.INLINE_JSON_BYTES:
            item[f"{name}_ref"] = True
            blobs.append({"pk": keys.run_pk(run.id), "sk": f"{keys.BLOB_SK_PREFIX}{name}", "body": value})
        else:
            item[name] = value
    if run.execution_trace is not None:
        item["execution_trace"] = run.execution_trace.model_dump_json()
    item["slots"] = list(run.slots) if run.slots else None
    item.update(index_keys(run))
    return item, blobs


def unchanged_since(old: Run) -> tuple[str, dict[str, Any]]:
    """The condition (with its values; `#st` names `status`) under which a write computed from
    `old` may replace the stored run item: the same status, generation and concurrency slots. A
    slot taken after `old` was read (the claim does not move the generation) must not be written
    over, or it would never be given back."""
    values: dict[str, Any] = {":from": old.status.value, ":gen": old.generation}
    if not old.slots:
        return "#st = :from AND generation = :gen AND attribute_not_exists(slots)", values
    values[":slots"] = list(old.slots)
    return "#st = :from AND generation = :gen AND slots = :slots", values


def index_keys(run: Run) -> Item:
    """GSI key attributes of the run item (sparse: absent when the run has no such value)."""
    attrs: Item = {
        keys.SORT_ATTRIBUTE: keys.created_sort_key(run.created_at, run.id),
        "project_pk": keys.project_runs(run.project_id),
        "status_pk": keys.project_status(run.project_id, run.status),
        "job_pk": keys.job_runs(run.job_id),
    }
    if run.batch_id:
        attrs["batch_pk"] = keys.batch_runs(run.batch_id)
    if run.parent_run_id:
        attrs["parent_pk"] = keys.parent_runs(run.parent_run_id)
    if run.wake_at:
        attrs["wake_pk"] = keys.wake_shard(run.id)
        attrs[keys.WAKE_SORT_ATTRIBUTE] = keys.wake_sort_key(run.wake_at, run.id)
    return attrs


def live_item(run: Run, sequence: int) -> Item:
    """The LIVE item of a new run: the event counter, heartbeat and usage totals."""
    return {
        "pk": keys.run_pk(run.id),
        "sk": keys.LIVE_SK,
        "seq": sequence,
        "heartbeat_at": _ts(run.heartbeat_at),
        **run.usage_totals.model_dump(),
    }


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


def blob_keys(item: Item) -> list[tuple[str, str]]:
    """Keys of the blob items a stored run item refers to."""
    return [(item["pk"], f"{keys.BLOB_SK_PREFIX}{name}") for name in _BLOB_FIELDS if item.get(f"{name}_ref")]


def run_from_items(item: Item, live: Item | None, blobs: dict[tuple[str, str], Item]) -> Run:
    """Rebuilds a run from its item, its LIVE item and its blobs."""
    data: dict[str, Any] = {}
    for name, value in item.items():
        if name in Run.model_fields:
            data[name] = value
    for name in _TIME_FIELDS:
        data[name] = parse_ts(item[name]) if item.get(name) else None
    for name in _MAP_FIELDS:
        data[name] = simplejson.loads(item.get(name) or "{}")
    for name in _BLOB_FIELDS:
        if item.get(f"{name}_ref"):
            data[name] = blobs[(item["pk"], f"{keys.BLOB_SK_PREFIX}{name}")]["body"]
    data["slots"] = tuple(item.get("slots") or ())
    if item.get("execution_trace"):
        data["execution_trace"] = ExecutionTrace.model_validate_json(item["execution_trace"])
    if live:
        data["heartbeat_at"] = parse_ts(live["heartbeat_at"]) if live.get("heartbeat_at") else None
        data["usage_totals"] = UsageTotals(**{k: live.get(k, 0) for k in UsageTotals.model_fields})
        # SDK annotations (adapters/store/annotations.py) win over the run item's metadata.
        if live.get("annotations"):
            data["metadata"] = {**data["metadata"], **simplejson.loads(live["annotations"])}
    return Run.model_validate(data)
