"""Job dependencies (spec 2.2, 4.8, 5 item 21, 8): the endpoints, runs created `waiting` while a
dependency is unmet, and their release when an upstream run ends.

Upstream runs are driven to a terminal status through `services.state.change` along the engine's
own transitions (queued -> dequeued -> executing -> terminal), which fires the listeners exactly as
the dispatcher does; one test goes through the dispatcher and a real job endpoint.
"""

import json
from typing import Any

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.run_queue import RunMessage, parse_message
from straitruns.adapters.store import keys
from straitruns.adapters.store.dependencies import waiting_partition
from straitruns.domain.dependencies import ALL_RUNS
from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client, effects_pump, make_services
from tests.support.endpoint import JobEndpoint

S = RunStatus


# --- helpers -------------------------------------------------------------------------------


def _depend(api: ApiClient, job: str, on: str, condition: str | None = None) -> dict[str, Any]:
    body = {"depends_on_job_id": on} | ({"condition": condition} if condition else {})
    response = api.http.post(f"/v1/jobs/{job}/dependencies", json=body, headers=api.auth)
    assert response.status_code == 201, response.text
    dependency: dict[str, Any] = response.json()
    return dependency


def _jobs(api: ApiClient, *slugs: str) -> list[str]:
    return [api.create_job(slug)["id"] for slug in slugs]


def _trigger(api: ApiClient, job_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = api.trigger(job_id, body)
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def _stored(api: ApiClient, run_id: str) -> Run:
    run = api.services.runs.get(run_id)
    assert run is not None, f"run {run_id} does not exist"
    return run


def _finish(api: ApiClient, run_id: str, status: RunStatus = S.COMPLETED) -> Run:
    """Claims, starts and ends a queued run as the dispatcher would (its effects are delivered)."""
    state, now = api.services.state, api.clock.now()
    run = _stored(api, run_id)
    run = state.change(
        run, S.DEQUEUED, "dequeued", generation=run.generation + 1, ever_claimed=True, claimed_at=now
    )
    run = state.change(run, S.EXECUTING, "executing", started_at=now)
    finished = state.change(run, status, status.value, finished_at=now)
    effects_pump(api.services).pump()
    return finished


def _run_upstream(api: ApiClient, job_id: str, status: RunStatus = S.COMPLETED, **body: Any) -> Run:
    """Triggers a run of `job_id` and ends it in `status`; the clock then moves on 1 s, so the
    next finish is strictly later (the latest terminal run is the last to finish)."""
    finished = _finish(api, _trigger(api, job_id, body or None)["id"], status)
    api.clock.advance(1)
    return finished


def _drain_queue(api: ApiClient) -> list[RunMessage]:
    """Every message on the run queue, consumed."""
    sqs, url = api.services.queue.client, api.services.queue.queue_url
    messages: list[RunMessage] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        for message in batch:
            messages.append(parse_message(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def _history(api: ApiClient, run_id: str) -> list[tuple[str | None, str, str]]:
    """(from, to, reason) of the run's status changes."""
    changes = [
        event
        for event in api.services.event_log.events_after(run_id, 0, 100)
        if event.type == "status_change"
    ]
    return [
        (data["from"], data["to"], data["reason"]) for data in (json.loads(e.data or "{}") for e in changes)
    ]


def _status(api: ApiClient, run_id: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/runs/{run_id}/dependency-status", headers=api.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the dependency endpoints --------------------------------------------------------------


def test_add_list_and_delete_a_dependency(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")

    created = api.http.post(
        f"/v1/jobs/{down}/dependencies",
        json={"depends_on_job_id": up, "condition": "failed"},
        headers=api.auth,
    )
    listed = api.http.get(f"/v1/jobs/{down}/dependencies", headers=api.auth)
    deleted = api.http.delete(f"/v1/jobs/{down}/dependencies/{created.json()['id']}", headers=api.auth)
    after = api.http.get(f"/v1/jobs/{down}/dependencies", headers=api.auth)

    assert created.status_code == 201, created.text
    dependency = created.json()
    assert set(dependency) == {"id", "job_id", "depends_on_job_id", "condition", "created_at"}
    assert dependency["id"].startswith("dep_")
    assert (dependency["job_id"], dependency["depends_on_job_id"], dependency["condition"]) == (
        down,
        up,
        "failed",
    )
    assert dependency["created_at"] == "2026-11-28T12:00:00.000000Z"
    assert listed.status_code == 200
    assert listed.json() == [dependency]
    assert deleted.status_code == 204
    assert after.json() == []


def test_condition_defaults_to_completed(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")

    assert _depend(api, down, up)["condition"] == "completed"


def test_jobs_may_be_given_by_slug_and_are_stored_by_id(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")

    dependency = _depend(api, "down", "up", "any")

    assert (dependency["job_id"], dependency["depends_on_job_id"]) == (down, up)
    assert api.http.get("/v1/jobs/down/dependencies", headers=api.auth).json() == [dependency]


def test_a_job_cannot_depend_on_itself(api: ApiClient) -> None:
    (job,) = _jobs(api, "solo")

    response = api.http.post(
        f"/v1/jobs/{job}/dependencies", json={"depends_on_job_id": job}, headers=api.auth
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


def test_a_dependency_that_closes_a_cycle_is_422(api: ApiClient) -> None:
    a, b = _jobs(api, "a", "b")
    _depend(api, a, b)

    response = api.http.post(f"/v1/jobs/{b}/dependencies", json={"depends_on_job_id": a}, headers=api.auth)

    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["cycle"] == [b, a, b]
    assert api.http.get(f"/v1/jobs/{b}/dependencies", headers=api.auth).json() == []


def test_a_longer_cycle_is_422(api: ApiClient) -> None:
    a, b, c = _jobs(api, "a", "b", "c")
    _depend(api, a, b)
    _depend(api, b, c)

    response = api.http.post(f"/v1/jobs/{c}/dependencies", json={"depends_on_job_id": a}, headers=api.auth)

    assert response.status_code == 422
    assert response.json()["details"][0]["cycle"] == [c, a, b, c]


def test_a_diamond_is_allowed(api: ApiClient) -> None:
    a, b, c, d = _jobs(api, "a", "b", "c", "d")
    for job, on in ((a, b), (a, c), (b, d), (c, d)):
        _depend(api, job, on)

    assert len(api.http.get(f"/v1/jobs/{a}/dependencies", headers=api.auth).json()) == 2


def test_an_unknown_upstream_job_is_404(api: ApiClient) -> None:
    (down,) = _jobs(api, "down")

    by_id = api.http.post(
        f"/v1/jobs/{down}/dependencies",
        json={"depends_on_job_id": "job_01KAAAAAAAAAAAAAAAAAAAAAAA"},
        headers=api.auth,
    )
    by_slug = api.http.post(
        f"/v1/jobs/{down}/dependencies", json={"depends_on_job_id": "no-such-job"}, headers=api.auth
    )

    assert (by_id.status_code, by_slug.status_code) == (404, 404)


def test_an_upstream_job_of_another_project_is_404(api: ApiClient) -> None:
    (down,) = _jobs(api, "down")
    _, other_key = api.new_project("other")
    other_job = api.http.post(
        "/v1/jobs",
        json={"slug": "theirs", "name": "theirs", "endpoint_url": "http://127.0.0.1:9/run"},
        headers={"Authorization": f"Bearer {other_key}"},
    ).json()["id"]

    response = api.http.post(
        f"/v1/jobs/{down}/dependencies", json={"depends_on_job_id": other_job}, headers=api.auth
    )

    assert response.status_code == 404


def test_dependencies_of_another_projects_job_are_404(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _, other_key = api.new_project("other")
    other = {"Authorization": f"Bearer {other_key}"}

    listed = api.http.get(f"/v1/jobs/{down}/dependencies", headers=other)
    added = api.http.post(f"/v1/jobs/{down}/dependencies", json={"depends_on_job_id": up}, headers=other)

    assert (listed.status_code, added.status_code) == (404, 404)


def test_the_same_dependency_twice_is_409(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)

    again = api.http.post(
        f"/v1/jobs/{down}/dependencies", json={"depends_on_job_id": up, "condition": "any"}, headers=api.auth
    )

    assert again.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"depends_on_job_id": "up", "condition": "never"},
        {"depends_on_job_id": "up", "extra": 1},
        {"condition": "completed"},
        {"depends_on_job_id": 5},
    ],
)
def test_a_malformed_dependency_body_is_422(api: ApiClient, body: dict[str, Any]) -> None:
    _jobs(api, "up", "down")

    response = api.http.post("/v1/jobs/down/dependencies", json=body, headers=api.auth)

    assert response.status_code == 422
    assert response.json()["details"]


def test_deleting_a_dependency_the_job_does_not_have_is_404(api: ApiClient) -> None:
    (down,) = _jobs(api, "down")

    missing = api.http.delete(
        f"/v1/jobs/{down}/dependencies/dep_01KAAAAAAAAAAAAAAAAAAAAAAA", headers=api.auth
    )
    malformed = api.http.delete(f"/v1/jobs/{down}/dependencies/nope", headers=api.auth)

    assert (missing.status_code, malformed.status_code) == (404, 404)


def test_reading_dependencies_needs_jobs_read_and_writing_needs_jobs_write(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    reader = {"Authorization": f"Bearer {api.new_key(api.project_id, ['jobs:read'])}"}

    listed = api.http.get(f"/v1/jobs/{down}/dependencies", headers=reader)
    added = api.http.post(f"/v1/jobs/{down}/dependencies", json={"depends_on_job_id": up}, headers=reader)

    assert (listed.status_code, added.status_code) == (200, 403)


# --- runs wait for their dependencies ------------------------------------------------------


def test_a_run_with_an_unmet_dependency_is_created_waiting_and_not_queued(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    _drain_queue(api)

    run = _trigger(api, down)

    assert run["status"] == "waiting"
    assert _history(api, run["id"]) == [(None, "waiting", "created")]
    assert [message.run_id for message in _drain_queue(api)] == []


def test_a_waiting_run_is_queued_with_a_message_when_its_upstream_completes(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    waiting = _stored(api, _trigger(api, down)["id"])
    upstream_run = _trigger(api, up)["id"]
    _drain_queue(api)
    api.clock.advance(5)

    _finish(api, upstream_run)

    released = _stored(api, waiting.id)
    assert released.status == S.QUEUED
    assert released.generation == waiting.generation + 1
    assert released.queued_at == api.clock.now()
    assert _history(api, waiting.id)[-1] == ("waiting", "queued", "dependencies met")
    assert [(m.run_id, m.generation) for m in _drain_queue(api)] == [(waiting.id, released.generation)]


def test_a_run_whose_dependencies_are_met_starts_queued(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    _run_upstream(api, up)

    run = _trigger(api, down)

    assert run["status"] == "queued"
    assert _history(api, run["id"]) == [(None, "queued", "created")]


def test_every_dependency_must_be_met(api: ApiClient) -> None:
    first, second, down = _jobs(api, "first", "second", "down")
    _depend(api, down, first)
    _depend(api, down, second)
    run = _trigger(api, down)["id"]

    _run_upstream(api, first)
    after_first = _stored(api, run).status
    _run_upstream(api, second)

    assert after_first == S.WAITING
    assert _stored(api, run).status == S.QUEUED


def test_completed_is_not_met_by_a_failed_upstream_run(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up, "completed")
    run = _trigger(api, down)["id"]

    _run_upstream(api, up, S.FAILED)
    after_failure = _stored(api, run).status
    _run_upstream(api, up, S.COMPLETED)

    assert after_failure == S.WAITING
    assert _stored(api, run).status == S.QUEUED


@pytest.mark.parametrize("ending", [S.FAILED, S.TIMED_OUT, S.CRASHED, S.SYSTEM_FAILED, S.DEAD_LETTER])
def test_failed_is_met_by_a_failure(api: ApiClient, ending: RunStatus) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up, "failed")
    run = _trigger(api, down)["id"]

    _run_upstream(api, up, ending)

    assert _stored(api, run).status == S.QUEUED


def test_failed_is_met_by_an_expired_upstream_run(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up, "failed")
    run = _trigger(api, down)["id"]
    upstream_run = _stored(api, _trigger(api, up)["id"])

    api.services.state.change(upstream_run, S.EXPIRED, "expired", finished_at=api.clock.now())
    effects_pump(api.services).pump()

    assert _stored(api, run).status == S.QUEUED


def test_failed_is_not_met_by_a_completed_or_canceled_upstream_run(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up, "failed")
    run = _trigger(api, down)["id"]

    _run_upstream(api, up, S.COMPLETED)
    _run_upstream(api, up, S.CANCELED)

    assert _stored(api, run).status == S.WAITING


def test_any_is_met_by_a_canceled_upstream_run(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up, "any")
    run = _trigger(api, down)["id"]

    _run_upstream(api, up, S.CANCELED)

    assert _stored(api, run).status == S.QUEUED


def test_the_most_recent_terminal_upstream_run_decides(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up, "completed")
    _run_upstream(api, up, S.COMPLETED)
    _run_upstream(api, up, S.FAILED)

    run = _trigger(api, down)

    assert run["status"] == "waiting"


def test_an_idempotency_key_waits_for_the_upstream_run_with_the_same_key(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    run = _trigger(api, down, {"idempotency_key": "order-1"})["id"]

    _run_upstream(api, up)
    _run_upstream(api, up, idempotency_key="order-2")
    before = _stored(api, run).status
    _run_upstream(api, up, idempotency_key="order-1")

    assert before == S.WAITING
    assert _stored(api, run).status == S.QUEUED


def test_a_dependency_key_waits_for_the_upstream_run_with_the_same_key(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    run = _trigger(api, down, {"metadata": {"dependency_key": "day-2026-11-28"}})["id"]
    unkeyed = _trigger(api, down)["id"]

    _run_upstream(api, up, metadata={"dependency_key": "day-2026-11-27"})
    before = _stored(api, run).status
    _run_upstream(api, up, metadata={"dependency_key": "day-2026-11-28"})

    assert before == S.WAITING
    assert _stored(api, run).status == S.QUEUED
    assert _stored(api, unkeyed).status == S.QUEUED  # every upstream run counts for it


def test_a_keyed_upstream_run_counts_for_unkeyed_dependents_too(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    run = _trigger(api, down)["id"]

    _run_upstream(api, up, idempotency_key="order-1")

    assert _stored(api, run).status == S.QUEUED


def test_a_bulk_trigger_holds_back_each_item_by_its_own_scope(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    _run_upstream(api, up, idempotency_key="done")

    response = api.http.post(
        f"/v1/jobs/{down}/trigger/bulk",
        json={"items": [{"idempotency_key": "done"}, {"idempotency_key": "pending"}, {}]},
        headers=api.auth,
    )

    assert response.status_code == 201, response.text
    assert [run["status"] for run in response.json()["runs"]] == ["queued", "waiting", "queued"]


def test_only_the_waiting_runs_a_finish_can_affect_are_read(api: ApiClient) -> None:
    up, other_up, down, other_down = _jobs(api, "up", "other-up", "down", "other-down")
    _depend(api, down, up)
    _depend(api, other_down, other_up)
    bulk = api.http.post(
        f"/v1/jobs/{other_down}/trigger/bulk", json={"items": [{} for _ in range(100)]}, headers=api.auth
    )
    assert [run["status"] for run in bulk.json()["runs"]] == ["waiting"] * 100
    affected = _trigger(api, down)["id"]
    upstream_run = _trigger(api, up)["id"]
    meter = api.services.table.meter
    before = meter.items_read

    _finish(api, upstream_run)

    assert _stored(api, affected).status == S.QUEUED
    # The upstream run's own three status changes, the waiting list of (up, all runs), the one
    # waiting run, its job's dependency and the latest terminal run, its release: a few dozen at
    # most, whatever waits elsewhere.
    assert meter.items_read - before < 40, meter.by_operation
    other_runs = api.services.runs.get_many([run["id"] for run in bulk.json()["runs"]])
    assert {run.status for run in other_runs.values()} == {S.WAITING}


def test_two_finishes_release_a_dependent_exactly_once(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up, "any")
    job = api.services.jobs_store.get(down)
    assert job is not None
    waiting = _stored(api, _trigger(api, down)["id"])

    _run_upstream(api, up, S.COMPLETED)
    _run_upstream(api, up, S.FAILED)
    # A third actor still holding the waiting snapshot tries too, and loses quietly.
    [current] = api.services.dependency_gate.settle(job, [waiting])

    assert current.status == S.QUEUED
    assert current.generation == waiting.generation + 1
    releases = [change for change in _history(api, waiting.id) if change[:2] == ("waiting", "queued")]
    assert len(releases) == 1


def test_an_upstream_finish_during_creation_does_not_strand_the_run(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    upstream_run = _trigger(api, up)["id"]
    gate = api.services.dependency_gate
    hold = gate.hold

    def hold_then_upstream_finishes(job: Any, runs: Any) -> list[Run]:
        held = hold(job, runs)
        _finish(api, upstream_run)  # its finish looks for waiting runs before this one exists
        return held

    monkeypatch.setattr(gate, "hold", hold_then_upstream_finishes)
    _drain_queue(api)

    run = _trigger(api, down)

    assert run["status"] == "queued"
    assert [change[1] for change in _history(api, run["id"])] == ["waiting", "queued"]
    assert run["id"] in [message.run_id for message in _drain_queue(api)]


def test_a_dependency_added_during_creation_still_wakes_the_run(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, down = _jobs(api, "first", "second", "down")
    _depend(api, down, first)
    first_run = _trigger(api, first)["id"]
    gate = api.services.dependency_gate
    hold = gate.hold

    def hold_then_graph_changes(job: Any, runs: Any) -> list[Run]:
        held = hold(job, runs)  # listed under `first` only
        _depend(api, down, second)
        _finish(api, first_run)
        api.clock.advance(1)
        return held

    monkeypatch.setattr(gate, "hold", hold_then_graph_changes)
    run = _trigger(api, down)["id"]
    monkeypatch.undo()
    before = _stored(api, run).status

    _run_upstream(api, second)

    assert before == S.WAITING
    assert _stored(api, run).status == S.QUEUED


def test_deleting_a_dependency_keeps_the_run_listed_under_the_others(api: ApiClient) -> None:
    first, second, down = _jobs(api, "first", "second", "down")
    removed = _depend(api, down, first)
    run = _trigger(api, down)["id"]  # listed under `first` only
    _depend(api, down, second)

    api.http.delete(f"/v1/jobs/{down}/dependencies/{removed['id']}", headers=api.auth)
    before = _stored(api, run).status
    _run_upstream(api, second)

    assert before == S.WAITING
    assert _stored(api, run).status == S.QUEUED
    assert api.services.table.get(waiting_partition(first, ALL_RUNS), run) is None


def test_a_released_run_leaves_the_waiting_index(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    run = _trigger(api, down)["id"]
    partition = waiting_partition(up, ALL_RUNS)
    listed_before = api.services.table.get(partition, run)

    _run_upstream(api, up)

    assert listed_before is not None
    assert api.services.table.get(partition, run) is None
    assert api.services.table.get(keys.dependency_waiters(down), run) is None


def test_a_waiting_run_expires_at_its_expiry(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    _depend(api, down, up)
    run = _trigger(api, down, {"ttl_secs": 60})["id"]

    api.clock.advance(61)
    api.services.scheduler.tick()
    effects_pump(api.services).pump()

    assert _stored(api, run).status == S.EXPIRED
    assert api.services.table.get(waiting_partition(up, ALL_RUNS), run) is None


def test_deleting_the_dependency_releases_the_runs_it_held_back(api: ApiClient) -> None:
    met, unmet, down = _jobs(api, "met", "unmet", "down")
    _depend(api, down, met)
    blocking = _depend(api, down, unmet)
    _run_upstream(api, met)
    run = _trigger(api, down)["id"]
    _drain_queue(api)

    response = api.http.delete(f"/v1/jobs/{down}/dependencies/{blocking['id']}", headers=api.auth)

    assert response.status_code == 204
    assert _stored(api, run).status == S.QUEUED
    assert run in [message.run_id for message in _drain_queue(api)]


def test_a_dependency_added_later_holds_back_runs_still_waiting(api: ApiClient) -> None:
    first, second, down = _jobs(api, "first", "second", "down")
    _depend(api, down, first)
    run = _trigger(api, down)["id"]
    _depend(api, down, second)

    _run_upstream(api, first)
    after_first = _stored(api, run).status
    _run_upstream(api, second)

    assert after_first == S.WAITING
    assert _stored(api, run).status == S.QUEUED


# --- dependency status ---------------------------------------------------------------------


def test_dependency_status_reports_unsatisfied_then_satisfied(api: ApiClient) -> None:
    up, down = _jobs(api, "up", "down")
    dependency = _depend(api, down, up)
    run = _trigger(api, down)["id"]

    before = _status(api, run)
    _run_upstream(api, up)
    after = _status(api, run)

    assert before == {
        "run_id": run,
        "job_id": down,
        "status": "waiting",
        "dependencies": [
            {**dependency, "satisfied": False, "decided_by_run_id": None, "decided_by_status": None}
        ],
        "dependencies_satisfied": False,
    }
    assert (after["status"], after["dependencies_satisfied"]) == ("queued", True)
    assert after["dependencies"][0]["satisfied"] is True


def test_dependency_status_of_a_job_without_dependencies_is_satisfied(api: ApiClient) -> None:
    run = api.run()

    assert _status(api, run["id"])["dependencies"] == []
    assert _status(api, run["id"])["dependencies_satisfied"] is True


def test_dependency_status_of_another_projects_run_is_404(api: ApiClient) -> None:
    run = api.run()
    _, other_key = api.new_project("other")

    theirs = api.http.get(
        f"/v1/runs/{run['id']}/dependency-status", headers={"Authorization": f"Bearer {other_key}"}
    )
    malformed = api.http.get("/v1/runs/nope/dependency-status", headers=api.auth)

    assert (theirs.status_code, malformed.status_code) == (404, 404)


def test_dependency_status_needs_runs_read(api: ApiClient) -> None:
    run = api.run()
    jobs_only = {"Authorization": f"Bearer {api.new_key(api.project_id, ['jobs:read'])}"}

    response = api.http.get(f"/v1/runs/{run['id']}/dependency-status", headers=jobs_only)

    assert response.status_code == 403


# --- through the engine --------------------------------------------------------------------

RUN_TOKEN_SECRET = "dependency-tests-run-token-secret-0123456789"


@pytest.fixture
def engine_api(moto_clients: tuple[Any, Any], clock: FrozenClock) -> ApiClient:
    """The API whose services can dispatch (a run-token secret and a public URL are set)."""
    dynamodb, sqs = moto_clients
    services: Services = make_services(
        dynamodb, sqs, clock, run_token_secret=RUN_TOKEN_SECRET, public_url="http://strait.test"
    )
    return api_client(services, clock)


def test_a_dependent_is_dispatched_after_its_upstream_run_completes(engine_api: ApiClient) -> None:
    api = engine_api
    with JobEndpoint() as endpoint:
        up = api.create_job("up", endpoint_url=endpoint.url)["id"]
        down = api.create_job("down", endpoint_url=endpoint.url)["id"]
        _depend(api, down, up)
        waiting = _trigger(api, down)["id"]
        upstream_run = _trigger(api, up)["id"]

        first = [api.services.dispatcher.handle(message) for message in _drain_queue(api)]
        effects_pump(api.services).pump()  # the stream delivers the upstream run's end
        second = [api.services.dispatcher.handle(message) for message in _drain_queue(api)]

        assert first == ["completed"]
        assert second == ["completed"]
        assert [request.header("X-Run-ID") for request in endpoint.requests] == [upstream_run, waiting]
    assert _stored(api, waiting).status == S.COMPLETED
