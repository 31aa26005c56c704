"""Inputs of the use cases, validated strictly (spec 1.2: no conversion between strings, numbers
and booleans; unknown fields refused). Byte-size limits are checked by the use cases (413)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from straitruns.domain import limits
from straitruns.domain.auth import Scope
from straitruns.domain.jsonvalue import InvalidJsonValue, check_value
from straitruns.domain.models import RetryBackoff
from straitruns.domain.timefmt import parse_ts


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        return parse_ts(value)
    raise ValueError("expected an RFC 3339 date-time string")


def _json_value(value: Any) -> Any:
    try:
        check_value(value)
    except InvalidJsonValue as exc:
        raise ValueError(str(exc)) from exc
    return value


def _string_map(value: dict[str, str]) -> dict[str, str]:
    if len(value) > limits.MAP_ENTRIES:
        raise ValueError(f"at most {limits.MAP_ENTRIES} entries")
    return value


_SCOPE_NAMES = tuple(scope.value for scope in Scope)


def _scope(value: str) -> str:
    if value not in _SCOPE_NAMES:
        raise ValueError(f"unknown scope; expected one of {', '.join(_SCOPE_NAMES)}")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
ScopeName = Annotated[str, AfterValidator(_scope)]
# An arbitrary JSON value (payload, state, ...): at most JSON_MAX_DEPTH levels deep, counted from
# the value itself rather than from the body that carries it.
JsonValue = Annotated[Any, AfterValidator(_json_value)]
MapKey = Annotated[str, StringConstraints(pattern=limits.MAP_KEY_PATTERN)]
MapValue = Annotated[str, StringConstraints(max_length=limits.MAP_VALUE_CHARS)]
StringMap = Annotated[dict[MapKey, MapValue], AfterValidator(_string_map)]
Slug = Annotated[str, StringConstraints(pattern=limits.SLUG_PATTERN)]
PayloadPath = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=limits.PAYLOAD_PATH_CHARS, pattern=limits.PAYLOAD_PATH_PATTERN
    ),
]
Key = Annotated[str, StringConstraints(min_length=1, max_length=limits.KEY_CHARS)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
# Enum values arrive as JSON strings; strict mode would only take enum members.
Backoff = Annotated[RetryBackoff, Field(strict=False)]


class Command(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class NoFields(Command):
    """The body of a route that takes no fields: none, or `{}` (malformed JSON 400, any field 422)."""


class CreateProject(Command):
    name: Name


class CreateApiKey(Command):
    name: Name
    scopes: list[ScopeName] | None = Field(default=None, min_length=1, max_length=6)
    expires_at: Timestamp | None = None


_JOB_SETTINGS_DOC = "Job settings (spec 2.2); every field but slug, name and endpoint_url is optional."


class JobSettings(Command):
    __doc__ = _JOB_SETTINGS_DOC
    enabled: bool | None = None
    paused: bool | None = None
    max_attempts: int | None = Field(
        default=None, ge=limits.MAX_ATTEMPTS_RANGE[0], le=limits.MAX_ATTEMPTS_RANGE[1]
    )
    timeout_secs: int | None = Field(
        default=None, ge=limits.TIMEOUT_SECS_RANGE[0], le=limits.TIMEOUT_SECS_RANGE[1]
    )
    run_ttl_secs: int | None = Field(
        default=None, ge=limits.RUN_TTL_SECS_RANGE[0], le=limits.RUN_TTL_SECS_RANGE[1]
    )
    retry_backoff: Backoff | None = None
    retry_initial_delay_secs: int | None = Field(
        default=None, ge=limits.RETRY_DELAY_SECS_RANGE[0], le=limits.RETRY_DELAY_SECS_RANGE[1]
    )
    retry_max_delay_secs: int | None = Field(
        default=None, ge=limits.RETRY_DELAY_SECS_RANGE[0], le=limits.RETRY_DELAY_SECS_RANGE[1]
    )
    max_concurrency: int | None = Field(default=None, ge=1, le=10_000)
    max_concurrency_per_key: int | None = Field(default=None, ge=1, le=10_000)
    poison_pill_threshold: int | None = Field(default=None, ge=0, le=100)
    tags: StringMap | None = None
    indexed_payload_paths: list[PayloadPath] | None = Field(
        default=None,
        max_length=limits.INDEXED_PAYLOAD_PATHS,
        description=(
            "Up to 8 dotted payload paths (`order.id`, `items[]`) whose values are indexed for "
            "payload_contains on this job's runs; each indexed path costs write units per run "
            "(docs/data-model.md)."
        ),
    )
    default_run_metadata: StringMap | None = None


class CreateJob(JobSettings):
    slug: Slug
    name: Name
    endpoint_url: Url


class UpdateJob(JobSettings):
    slug: Slug | None = None
    name: Name | None = None
    endpoint_url: Url | None = None


class RunOptions(Command):
    """What a trigger may set on a run (one item of a bulk trigger sets a subset)."""

    payload: JsonValue = None
    metadata: StringMap | None = None
    tags: StringMap | None = None
    priority: int | None = Field(default=None, ge=limits.PRIORITY_MIN, le=limits.PRIORITY_MAX)
    scheduled_at: Timestamp | None = None
    idempotency_key: Key | None = None
    concurrency_key: Key | None = None


class BulkTriggerItem(RunOptions):
    pass


class TriggerRun(RunOptions):
    ttl_secs: int | None = Field(
        default=None, ge=limits.RUN_TTL_SECS_RANGE[0], le=limits.RUN_TTL_SECS_RANGE[1]
    )
    debug_mode: bool | None = None
    max_attempts_override: int | None = Field(
        default=None, ge=limits.MAX_ATTEMPTS_RANGE[0], le=limits.MAX_ATTEMPTS_RANGE[1]
    )
    timeout_secs_override: int | None = Field(
        default=None, ge=limits.TIMEOUT_SECS_RANGE[0], le=limits.TIMEOUT_SECS_RANGE[1]
    )
    retry_backoff: Backoff | None = None
    retry_initial_delay_secs: int | None = Field(
        default=None, ge=limits.RETRY_DELAY_SECS_RANGE[0], le=limits.RETRY_DELAY_SECS_RANGE[1]
    )
    retry_max_delay_secs: int | None = Field(
        default=None, ge=limits.RETRY_DELAY_SECS_RANGE[0], le=limits.RETRY_DELAY_SECS_RANGE[1]
    )


class BulkTrigger(Command):
    items: list[BulkTriggerItem] = Field(min_length=1, max_length=limits.BULK_TRIGGER_ITEMS)
