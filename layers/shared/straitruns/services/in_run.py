"""The in-run plane (spec 6): what job code does through `/sdk/v1/runs/{runID}/...` with its run
token. `authorize` checks the token and the run's status for one call (spec 1.1); every other method
takes the run it returned. Records are visible to the read endpoints as soon as a method returns.

Status changes (complete, fail, continue, an awaited spawn) go through the RunStateMachine, so they
write their `status_change` event, release slots and wake dependents like any other.
"""

import re
from datetime import timedelta
from typing import Any

from straitruns.adapters.store.annotations import AnnotationsRefused, AnnotationStore
from straitruns.adapters.store.engine import EngineStore
from straitruns.adapters.store.telemetry import TelemetryStore
from straitruns.domain import limits, transitions
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict, NotFound, ValidationFailed
from straitruns.domain.ids import IdFactory, IdKind
from straitruns.domain.in_run import SdkCall, check_event_type, require_within, stored_level, text_size
from straitruns.domain.jsonvalue import dump_json, json_size
from straitruns.domain.models import (
    Checkpoint,
    Event,
    EventLevel,
    Output,
    Run,
    StateEntry,
    StreamChunk,
    ToolCall,
    UsageRecord,
)
from straitruns.domain.output_schema import check_output
from straitruns.domain.statuses import RunStatus
from straitruns.domain.transitions import Step
from straitruns.services.run_family import RunFamily
from straitruns.services.run_state import RunStateMachine
from straitruns.services.run_telemetry import RunTelemetry
from straitruns.services.run_tokens import RunTokenGuard
from straitruns.services.sdk_commands import (
    AnnotateBody,
    CheckpointBody,
    CompleteBody,
    ContinueBody,
    FailBody,
    LogBody,
    OutputBody,
    ProgressBody,
    SpawnBody,
    StateBody,
    StreamBody,
    ToolCallBody,
    UsageBody,
)
from straitruns.services.sub_lists import SubPage, decode_sub_cursor


def _valid_key(key: str) -> bool:
    return re.fullmatch(limits.ENTRY_KEY_PATTERN, key) is not None


def _json(field: str, value: Any, limit: int) -> str:
    """`value` as JSON text. Raises PayloadTooLarge naming `field` when it is over `limit` bytes."""
    text = dump_json(value)
    require_within(field, json_size(text), limit)
    return text


class InRunPlane:
    def __init__(
        self,
        guard: RunTokenGuard,
        telemetry: TelemetryStore,
        reads: RunTelemetry,
        annotations: AnnotationStore,
        engine: EngineStore,
        state: RunStateMachine,
        family: RunFamily,
        clock: Clock,
        ids: IdFactory,
    ) -> None:
        self.guard = guard
        self.telemetry = telemetry
        self.reads = reads
        self.annotations = annotations
        self.engine = engine
        self.state = state
        self.family = family
        self.clock = clock
        self.ids = ids

    def authorize(self, authorization: str | None, run_id: str, call: SdkCall) -> Run:
        """See RunTokenGuard.authorize (401, 403, 404, 410, 401 stale, 409, in that order)."""
        return self.guard.authorize(authorization, run_id, call)

    # Reads --------------------------------------------------------------------------------

    def latest_checkpoint(self, run: Run) -> Checkpoint:
        """Raises NotFound when the run has no checkpoint."""
        checkpoint = self.telemetry.latest_checkpoint(run.id)
        if checkpoint is None:
            raise NotFound("the run has no checkpoint")
        return checkpoint

    def list_state(self, run: Run, limit: int, cursor: str | None) -> SubPage[StateEntry]:
        """The run's state entries by key. Raises BadRequest (cursor)."""
        return self.reads.state_page(run.id, limit, decode_sub_cursor(cursor, "state"))

    def get_state(self, run: Run, key: str) -> StateEntry:
        """Raises NotFound when the run has no entry `key`."""
        entry = self.telemetry.get_state(run.id, key) if _valid_key(key) else None
        if entry is None:
            raise NotFound(f"no state entry '{key}'")
        return entry

    # Records ------------------------------------------------------------------------------

    def heartbeat(self, run: Run) -> bool:
        """Records a heartbeat of the current attempt; True when the run is paused (the caller
        should checkpoint and stop)."""
        self.engine.heartbeat(run.id, self.clock.now())
        return run.status == RunStatus.PAUSED

    def log(self, run: Run, body: LogBody) -> Event:
        """Appends an event. Raises PayloadTooLarge (message, data), ValidationFailed (level, a type
        of the engine's)."""
        require_within("message", text_size(body.message), limits.EVENT_MESSAGE_BYTES)
        data = _json("data", body.data, limits.EVENT_DATA_BYTES) if "data" in body.model_fields_set else None
        level = stored_level(body.level)
        return self._event(run, check_event_type(body.type), level, body.message, data)

    def progress(self, run: Run, body: ProgressBody) -> Event:
        """Appends a `progress` event with data `{percent, step, eta_seconds}`."""
        if body.message is not None:
            require_within("message", text_size(body.message), limits.EVENT_MESSAGE_BYTES)
        data = dump_json({"percent": body.percent, "step": body.step, "eta_seconds": body.eta_seconds})
        return self._event(run, "progress", EventLevel.INFO, body.message, data)

    def checkpoint(self, run: Run, body: CheckpointBody) -> Checkpoint:
        """Stores the run's next checkpoint. Raises PayloadTooLarge (state)."""
        state = _json("state", body.state, limits.STATE_VALUE_BYTES)
        return self.telemetry.append_checkpoint(
            run.id,
            lambda sequence: Checkpoint(
                id=self.ids.new(IdKind.CHECKPOINT),
                run_id=run.id,
                sequence=sequence,
                source=body.source,
                state=state,
                created_at=self.clock.now(),
            ),
        )

    def usage(self, run: Run, body: UsageBody) -> UsageRecord:
        """Stores a usage record and adds it to the run's `usage_totals`."""
        total = body.total_tokens
        if total is None:
            total = body.prompt_tokens + body.completion_tokens
        record = UsageRecord(
            id=self.ids.new(IdKind.USAGE),
            run_id=run.id,
            provider=body.provider,
            model=body.model,
            prompt_tokens=body.prompt_tokens,
            completion_tokens=body.completion_tokens,
            total_tokens=total,
            cost_microusd=body.cost_microusd,
            created_at=self.clock.now(),
        )
        self.telemetry.add_usage(record)
        return record

    def tool_call(self, run: Run, body: ToolCallBody) -> ToolCall:
        """Stores a tool call. Raises PayloadTooLarge (input, output)."""
        given = body.model_fields_set
        call = ToolCall(
            id=self.ids.new(IdKind.TOOL_CALL),
            run_id=run.id,
            tool_name=body.tool_name,
            input=_json("input", body.input, limits.TOOL_CALL_JSON_BYTES) if "input" in given else None,
            output=_json("output", body.output, limits.TOOL_CALL_JSON_BYTES) if "output" in given else None,
            duration_ms=body.duration_ms,
            status=body.status,
            created_at=self.clock.now(),
        )
        self.telemetry.add_tool_call(call)
        return call

    def output(self, run: Run, body: OutputBody) -> Output:
        """Stores (upserts) the output of its key, after checking the value against its schema.
        Raises PayloadTooLarge (value, schema), ValidationFailed (the value does not match the
        schema, naming the failing path; or the schema is not a JSON Schema)."""
        value = _json("value", body.value, limits.STATE_VALUE_BYTES)
        schema = None
        if body.schema_ is not None:
            schema = _json("schema", body.schema_, limits.OUTPUT_SCHEMA_BYTES)
            check_output(body.schema_, body.value)
        output = Output(
            id=self.ids.new(IdKind.OUTPUT),
            run_id=run.id,
            output_key=body.name,
            schema_=schema,
            value=value,
            created_at=self.clock.now(),
        )
        return self.telemetry.upsert_output(output)

    def set_state(self, run: Run, body: StateBody) -> StateEntry:
        """Stores (upserts) a state entry. Raises PayloadTooLarge (value)."""
        value = _json("value", body.value, limits.STATE_VALUE_BYTES)
        entry = StateEntry(run_id=run.id, key=body.key, value=value, updated_at=self.clock.now())
        self.telemetry.put_state(entry)
        return entry

    def delete_state(self, run: Run, key: str) -> None:
        """Removes a state entry; removing one that does not exist changes nothing. Raises NotFound
        for a key no entry can have."""
        if not _valid_key(key):
            raise NotFound(f"no state entry '{key}'")
        self.telemetry.delete_state(run.id, key)

    def stream(self, run: Run, body: StreamBody) -> StreamChunk:
        """Stores a chunk, kept 24 hours (read by `/v1/runs/{id}/stream/chunks`). Raises
        PayloadTooLarge (chunk)."""
        require_within("chunk", text_size(body.chunk), limits.STREAM_CHUNK_BYTES)
        now = self.clock.now()
        return self.telemetry.append_chunk(
            run.id,
            lambda sequence: StreamChunk(
                run_id=run.id,
                stream_id=body.stream_id,
                sequence=sequence,
                chunk=body.chunk,
                done=body.done,
                created_at=self.clock.now(),
            ),
            now + timedelta(seconds=limits.STREAM_CHUNK_TTL_SECS),
        )

    # The run itself -----------------------------------------------------------------------

    def annotate(self, run: Run, body: AnnotateBody) -> Run:
        """Merges the annotations into the run's metadata. Raises ValidationFailed when the metadata
        would pass 32 entries, Conflict when the run's status changed meanwhile."""

        def merge(current: dict[str, str]) -> dict[str, str]:
            merged = {**current, **body.annotations}
            if len({**run.metadata, **merged}) > limits.MAP_ENTRIES:
                raise ValidationFailed(
                    f"metadata may hold at most {limits.MAP_ENTRIES} entries",
                    [{"field": "annotations", "error": "metadata entry limit"}],
                )
            return merged

        try:
            metadata = self.annotations.annotate(run, merge)
        except AnnotationsRefused as exc:
            raise Conflict("status changed concurrently") from exc
        return run.model_copy(update={"metadata": metadata})

    def complete(self, run: Run, body: CompleteBody) -> Run:
        """`completed` with the result (null when none is given). Raises PayloadTooLarge (result),
        Conflict (the run moved on meanwhile)."""
        result = (
            _json("result", body.result, limits.RESULT_BYTES) if "result" in body.model_fields_set else None
        )
        step = transitions.completed(self.clock.now(), result)
        return self.state.apply(run, Step(step.target, "completed through the SDK", step.changes))

    def fail(self, run: Run, body: FailBody) -> Run:
        """`failed` with the error, never retried. Raises PayloadTooLarge (error over 8 KiB),
        Conflict."""
        require_within("error", text_size(body.error), limits.ERROR_BYTES)
        step = transitions.failed(self.clock.now(), body.error, None)
        return self.state.apply(run, Step(step.target, "failed through the SDK", step.changes))

    def spawn(self, run: Run, body: SpawnBody) -> Run:
        """See RunFamily.spawn."""
        return self.family.spawn(run, body)

    def continue_as_new(self, run: Run, body: ContinueBody) -> Run:
        """See RunFamily.continue_as_new."""
        return self.family.continue_as_new(run, body)

    def _event(self, run: Run, kind: str, level: EventLevel, message: str | None, data: str | None) -> Event:
        return self.engine.append_event(
            run.id,
            lambda sequence: Event(
                id=self.ids.new(IdKind.EVENT),
                run_id=run.id,
                sequence=sequence,
                type=kind,
                level=level,
                message=message,
                data=data,
                created_at=self.clock.now(),
            ),
        )
