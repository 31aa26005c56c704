"""Key layout of the single table. Index names and key attributes match template.yaml
(tests/unit/test_store_keys.py holds the two together)."""

from datetime import datetime

from straitruns.domain.timefmt import format_ts

# Global secondary indexes (template.yaml RunsTable.GlobalSecondaryIndexes).
BY_PROJECT = "by_project"
BY_PROJECT_STATUS = "by_project_status"
BY_BATCH = "by_batch"
BY_JOB = "by_job"
BY_PARENT = "by_parent"
BY_VALUE = "by_value"

INDEX_PARTITION_ATTRIBUTE = {
    BY_PROJECT: "project_pk",
    BY_PROJECT_STATUS: "status_pk",
    BY_BATCH: "batch_pk",
    BY_JOB: "job_pk",
    BY_PARENT: "parent_pk",
    BY_VALUE: "value_pk",
}
SORT_ATTRIBUTE = "csk"
TTL_ATTRIBUTE = "expires_ttl"

# Sort keys inside a run's item collection.
RUN_SK = "RUN"
LIVE_SK = "LIVE"
EVENT_SK_PREFIX = "EVT#"
INDEX_SK_PREFIX = "IX#"
BLOB_SK_PREFIX = "BLOB#"
PARK_SK = "PARK"


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def event_sk(sequence: int) -> str:
    return f"{EVENT_SK_PREFIX}{sequence:012d}"


def created_sort_key(created_at: datetime, item_id: str) -> str:
    """`created_at#id`: orders by creation time, then id (fixed-width time, so strings compare)."""
    return f"{format_ts(created_at)}#{item_id}"


def project_runs(project_id: str) -> str:
    return f"P#{project_id}"


def project_status(project_id: str, status: str) -> str:
    return f"PS#{project_id}#{status}"


def batch_runs(batch_id: str) -> str:
    return f"B#{batch_id}"


def job_runs(job_id: str) -> str:
    return f"J#{job_id}"


def parent_runs(parent_id: str) -> str:
    return f"C#{parent_id}"


def value_key(project_id: str, kind: str, digest: str) -> str:
    """Partition of the by_value index for one hashed filter value of a project."""
    return f"V#{project_id}#{kind}#{digest}"


def parked_runs(job_id: str) -> str:
    """Partition of the by_value index listing the runs parked on a paused or disabled job."""
    return f"PARK#{job_id}"


def project_jobs(project_id: str) -> str:
    return f"PJ#{project_id}"
