"""Bodies of the in-run plane (spec 6). Types are strict as everywhere (spec 1.2), but unknown fields
are ignored: SDKs evolve. Byte-size limits are checked by the use cases (413)."""

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from straitruns.domain import limits
from straitruns.services.commands import JsonValue, StringMap

Label = Annotated[str, StringConstraints(min_length=1, max_length=limits.LABEL_CHARS)]
EntryKey = Annotated[str, StringConstraints(pattern=limits.ENTRY_KEY_PATTERN)]
StreamId = Annotated[str, StringConstraints(min_length=1, max_length=limits.STREAM_ID_CHARS)]
Count = Annotated[int, Field(ge=0, le=limits.COUNTER_MAX)]
JobRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _number(value: Any) -> Decimal:
    # Bodies are parsed exactly (fractions as Decimal): take any JSON number, never a bool or string.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("expected a number")
    return Decimal(value)


Number = Annotated[Decimal, BeforeValidator(_number)]


class SdkBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class LogBody(SdkBody):
    message: str
    level: str = Field(default="info", description="debug | info | warn | error (warning, critical accepted)")
    type: Label = Field(
        default="log", description="Any type but the engine's (status_change, attempt.*, ...)"
    )
    data: JsonValue = None


class ProgressBody(SdkBody):
    percent: Number = Field(ge=0, le=100)
    message: str | None = None
    step: Label | int | None = None
    eta_seconds: Number | None = Field(default=None, ge=0, le=limits.COUNTER_MAX)


class CheckpointBody(SdkBody):
    state: JsonValue = Field(description="Required; any JSON value")
    source: Label = "sdk"


class UsageBody(SdkBody):
    provider: Label
    model: Label
    prompt_tokens: Count = 0
    completion_tokens: Count = 0
    total_tokens: Count | None = Field(default=None, description="Default: prompt + completion")
    cost_microusd: Count = 0


class ToolCallBody(SdkBody):
    tool_name: Label
    input: JsonValue = None
    output: JsonValue = None
    duration_ms: Count | None = None
    status: Label | None = None


class OutputBody(SdkBody):
    output_key: EntryKey | None = None
    key: EntryKey | None = Field(default=None, description="The same as output_key (older SDKs)")
    value: JsonValue = Field(description="Required; any JSON value")
    schema_: JsonValue = Field(default=None, alias="schema", description="A JSON Schema the value must match")

    @model_validator(mode="after")
    def _one_key(self) -> "OutputBody":
        if self.output_key is None and self.key is None:
            raise ValueError("output_key (or key) is required")
        if self.output_key is not None and self.key is not None and self.output_key != self.key:
            raise ValueError("output_key and key differ")
        return self

    @property
    def name(self) -> str:
        return str(self.output_key or self.key)


class StateBody(SdkBody):
    key: EntryKey
    value: JsonValue = Field(description="Required; any JSON value")


class StreamBody(SdkBody):
    chunk: str
    stream_id: StreamId = "default"
    done: bool = False


class AnnotateBody(SdkBody):
    annotations: StringMap = Field(min_length=1)


class SpawnBody(SdkBody):
    job_slug: JobRef | None = Field(default=None, description="The job, by slug (or id)")
    job_id: JobRef | None = None
    payload: JsonValue = None
    await_completion: bool = False
    await_timeout_secs: int = Field(
        default=limits.AWAIT_TIMEOUT_SECS_DEFAULT,
        ge=limits.AWAIT_TIMEOUT_SECS_RANGE[0],
        le=limits.AWAIT_TIMEOUT_SECS_RANGE[1],
    )
    project_id: str | None = Field(default=None, description="Must be the run's project")


class ContinueBody(SdkBody):
    payload: JsonValue = Field(default=None, description="Default: this run's payload")


class CompleteBody(SdkBody):
    result: JsonValue = None


class FailBody(SdkBody):
    error: str


SDK_BODIES: tuple[type[BaseModel], ...] = (
    LogBody,
    ProgressBody,
    CheckpointBody,
    UsageBody,
    ToolCallBody,
    OutputBody,
    StateBody,
    StreamBody,
    AnnotateBody,
    SpawnBody,
    ContinueBody,
    CompleteBody,
    FailBody,
)
