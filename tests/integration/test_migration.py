"""The stored-layout migration (docs/deployment.md#migrations): a table written before layout 2 (a
run as one item holding its status, its event counter in LIVE; jobs without dependency counts)
keeps working after `python -m straitruns.migrations`, which is idempotent and resumable."""

from typing import Any

import pytest
import simplejson

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.store import keys
from straitruns.adapters.store.run_codec import LAYOUT_VERSION
from straitruns.domain.ids import IdKind
from straitruns.domain.timefmt import format_ts
from straitruns.migrations.runs_v2 import MARKER_PK, MARKER_SK, layout_version, migrate
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client
from tests.support.endpoint import JobEndpoint
from tests.support.engine import Engine, engine_services


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock) -> Services:
    dynamodb, sqs = moto_clients
    return engine_services(dynamodb, sqs, clock)


@pytest.fixture
def api(services: Services, clock: FrozenClock) -> ApiClient:
    return api_client(services, clock)


@pytest.fixture
def engine(services: Services) -> Engine:
    return Engine(services)


def _legacy_run(api: ApiClient, job_id: str, number: int) -> str:
    """A queued run as the layout before v2 stored it: one RUN item (every field, the index keys),
    a LIVE item holding the event counter, and its creation event."""
    services = api.services
    run_id = services.ids.new(IdKind.RUN)
    now = services.clock.now()
    created = format_ts(now)
    pk = keys.run_pk(run_id)
    run_item = {
        "pk": pk,
        "sk": "RUN",
        "type": "run",
        "id": run_id,
        "job_id": job_id,
        "project_id": api.project_id,
        "status": "queued",
        "attempt": 1,
        "payload": simplejson.dumps({"n": number}),
        "metadata": simplejson.dumps({"team": "blue"}),
        "tags": "{}",
        "triggered_by": "manual",
        "priority": 0,
        "job_version": 1,
        "lineage_depth": 0,
        "created_by": "admin",
        "created_at": created,
        "queued_at": created,
        "expires_at": format_ts(now.replace(year=now.year + 1)),
        "generation": 0,
        "debug_mode": False,
        "ever_claimed": False,
        "fingerprint_streak": 0,
        keys.SORT_ATTRIBUTE: keys.created_sort_key(now, run_id),
        "project_pk": keys.project_runs(api.project_id),
        "status_pk": keys.project_status(api.project_id, "queued"),
        "job_pk": keys.job_runs(job_id),
    }
    event = {
        "pk": pk,
        "sk": keys.event_sk(1),
        "type": "event",
        "id": services.ids.new(IdKind.EVENT),
        "sequence": 1,
        "event_type": "status_change",
        "level": "info",
        "message": "created -> queued",
        "data": simplejson.dumps({"from": None, "to": "queued", "attempt": 1, "reason": "created"}),
        "created_at": created,
    }
    live = {"pk": pk, "sk": "LIVE", "seq": 1, "prompt_tokens": 0}
    services.table.batch_write([run_item, event, live])
    return run_id


def _legacy_job(services: Services, job_id: str) -> None:
    """The job as stored before jobs counted their dependencies."""
    services.table.client.update_item(
        TableName=services.table.name,
        Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}},
        UpdateExpression="REMOVE upstream_count, downstream_count",
    )
    services.table.client.delete_item(
        TableName=services.table.name, Key={"pk": {"S": MARKER_PK}, "sk": {"S": MARKER_SK}}
    )


def _get(api: ApiClient, run_id: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/runs/{run_id}", headers=api.auth)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def test_runs_stored_before_layout_2_are_read_migrated_and_run(
    api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    # Given a job and three runs stored in the old layout, and a job counting no dependency
    job_id = api.create_job("old", endpoint_url=endpoint.url)["id"]
    upstream = api.create_job("upstream", endpoint_url=endpoint.url)["id"]
    body = {"depends_on_job_id": upstream, "condition": "any"}
    assert api.http.post(f"/v1/jobs/{job_id}/dependencies", json=body, headers=api.auth).status_code == 201
    for job in (job_id, upstream):
        _legacy_job(api.services, job)
    runs = [_legacy_run(api, job_id, number) for number in range(3)]
    before = [_get(api, run_id) for run_id in runs]
    listed = api.list_runs(metadata_key="team").json()

    # When the migration runs one page at a time until it is done, then once more
    table = api.services.table
    partial = migrate(table, max_pages=1)
    reports = [partial]
    while not reports[-1].done:
        reports.append(migrate(table, max_pages=1))
    again = migrate(table)

    # Then old runs were readable before, and read the same after
    assert [run["status"] for run in before] == ["queued"] * 3
    assert listed == []  # the old layout had no metadata index for these hand-written runs
    assert sum(report.runs_converted for report in reports) == 3
    assert (again.runs_converted, again.pages) == (0, 0)
    assert layout_version(table) == LAYOUT_VERSION
    assert [_get(api, run_id) for run_id in runs] == before
    # and the jobs count their dependencies
    counted = {job: api.services.jobs_store.get(job) for job in (job_id, upstream)}
    assert (counted[job_id].upstream_count, counted[job_id].downstream_count) == (1, 0)  # type: ignore[union-attr]
    assert (counted[upstream].upstream_count, counted[upstream].downstream_count) == (0, 1)  # type: ignore[union-attr]

    # And the migrated runs run to the end, their events numbered on from the old counter
    for run_id in runs:
        engine.send(run_id)
    engine.drain()
    assert [_get(api, run_id)["status"] for run_id in runs] == ["completed"] * 3
    sequences = [event["sequence"] for event in engine.events(runs[0])]
    assert sequences == list(range(1, len(sequences) + 1))
    assert engine.status_history(runs[0])[:2] == [(None, "queued"), ("queued", "dequeued")]


def test_the_local_stack_marks_a_new_table_current_and_migrates_an_old_one(
    services: Services, api: ApiClient, engine: Engine, endpoint: JobEndpoint
) -> None:
    from straitruns.local.dev import _migrate

    table = services.table
    table.client.delete_item(TableName=table.name, Key={"pk": {"S": MARKER_PK}, "sk": {"S": MARKER_SK}})
    job_id = api.create_job("old", endpoint_url=endpoint.url)["id"]
    run_id = _legacy_run(api, job_id, 1)

    _migrate(table)

    assert layout_version(table) == LAYOUT_VERSION
    assert table.get(keys.run_pk(run_id), keys.STATE_SK) is not None
