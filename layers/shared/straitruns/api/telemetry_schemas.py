"""Response shapes of the in-run plane and the run telemetry reads, for the OpenAPI document (the
bodies themselves are built in telemetry_views.py)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from straitruns.api.schemas import RunOut


class EventOut(BaseModel):
    id: str
    run_id: str
    sequence: int
    type: str
    level: str
    message: str | None
    data: Any
    created_at: str


class CheckpointOut(BaseModel):
    id: str
    run_id: str
    sequence: int
    source: str
    state: Any
    created_at: str


class UsageOut(BaseModel):
    id: str
    run_id: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_microusd: int
    created_at: str


class ToolCallOut(BaseModel):
    id: str
    run_id: str
    tool_name: str
    input: Any
    output: Any
    duration_ms: int | None
    status: str | None
    created_at: str


class OutputOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    run_id: str
    output_key: str
    schema_: Any = Field(alias="schema")
    value: Any
    created_at: str


class StateEntryOut(BaseModel):
    run_id: str
    key: str
    value: Any
    updated_at: str


class DebugBundleOut(BaseModel):
    run: RunOut
    events: list[EventOut]
    checkpoints: list[CheckpointOut]
    usage: list[UsageOut]
    tool_calls: list[ToolCallOut]
    outputs: list[OutputOut]
    truncated: bool = Field(description="true when a list passed 10,000 items or the whole 5 MB")


class StatusOut(BaseModel):
    status: str
    action: str | None = Field(default=None, description="`pause` while the run is paused")
