"""Putting a run in any status for a test: it is triggered through the API, then moved along the
transitions the engine itself takes (spec 3), through the run state machine, so its events, slots
and wake-ups are what they would be."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from straitruns.adapters.store.runs import NewRun
from straitruns.domain.ids import IdKind
from straitruns.domain.models import ErrorClass, Run, TriggeredBy
from straitruns.domain.statuses import NON_TERMINAL, TERMINAL, RunStatus
from straitruns.domain.timefmt import format_ts
from straitruns.services.run_state import status_change_event, with_wake
from straitruns.wiring import Services
from tests.support.app import ApiClient, effects_pump

S = RunStatus
_DISPATCHED = [S.DEQUEUED, S.EXECUTING]
# The transitions after creation (queued, or delayed for DELAYED) that lead to each status.
PATHS: dict[RunStatus, list[RunStatus]] = {
    S.DELAYED: [],
    S.QUEUED: [],
    S.DEQUEUED: [S.DEQUEUED],
    S.EXECUTING: _DISPATCHED,
    S.WAITING: [*_DISPATCHED, S.WAITING],
    S.PAUSED: [S.PAUSED],
    S.REPLAY_STAGED: [*_DISPATCHED, S.DEAD_LETTER, S.REPLAY_STAGED],
    S.COMPLETED: [*_DISPATCHED, S.COMPLETED],
    S.FAILED: [*_DISPATCHED, S.FAILED],
    S.TIMED_OUT: [*_DISPATCHED, S.TIMED_OUT],
    S.CRASHED: [*_DISPATCHED, S.CRASHED],
    S.SYSTEM_FAILED: [*_DISPATCHED, S.SYSTEM_FAILED],
    S.DEAD_LETTER: [*_DISPATCHED, S.DEAD_LETTER],
    S.CANCELED: [S.CANCELED],
    S.EXPIRED: [S.EXPIRED],
}
ALL_STATUSES = sorted(RunStatus)
TERMINAL_STATUSES = sorted(TERMINAL)
NON_TERMINAL_STATUSES = sorted(NON_TERMINAL)


def others(*statuses: RunStatus) -> list[RunStatus]:
    """Every status but these."""
    return [status for status in ALL_STATUSES if status not in statuses]


def move(services: Services, run: Run, target: RunStatus) -> Run:
    """One transition with the fields the engine sets along with it."""
    now = services.clock.now()
    changes: dict[str, Any] = {}
    if target == S.DEQUEUED:
        changes = {"generation": run.generation + 1, "ever_claimed": True, "claimed_at": now}
    elif target == S.EXECUTING:
        changes = {"started_at": now, "heartbeat_at": now, "timeout_at": now + timedelta(seconds=300)}
    elif target in TERMINAL and target != S.CANCELED:
        changes = {"finished_at": now, "error": None if target == S.COMPLETED else f"test {target.value}"}
    elif target == S.CANCELED:
        changes = {"finished_at": now, "error": "canceled by user", "error_class": ErrorClass.CANCELED}
    return services.state.change(run, target, "test setup", **changes)


def drive(services: Services, run_id: str, target: RunStatus) -> Run:
    """Moves a just-created run to `target` along PATHS (the effects of each change delivered)."""
    run = services.runs.get(run_id)
    assert run is not None, run_id
    for status in PATHS[target]:
        run = move(services, run, status)
    assert run.status == target
    effects_pump(services).pump()
    return services.runs.get(run_id) or run


def run_in_status(api: ApiClient, status: RunStatus, job: str = "steer", **trigger: Any) -> str:
    """A run of `job` (created on first use) in `status`; `trigger` adds to the trigger body."""
    body: dict[str, Any] = {"payload": {"n": 1}, **trigger}
    if status == S.DELAYED and "scheduled_at" not in body:
        body["scheduled_at"] = format_ts(api.clock.now() + timedelta(hours=1))
    run_id = str(api.run(body, job=job)["id"])
    drive(api.services, run_id, status)
    return run_id


def child_of(services: Services, parent: Run, status: RunStatus) -> Run:
    """A child of `parent` stored as a spawn stores it, then moved to `status`."""
    now = services.clock.now()
    child = Run(
        id=services.ids.new(IdKind.RUN),
        job_id=parent.job_id,
        project_id=parent.project_id,
        status=S.QUEUED,
        parent_run_id=parent.id,
        triggered_by=TriggeredBy.SPAWN,
        created_by=f"run:{parent.id}",
        created_at=now,
        queued_at=now,
        expires_at=now + timedelta(days=1),
    )
    child = with_wake(child, now, services.policy)
    services.runs.create(child, status_change_event(services.ids, services.clock, child, None, "created", 1))
    return drive(services, child.id, status)


def seed_runs(services: Services, runs: list[Run], payload_paths: tuple[str, ...] = ()) -> None:
    """Stores runs as a trigger stores them (definition, state holding the creation event, index
    items, `payload_paths` their job's indexed payload paths), in batch writes: moto copies the
    whole table on every transaction, so seeding thousands of runs through the API would take
    minutes there."""
    new_runs = [NewRun(run, services.state.creation_events(run), payload_paths=payload_paths) for run in runs]
    services.runs.create_many(new_runs)
