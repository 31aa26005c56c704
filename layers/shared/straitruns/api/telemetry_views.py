"""What runs recorded, as the API shows it (the reference's shapes, spec 2.3). JSON values are
spliced in as stored text."""

from collections.abc import Callable
from typing import Any

from straitruns.api.views import raw, run_view_size
from straitruns.domain import limits
from straitruns.domain.models import Checkpoint, Event, Output, Run, StateEntry, ToolCall, UsageRecord
from straitruns.domain.timefmt import format_ts

# Bytes of a record's view besides its JSON values (names, ids, times), rounded up.
_FIXED_BYTES = 400


def checkpoint_view(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "run_id": checkpoint.run_id,
        "sequence": checkpoint.sequence,
        "source": checkpoint.source,
        "state": raw(checkpoint.state),
        "created_at": format_ts(checkpoint.created_at),
    }


def usage_view(record: UsageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "run_id": record.run_id,
        "provider": record.provider,
        "model": record.model,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "total_tokens": record.total_tokens,
        "cost_microusd": record.cost_microusd,
        "created_at": format_ts(record.created_at),
    }


def tool_call_view(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "run_id": call.run_id,
        "tool_name": call.tool_name,
        "input": raw(call.input),
        "output": raw(call.output),
        "duration_ms": call.duration_ms,
        "status": call.status,
        "created_at": format_ts(call.created_at),
    }


def output_view(output: Output) -> dict[str, Any]:
    return {
        "id": output.id,
        "run_id": output.run_id,
        "output_key": output.output_key,
        "schema": raw(output.schema_),
        "value": raw(output.value),
        "created_at": format_ts(output.created_at),
    }


def state_view(entry: StateEntry) -> dict[str, Any]:
    return {
        "run_id": entry.run_id,
        "key": entry.key,
        "value": raw(entry.value),
        "updated_at": format_ts(entry.updated_at),
    }


def view_size(record: object) -> int:
    """A close upper estimate of a record's JSON size, without serializing it: stored JSON values
    count as they are, plain strings six times (escaping a control character takes six)."""
    if isinstance(record, Run):
        return run_view_size(record)
    values: tuple[str | None, ...] = ()
    strings: tuple[str | None, ...] = ()
    if isinstance(record, Event):
        values, strings = (record.data,), (record.message, record.type)
    elif isinstance(record, Checkpoint):
        values, strings = (record.state,), (record.source,)
    elif isinstance(record, UsageRecord):
        strings = (record.provider, record.model)
    elif isinstance(record, ToolCall):
        values, strings = (record.input, record.output), (record.tool_name, record.status)
    elif isinstance(record, Output):
        values, strings = (record.schema_, record.value), (record.output_key,)
    elif isinstance(record, StateEntry):
        values, strings = (record.value,), (record.key,)
    return (
        _FIXED_BYTES
        + sum(len(text.encode()) for text in values if text)
        + sum(6 * len(text.encode()) for text in strings if text)
    )


def response_budget() -> Callable[[object], bool]:
    """Refuses the record that would push a response past the 5 MB cap (spec 1.3)."""
    used = 0

    def fits(record: object) -> bool:
        nonlocal used
        used += view_size(record)
        return used <= limits.RESPONSE_BYTES

    return fits
