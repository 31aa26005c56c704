"""The text of SSE frames (spec 7): `id`, `event` and a one-line JSON `data` per frame, the `end`
frame (no `id`, so a client's Last-Event-ID stays the last event's sequence), comments and `retry`.
"""

from typing import Any

import simplejson

from straitruns.domain.jsonvalue import load_json
from straitruns.domain.models import Event, StreamChunk
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timefmt import format_ts

KEEPALIVE = ": keepalive\n\n"
# Sent before a connection closes at its bound: the client reconnects after a second.
RECONNECT = "retry: 1000\n\n"
STATUS_CHANGE = "status_change"
PROGRESS = "progress"


def _one_line(value: dict[str, Any]) -> str:
    """Compact JSON on one line. Stored JSON text is spliced in as it is; inside JSON a line break
    can only be whitespace between tokens (strings escape theirs), so it becomes a space."""
    text = simplejson.dumps(value, separators=(",", ":"), ensure_ascii=False, use_decimal=True)
    return text.replace("\r", " ").replace("\n", " ")


def _raw(text: str | None) -> simplejson.RawJSON | None:
    return simplejson.RawJSON(text) if text is not None else None


def frame(sequence: int, name: str, data: dict[str, Any]) -> str:
    return f"id: {sequence}\nevent: {name}\ndata: {_one_line(data)}\n\n"


def event_frame(event: Event) -> str:
    """The frame of one event of the run's log: `status_change`, `progress`, or `event`."""
    timestamp = format_ts(event.created_at)
    if event.type == STATUS_CHANGE:
        change = load_json(event.data) if event.data else {}
        data = {
            "type": STATUS_CHANGE,
            "run_id": event.run_id,
            "from": change.get("from"),
            "to": change.get("to"),
            "attempt": change.get("attempt"),
            "timestamp": timestamp,
        }
        return frame(event.sequence, STATUS_CHANGE, data)
    data = {
        "type": "event",
        "event_type": event.type,
        "run_id": event.run_id,
        "level": event.level.value,
        "message": event.message,
        "data": _raw(event.data),
        "timestamp": timestamp,
    }
    return frame(event.sequence, PROGRESS if event.type == PROGRESS else "event", data)


def chunk_frame(chunk: StreamChunk) -> str:
    data = {
        "type": "stream_chunk",
        "stream_id": chunk.stream_id,
        "chunk": chunk.chunk,
        "done": chunk.done,
        "sequence": chunk.sequence,
        "timestamp": format_ts(chunk.created_at),
    }
    return frame(chunk.sequence, "chunk", data)


def end_frame(status: RunStatus) -> str:
    return f"event: end\ndata: {_one_line({'type': 'end', 'status': status.value})}\n\n"


def status_changed_to(event: Event) -> RunStatus | None:
    """The status a `status_change` event moved the run to (None for any other event)."""
    if event.type != STATUS_CHANGE or not event.data:
        return None
    try:
        return RunStatus(load_json(event.data).get("to"))
    except ValueError:
        return None
