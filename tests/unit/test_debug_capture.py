"""What debug mode records (spec 5 item 19): secret headers redacted, bodies cut to fit an event,
the job configuration with the run's overrides applied. Pure functions, no store."""

import json
from datetime import UTC, datetime

import pytest

from straitruns.domain import debug_capture
from straitruns.domain.limits import EVENT_DATA_BYTES
from straitruns.domain.models import Job, RetryBackoff, Run
from straitruns.domain.statuses import RunStatus

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
JOB = Job(
    id="job_01JD000000000000000000000A",
    project_id="proj_01JD000000000000000000000A",
    slug="work",
    name="work",
    endpoint_url="https://jobs.example.com/run",
    version_id="jver_01JD000000000000000000000A",
    created_at=NOW,
    updated_at=NOW,
)
RUN = Run(
    id="run_01JD000000000000000000000A",
    job_id=JOB.id,
    project_id=JOB.project_id,
    status=RunStatus.EXECUTING,
    created_by="admin",
    created_at=NOW,
    timeout_secs_override=30,
    retry_backoff=RetryBackoff.FIXED,
    retry_initial_delay_secs=0,
    machine_preset="large-1x",
)


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "x-run-token",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "X-Session-Token",
        "X-Client-Secret",
    ],
)
def test_secret_headers_are_redacted(name: str) -> None:
    assert debug_capture.redact_headers([(name, "s3cr3t")]) == {name: debug_capture.REDACTED}


def test_other_headers_are_kept_and_repeated_ones_joined() -> None:
    headers = [("X-Run-ID", "run_1"), ("Vary", "a"), ("Vary", "b")]

    assert debug_capture.redact_headers(headers) == {"X-Run-ID": "run_1", "Vary": "a, b"}


def test_job_configuration_applies_the_runs_overrides() -> None:
    config = debug_capture.job_configuration(JOB, RUN)

    assert config["timeout_secs"] == 30
    assert config["max_attempts"] == JOB.max_attempts
    assert (config["retry_backoff"], config["retry_initial_delay_secs"]) == ("fixed", 0)
    assert config["retry_max_delay_secs"] == JOB.retry_max_delay_secs
    assert config["machine_preset"] == "large-1x"


def test_small_body_is_kept_whole() -> None:
    record = debug_capture.request_record(RUN, JOB, JOB.endpoint_url, [], b'{"a":1}')

    assert (record["body"], record["body_bytes"], record["body_truncated"]) == ('{"a":1}', 7, False)


@pytest.mark.parametrize("body", [b"x" * 200_000, "é".encode() * 100_000, b'"\\n' * 70_000])
def test_large_body_is_cut_so_the_event_data_fits(body: bytes) -> None:
    record = debug_capture.response_record(1, 200, [("X-Big", "v" * 1000)], body)

    assert len(json.dumps(record, ensure_ascii=False).encode()) <= EVENT_DATA_BYTES
    assert record["body_truncated"] is True
    assert record["body_bytes"] == len(body)
    assert body.decode("utf-8").startswith(record["body"])
