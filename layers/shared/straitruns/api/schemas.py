"""Response shapes for the OpenAPI document (the bodies themselves are built in views.py)."""

from typing import Any, Literal

from pydantic import BaseModel

from straitruns.domain.models import ExecutionTrace, UsageTotals


class ErrorOut(BaseModel):
    error: str
    message: str
    code: str
    request_id: str
    details: list[dict[str, Any]] | None = None


class RunOut(BaseModel):
    id: str
    job_id: str
    project_id: str
    status: str
    attempt: int
    payload: Any
    result: Any
    metadata: dict[str, str]
    error: str | None
    triggered_by: str
    scheduled_at: str | None
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    next_retry_at: str | None
    expires_at: str | None
    parent_run_id: str | None
    priority: int
    idempotency_key: str | None
    job_version: int
    workflow_step_run_id: str | None
    max_attempts_override: int | None
    timeout_secs_override: int | None
    retry_backoff: str | None
    retry_initial_delay_secs: int | None
    retry_max_delay_secs: int | None
    execution_trace: ExecutionTrace | None
    debug_mode: bool
    continuation_of: str | None
    lineage_depth: int
    tags: dict[str, str]
    job_version_id: str | None
    created_by: str
    batch_id: str | None
    concurrency_key: str | None
    created_at: str
    error_class: str | None
    replayed_from: str | None
    machine_preset: str | None
    waiting_reason: str | None
    usage_totals: UsageTotals


class JobOut(BaseModel):
    id: str
    project_id: str
    slug: str
    name: str
    endpoint_url: str
    enabled: bool
    paused: bool
    max_attempts: int
    timeout_secs: int
    run_ttl_secs: int
    retry_backoff: str
    retry_initial_delay_secs: int
    retry_max_delay_secs: int
    max_concurrency: int | None
    max_concurrency_per_key: int | None
    poison_pill_threshold: int
    tags: dict[str, str]
    default_run_metadata: dict[str, str]
    version: int
    version_id: str
    created_at: str
    updated_at: str


class ProjectOut(BaseModel):
    id: str
    name: str
    created_at: str


class MeOut(BaseModel):
    kind: Literal["api_key", "admin"]
    project_id: str | None
    key_id: str | None
    name: str | None
    scopes: list[str]


class HealthOut(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str]


class ApiKeyOut(BaseModel):
    id: str
    project_id: str
    name: str
    scopes: list[str]
    key: str | None = None
    created_at: str
    expires_at: str | None
    revoked_at: str | None = None


class BatchOut(BaseModel):
    id: str
    job_id: str
    item_count: int
    created_count: int
    counts_by_status: dict[str, int]
    created_at: str


class BulkTriggerEntryError(BaseModel):
    error: str
    index: int


class BulkTriggerOut(BaseModel):
    batch_id: str | None
    runs: list[RunOut | BulkTriggerEntryError]
    total: int
    created: int


class DependencyOut(BaseModel):
    id: str
    job_id: str
    depends_on_job_id: str
    condition: str
    created_at: str


class DependencyStateOut(DependencyOut):
    satisfied: bool
    decided_by_run_id: str | None
    decided_by_status: str | None


class DependencyStatusOut(BaseModel):
    run_id: str
    job_id: str
    status: str
    dependencies: list[DependencyStateOut]
    dependencies_satisfied: bool


class SseTokenOut(BaseModel):
    token: str
    expires_at: str


class BulkItemOut(BaseModel):
    id: str
    status: str
    error: str | None


class BulkCancelOut(BaseModel):
    results: list[BulkItemOut]
    total: int
    canceled: int
    failed: int


class BulkCancelAllOut(BulkCancelOut):
    has_more: bool
    descendants_canceled: int


class SkippedRunOut(BaseModel):
    id: str
    reason: str


class BulkDlqReplayOut(BaseModel):
    replayed: list[RunOut]
    count: int
    skipped: list[SkippedRunOut]


class BulkReplayVerboseOut(BaseModel):
    runs: list[RunOut]
    skipped: list[SkippedRunOut]


class IdempotencyResetOut(BaseModel):
    status: str
    run_id: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}
