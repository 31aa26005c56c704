"""Key layout of the single table. Index names and key attributes match template.yaml
(tests/unit/test_template_consistency.py holds the two together)."""

import hashlib
from datetime import datetime

from straitruns.domain.timefmt import format_ts

# Global secondary indexes (template.yaml RunsTable.GlobalSecondaryIndexes).
BY_PROJECT = "by_project"
BY_PROJECT_STATUS = "by_project_status"
BY_BATCH = "by_batch"
BY_JOB = "by_job"
BY_PARENT = "by_parent"
BY_VALUE = "by_value"
BY_WAKE = "by_wake"

INDEX_PARTITION_ATTRIBUTE = {
    BY_PROJECT: "project_pk",
    BY_PROJECT_STATUS: "status_pk",
    BY_BATCH: "batch_pk",
    BY_JOB: "job_pk",
    BY_PARENT: "parent_pk",
    BY_VALUE: "value_pk",
    BY_WAKE: "wake_pk",
}
WAKE_SORT_ATTRIBUTE = "wake_sk"
WAKE_SHARDS = 16
SORT_ATTRIBUTE = "csk"
TTL_ATTRIBUTE = "expires_ttl"

# Sort keys inside a run's item collection.
RUN_SK = "RUN"  # the run's definition: written once (payload, metadata, links; docs/data-model.md)
STATE_SK = "ST"  # the run's state: small, rewritten by every status change (the outbox)
LIVE_SK = "LIVE"  # counters of the in-run plane (checkpoints, chunks, children, usage, annotations)
EVENT_SK_PREFIX = "EVT#"
CHUNK_SK_PREFIX = "CHUNK#"
INDEX_SK_PREFIX = "IX#"
BLOB_SK_PREFIX = "BLOB#"
PARK_SK = "PARK"
# The in-run plane's items (docs/in-run-plane.md). JSON values are stored as JSON text.
CHECKPOINT_SK_PREFIX = "CKPT#"
USAGE_SK_PREFIX = "USAGE#"
TOOL_CALL_SK_PREFIX = "TOOL#"
OUTPUT_SK_PREFIX = "OUT#"
OUTPUT_ORDER_SK_PREFIX = "OUTAT#"  # outputs by created_at: `OUTAT#<created_at>#<id>` -> output key
STATE_SK_PREFIX = "STATE#"
AWAIT_SK_PREFIX = "AWAIT#"  # children a waiting parent awaits: `AWAIT#<generation>#<child id>`


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def event_sk(sequence: int) -> str:
    return f"{EVENT_SK_PREFIX}{sequence:012d}"


def chunk_sk(sequence: int) -> str:
    return f"{CHUNK_SK_PREFIX}{sequence:012d}"


def checkpoint_sk(sequence: int) -> str:
    return f"{CHECKPOINT_SK_PREFIX}{sequence:012d}"


def usage_sk(usage_id: str) -> str:
    return f"{USAGE_SK_PREFIX}{usage_id}"


def tool_call_sk(tool_call_id: str) -> str:
    return f"{TOOL_CALL_SK_PREFIX}{tool_call_id}"


def output_sk(output_key: str) -> str:
    return f"{OUTPUT_SK_PREFIX}{output_key}"


def output_order_sk(position: str) -> str:
    """`position` is the output's `created_at#id` (see created_sort_key)."""
    return f"{OUTPUT_ORDER_SK_PREFIX}{position}"


def state_sk(key: str) -> str:
    return f"{STATE_SK_PREFIX}{key}"


def awaited_prefix(generation: int) -> str:
    return f"{AWAIT_SK_PREFIX}{generation:012d}#"


def created_sort_key(created_at: datetime, item_id: str) -> str:
    """`created_at#id`: orders by creation time, then id (fixed-width time, so strings compare)."""
    return f"{format_ts(created_at)}#{item_id}"


def write_shard(run_id: str, shards: int) -> int:
    """The write shard of a run among `shards` (stable: every index entry of the run uses it)."""
    if shards <= 1:
        return 0
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:4], "big") % shards


def _sharded(partition: str, shard: int) -> str:
    # Shard 0 keeps the unsuffixed name, so a table written with one shard reads the same with more.
    return partition if shard == 0 else f"{partition}#{shard}"


def project_runs(project_id: str, shard: int = 0) -> str:
    return _sharded(f"P#{project_id}", shard)


def project_status(project_id: str, status: str, shard: int = 0) -> str:
    return _sharded(f"PS#{project_id}#{status}", shard)


def batch_runs(batch_id: str) -> str:
    return f"B#{batch_id}"


def job_runs(job_id: str, shard: int = 0) -> str:
    return _sharded(f"J#{job_id}", shard)


def parent_runs(parent_id: str) -> str:
    return f"C#{parent_id}"


def value_key(project_id: str, kind: str, digest: str) -> str:
    """Partition of the by_value index for one hashed filter value of a project."""
    return f"V#{project_id}#{kind}#{digest}"


def parked_runs(job_id: str) -> str:
    """Partition of the by_value index listing the runs parked on a paused or disabled job."""
    return f"PARK#{job_id}"


def wake_shard(run_id: str) -> str:
    """The timer-index partition of a run (stable, spread over WAKE_SHARDS)."""
    digest = hashlib.sha256(run_id.encode()).digest()
    return f"W#{digest[0] % WAKE_SHARDS}"


def wake_sort_key(wake_at: datetime, run_id: str) -> str:
    return f"{format_ts(wake_at)}#{run_id}"


def result_blob_sk(digest: str) -> str:
    """The item of a large result: named by its content, so two writers racing to complete one
    attempt cannot overwrite each other's result (the winner's state names its own)."""
    return f"{BLOB_SK_PREFIX}result#{digest}"


def concurrency_queue(job_id: str, key_hash: str | None = None) -> str:
    """Partition of the runs waiting for a slot of a job (or of one concurrency key of the job)."""
    return f"CQ#{job_id}" + (f"#{key_hash}" if key_hash else "")


def queue_position(priority: int, created_sort: str) -> str:
    """Sort key in a concurrency queue: higher priority first, then creation order."""
    return f"{10 - priority:02d}#{created_sort}"


def project_jobs(project_id: str) -> str:
    return f"PJ#{project_id}"


# Projects and API keys are listed through the by_project index too (docs/data-model.md).
ALL_PROJECTS = "PROJECTS"


def project_api_keys(project_id: str) -> str:
    return f"PKEYS#{project_id}"


# Job dependencies (docs/dependencies.md) ---------------------------------------------------


def job_dependencies(job_id: str) -> str:
    """Partition of a job's dependency items (sort key `dependency_sk(upstream)`)."""
    return f"DEPS#{job_id}"


def dependency_sk(upstream_job_id: str) -> str:
    return f"ON#{upstream_job_id}"


def dependency_graph(project_id: str) -> str:
    """The version item of a project's dependency graph: every added edge bumps it, so two
    concurrent additions cannot both pass the cycle check."""
    return f"DEPGRAPH#{project_id}"


def latest_terminal(job_id: str) -> str:
    """Partition of a job's "latest terminal run" records, one per scope (sort key `scope_sk`)."""
    return f"LATEST#{job_id}"


def scope_sk(kind: str, digest: str) -> str:
    return f"{kind}#{digest}"


def waiting_on(upstream_job_id: str, kind: str, digest: str) -> str:
    """Partition listing the runs that wait on an upstream job within one scope (sort key: run id)."""
    return f"WAITON#{upstream_job_id}#{kind}#{digest}"


def dependency_waiters(job_id: str) -> str:
    """Partition of the waiter records of a job's runs waiting on dependencies (sort key: run id)."""
    return f"WAITERS#{job_id}"
