"""The run store on DynamoDB Local: what is written is read back, and status changes race safely."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from straitruns.domain.errors import Conflict
from straitruns.domain.ids import IdKind
from straitruns.domain.models import Run
from straitruns.domain.run_filter import RunFilter
from straitruns.domain.statuses import RunStatus
from straitruns.services.run_state import status_change_event
from straitruns.wiring import Services

pytestmark = pytest.mark.ddblocal


def _store_run(services: Services, **fields: object) -> Run:
    run = Run.model_validate(
        {
            "id": services.ids.new(IdKind.RUN),
            "job_id": "job_01J0000000000000000000000A",
            "project_id": "proj_01J0000000000000000000000A",
            "status": RunStatus.QUEUED,
            "created_by": "admin",
            "created_at": datetime.now(UTC),
            **fields,
        }
    )
    services.runs.create(run, status_change_event(services.ids, services.clock, run, None, "created", 1))
    return run


def test_a_large_payload_lives_in_its_own_item_and_reads_back_whole(local_services: Services) -> None:
    payload = '{"blob":"' + "x" * 100_000 + '","n":1.50000000000000000001}'

    run = _store_run(local_services, payload=payload, metadata={"k": "v"})

    stored = local_services.runs.get(run.id)
    assert stored is not None
    assert stored.payload == payload
    assert stored.metadata == {"k": "v"}
    item = local_services.table.get(f"RUN#{run.id}", "RUN")
    assert item is not None
    assert "payload" not in item
    assert item["payload_ref"] is True


def test_status_filter_reads_from_the_index_on_dynamodb_local(local_services: Services) -> None:
    queued = _store_run(local_services)
    canceled = _store_run(local_services)
    local_services.state.change(canceled, RunStatus.CANCELED, "test")

    page = local_services.runs.list_runs(
        RunFilter(project_id=queued.project_id, status=RunStatus.CANCELED), limit=10, before=None, budget=100
    )

    assert [run.id for run in page.runs] == [canceled.id]
    assert page.next_cursor is None


def test_two_actors_changing_one_run_leave_one_winner_and_one_history(local_services: Services) -> None:
    for _ in range(10):
        run = _store_run(local_services)
        barrier = threading.Barrier(2)

        def act(target: RunStatus, run: Run = run, barrier: threading.Barrier = barrier) -> str:
            barrier.wait(timeout=30)  # a barrier nobody else reaches breaks, not hangs
            try:
                local_services.state.change(run, target, "race")
            except Conflict:
                return "lost"
            return target.value

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(act, [RunStatus.CANCELED, RunStatus.DEQUEUED]))

        winners = [outcome for outcome in outcomes if outcome != "lost"]
        assert len(winners) == 1
        stored = local_services.runs.get(run.id)
        assert stored is not None
        assert stored.status.value == winners[0]
        events = local_services.event_log.events_after(run.id, 0, 100)
        assert [event.sequence for event in events] == [1, 2]
        assert [event.type for event in events] == ["status_change", "status_change"]
