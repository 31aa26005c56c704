"""Resources as the API shows them. JSON values are spliced in as stored text (never floats)."""

from datetime import datetime
from typing import Any

import simplejson

from straitruns.domain.models import ApiKey, Batch, Event, Job, Project, Run
from straitruns.domain.timefmt import format_ts
from straitruns.services.access import Caller

_RUN_FIELDS = [
    "id",
    "job_id",
    "project_id",
    "status",
    "attempt",
    "payload",
    "result",
    "metadata",
    "error",
    "triggered_by",
    "scheduled_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "next_retry_at",
    "expires_at",
    "parent_run_id",
    "priority",
    "idempotency_key",
    "job_version",
    "workflow_step_run_id",
    "max_attempts_override",
    "timeout_secs_override",
    "retry_backoff",
    "retry_initial_delay_secs",
    "retry_max_delay_secs",
    "execution_trace",
    "debug_mode",
    "continuation_of",
    "lineage_depth",
    "tags",
    "job_version_id",
    "created_by",
    "batch_id",
    "concurrency_key",
    "created_at",
    "error_class",
    "replayed_from",
    "machine_preset",
    "waiting_reason",
    "usage_totals",
]
# Job fields the store keeps for itself.
_JOB_INTERNAL = frozenset({"upstream_count", "downstream_count", "indexed_payload_since"})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_ts(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


def raw(text: str | None) -> simplejson.RawJSON | None:
    return simplejson.RawJSON(text) if text is not None else None


def run_view(run: Run) -> dict[str, Any]:
    view = {name: _plain(getattr(run, name)) for name in _RUN_FIELDS}
    view["payload"] = raw(run.payload)
    view["result"] = raw(run.result)
    return view


def run_view_size(run: Run) -> int:
    """A close upper estimate of a run's JSON size, without serializing it."""
    return 3000 + len(run.payload) + len(run.result or "") + 600 * (len(run.metadata) + len(run.tags))


def job_view(job: Job) -> dict[str, Any]:
    return {name: _plain(value) for name, value in job if name not in _JOB_INTERNAL}


def project_view(project: Project) -> dict[str, Any]:
    return {name: _plain(value) for name, value in project}


def caller_view(caller: Caller) -> dict[str, Any]:
    return {
        "kind": caller.kind,
        "project_id": caller.project_id,
        "key_id": caller.key_id,
        "name": caller.name,
        "scopes": list(caller.scopes),
    }


def api_key_view(key: ApiKey, raw_key: str | None = None) -> dict[str, Any]:
    view = {
        "id": key.id,
        "project_id": key.project_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "created_at": format_ts(key.created_at),
        "expires_at": format_ts(key.expires_at) if key.expires_at else None,
        "revoked_at": format_ts(key.revoked_at) if key.revoked_at else None,
    }
    if raw_key is not None:
        view["key"] = raw_key
    return view


def batch_view(batch: Batch, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": batch.id,
        "job_id": batch.job_id,
        "item_count": batch.item_count,
        "created_count": batch.created_count,
        "counts_by_status": counts,
        "created_at": format_ts(batch.created_at),
    }


def event_view(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "run_id": event.run_id,
        "sequence": event.sequence,
        "type": event.type,
        "level": event.level.value,
        "message": event.message,
        "data": raw(event.data),
        "created_at": format_ts(event.created_at),
    }
