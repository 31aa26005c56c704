"""Rules of the in-run plane (spec 6): which calls a run accepts in each status, how SDK levels and
event types are stored, and what the endpoint is told about its latest checkpoint (spec 4.3)."""

from enum import StrEnum

import simplejson

from straitruns.domain import limits
from straitruns.domain.errors import PayloadTooLarge, ValidationFailed
from straitruns.domain.jsonvalue import load_json
from straitruns.domain.models import Checkpoint, EventLevel
from straitruns.domain.statuses import RunStatus


class SdkCall(StrEnum):
    """Every call of `/sdk/v1/runs/{runID}/...`."""

    PAYLOAD = "payload"
    HEARTBEAT = "heartbeat"
    LOG = "log"
    PROGRESS = "progress"
    CHECKPOINT = "checkpoint"
    LATEST_CHECKPOINT = "checkpoints/latest"
    USAGE = "usage"
    TOOL_CALL = "tool-call"
    OUTPUT = "output"
    STATE_READ = "state (read)"
    STATE_WRITE = "state"
    STATE_DELETE = "state (delete)"
    STREAM = "stream"
    ANNOTATE = "annotate"
    SPAWN = "spawn"
    CONTINUE = "continue"
    COMPLETE = "complete"
    FAIL = "fail"


READS: frozenset[SdkCall] = frozenset({SdkCall.PAYLOAD, SdkCall.LATEST_CHECKPOINT, SdkCall.STATE_READ})
# What paused code may still do, so it can checkpoint and stop (spec 6).
PAUSED_WRITES: frozenset[SdkCall] = frozenset(
    {
        SdkCall.HEARTBEAT,
        SdkCall.LOG,
        SdkCall.PROGRESS,
        SdkCall.CHECKPOINT,
        SdkCall.USAGE,
        SdkCall.TOOL_CALL,
        SdkCall.OUTPUT,
        SdkCall.STATE_WRITE,
        SdkCall.STATE_DELETE,
        SdkCall.STREAM,
    }
)
_ACTIVE: frozenset[RunStatus] = frozenset({RunStatus.EXECUTING, RunStatus.WAITING})


def accepts(status: RunStatus, call: SdkCall) -> bool:
    """Whether a non-terminal run in `status` accepts `call`: executing and waiting runs accept every
    call, paused runs the reads and PAUSED_WRITES, every other status the reads only."""
    if status in _ACTIVE:
        return True
    if status == RunStatus.PAUSED:
        return call in READS or call in PAUSED_WRITES
    return call in READS


# Levels the SDKs send (Python's logging names included), as stored (spec 2.3: critical is error).
SDK_LEVELS: dict[str, EventLevel] = {
    "debug": EventLevel.DEBUG,
    "info": EventLevel.INFO,
    "warn": EventLevel.WARN,
    "warning": EventLevel.WARN,
    "error": EventLevel.ERROR,
    "critical": EventLevel.ERROR,
}
# Event types only the engine writes: an SDK event may not pose as one (streams read them).
ENGINE_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "status_change",
        "attempt.started",
        "attempt.finished",
        "late_outcome",
        "debug.request",
        "debug.response",
    }
)


def stored_level(name: str) -> EventLevel:
    """The stored level of an SDK level name. Raises ValidationFailed for an unknown one."""
    level = SDK_LEVELS.get(name.lower())
    if level is None:
        raise ValidationFailed(
            f"unknown level '{name}'; expected one of {', '.join(SDK_LEVELS)}",
            [{"field": "level", "error": "unknown level"}],
        )
    return level


def check_event_type(kind: str) -> str:
    """`kind` when an SDK may write events of that type. Raises ValidationFailed for engine types."""
    if kind in ENGINE_EVENT_TYPES:
        raise ValidationFailed(
            f"event type '{kind}' is reserved for the engine", [{"field": "type", "error": "reserved type"}]
        )
    return kind


def require_within(field: str, size: int, limit: int) -> None:
    """Raises PayloadTooLarge naming `field` when `size` bytes exceed `limit` (spec 1.5: 413)."""
    if size > limit:
        raise PayloadTooLarge(f"{field} is larger than {limit} bytes", [{"field": field, "limit": limit}])


def text_size(text: str) -> int:
    """Bytes of a string as UTF-8, as the limits count them."""
    return len(text.encode("utf-8"))


def last_checkpoint_headers(checkpoint: Checkpoint | None) -> dict[str, str]:
    """What a dispatch tells the endpoint about the run's latest checkpoint (spec 4.3): always its
    sequence (`X-Last-Checkpoint-Sequence`), and its state (`X-Last-Checkpoint`, one line of
    ASCII-escaped JSON) when that fits in 4 KiB; a larger state is read at
    `GET /sdk/v1/runs/{runID}/checkpoints/latest`."""
    if checkpoint is None:
        return {}
    headers = {"X-Last-Checkpoint-Sequence": str(checkpoint.sequence)}
    state = simplejson.dumps(load_json(checkpoint.state), separators=(",", ":"), use_decimal=True)
    if len(state) <= limits.LAST_CHECKPOINT_HEADER_BYTES:
        headers["X-Last-Checkpoint"] = state
    return headers
