"""Domain models. JSON values are held as canonical JSON text (`JsonText`), never as floats."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from straitruns.domain.jsonvalue import JsonText
from straitruns.domain.statuses import RunStatus


class RetryBackoff(StrEnum):
    EXPONENTIAL = "exponential"
    LINEAR = "linear"
    FIXED = "fixed"


class TriggeredBy(StrEnum):
    MANUAL = "manual"
    RETRY = "retry"
    SPAWN = "spawn"


class ErrorClass(StrEnum):
    CLIENT = "client"
    AUTH = "auth"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    HEARTBEAT = "heartbeat"
    SYSTEM = "system"
    CANCELED = "canceled"


class WaitingReason(StrEnum):
    """Why a non-terminal run is not moving (a field of the run, docs/engine.md)."""

    JOB_PAUSED = "job_paused"  # queued, parked until its paused or disabled job is resumed
    CONCURRENCY_LIMIT = "concurrency_limit"  # queued, waiting in its job's queue for a free slot
    DEPENDENCIES = "dependencies"  # waiting for the upstream runs its job depends on
    CHILDREN = "children"  # waiting for the child runs it awaits


class EventLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExecutionTrace(_Model):
    queue_wait_ms: int = 0
    dequeue_ms: int = 0
    connect_ms: int = 0
    ttfb_ms: int = 0
    transfer_ms: int = 0
    total_ms: int = 0
    dispatch_ms: int = 0


class UsageTotals(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_microusd: int = 0


class Project(_Model):
    id: str
    name: str
    created_at: datetime


class ApiKey(_Model):
    """A stored API key: only the SHA-256 of the raw key is kept."""

    id: str
    project_id: str
    name: str
    scopes: tuple[str, ...]
    key_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class Job(_Model):
    id: str
    project_id: str
    slug: str
    name: str
    endpoint_url: str
    enabled: bool = True
    paused: bool = False
    max_attempts: int = 3
    timeout_secs: int = 300
    run_ttl_secs: int = 86_400
    retry_backoff: RetryBackoff = RetryBackoff.EXPONENTIAL
    retry_initial_delay_secs: int = 1
    retry_max_delay_secs: int = 3600
    max_concurrency: int | None = None
    max_concurrency_per_key: int | None = None
    poison_pill_threshold: int = 0
    tags: dict[str, str] = Field(default_factory=dict)
    # Dotted payload paths (`order.id`, `items[]`) whose values the store indexes for
    # `payload_contains` (docs/data-model.md gives the cost).
    indexed_payload_paths: tuple[str, ...] = ()
    # Internal: since when the runs of the job are indexed by `indexed_payload_paths` (runs created
    # before are read from the job's partition and checked instead).
    indexed_payload_since: datetime | None = None
    default_run_metadata: dict[str, str] = Field(default_factory=dict)
    version: int = 1
    version_id: str
    created_at: datetime
    updated_at: datetime
    # Internal, never shown: how many jobs this job depends on, and how many depend on it (kept by
    # the dependency store; None on a job stored before they were counted: then look).
    upstream_count: int | None = None
    downstream_count: int | None = None


class Batch(_Model):
    id: str
    project_id: str
    job_id: str
    item_count: int
    created_count: int
    created_at: datetime


class Run(_Model):
    """A run: the reference's fields, the spec's additions, and internal bookkeeping."""

    id: str
    job_id: str
    project_id: str
    status: RunStatus
    attempt: int = 1
    payload: JsonText = "{}"
    result: JsonText | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    error: str | None = None
    triggered_by: TriggeredBy = TriggeredBy.MANUAL
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    next_retry_at: datetime | None = None
    expires_at: datetime | None = None
    parent_run_id: str | None = None
    priority: int = 0
    idempotency_key: str | None = None
    job_version: int = 1
    workflow_step_run_id: str | None = None
    max_attempts_override: int | None = None
    timeout_secs_override: int | None = None
    retry_backoff: RetryBackoff | None = None
    retry_initial_delay_secs: int | None = None
    retry_max_delay_secs: int | None = None
    execution_trace: ExecutionTrace | None = None
    debug_mode: bool = False
    continuation_of: str | None = None
    lineage_depth: int = 0
    tags: dict[str, str] = Field(default_factory=dict)
    job_version_id: str | None = None
    created_by: str
    batch_id: str | None = None
    concurrency_key: str | None = None
    created_at: datetime
    error_class: ErrorClass | None = None
    replayed_from: str | None = None
    machine_preset: str | None = None
    waiting_reason: WaitingReason | None = None
    usage_totals: UsageTotals = Field(default_factory=UsageTotals)
    # Internal, never shown: dispatch generation (spec 2.1), the forward continue link, and
    # whether the run was ever claimed (only a never-claimed run can expire).
    generation: int = 0
    continued_by: str | None = None
    ever_claimed: bool = False
    # Engine bookkeeping: when the scheduler must look at the run next (timer index), when the
    # current attempt was claimed and must end, when the run last became queued, and the poison-pill
    # streak (the last failure's fingerprint and how many attempts in a row ended with it).
    wake_at: datetime | None = None
    claimed_at: datetime | None = None
    timeout_at: datetime | None = None
    queued_at: datetime | None = None
    error_fingerprint: str | None = None
    fingerprint_streak: int = 0
    # Concurrency counters this run holds a slot in (released with the transition that leaves
    # dequeued/executing, so exactly once).
    slots: tuple[str, ...] = ()
    # The awaited children whose end put this run back in the queue (sent as X-Resumed-After).
    resumed_after: tuple[str, ...] = ()
    # The concurrency queue the run waits in for a slot (services/concurrency.py), or None.
    slot_queue: str | None = None
    # Store bookkeeping, as read: the last event sequence taken and how many of the run's events
    # are still kept inline in its state item (adapters/store/run_codec.py).
    event_seq: int = 0
    inline_events: int = 0

    @property
    def is_terminal(self) -> bool:
        from straitruns.domain.statuses import is_terminal

        return is_terminal(self.status)


class Event(_Model):
    id: str
    run_id: str
    sequence: int
    type: str
    level: EventLevel
    message: str | None = None
    data: JsonText | None = None
    created_at: datetime


class Checkpoint(_Model):
    id: str
    run_id: str
    sequence: int
    source: str = "sdk"
    state: JsonText
    created_at: datetime


class UsageRecord(_Model):
    id: str
    run_id: str
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_microusd: int = 0
    created_at: datetime


class ToolCall(_Model):
    id: str
    run_id: str
    tool_name: str
    input: JsonText | None = None
    output: JsonText | None = None
    duration_ms: int | None = None
    status: str | None = None
    created_at: datetime


class Output(_Model):
    id: str
    run_id: str
    output_key: str
    schema_: JsonText | None = Field(default=None, alias="schema")
    value: JsonText
    created_at: datetime

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class StateEntry(_Model):
    run_id: str
    key: str
    value: JsonText
    updated_at: datetime


class StreamChunk(_Model):
    run_id: str
    stream_id: str
    sequence: int
    chunk: str
    done: bool = False
    created_at: datetime


class ChangeRecord(_Model):
    """A run's status change as the outbox delivers it to the effects function: which run, where it
    stands, and the effects the change asked for (docs/engine.md#effects)."""

    run_id: str
    job_id: str
    parent_run_id: str | None = None
    status: RunStatus
    generation: int
    effects: frozenset[str] = frozenset()
    released_slots: tuple[str, ...] = ()
    slot_queue: str | None = None
    sequence: int = 0
