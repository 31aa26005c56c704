"""GET /v1/runs/{id}/lineage (spec 5 item 20) and GET /v1/runs/{id}/children (item 12).

Continue-as-new chains and spawned children are written through the store, as the engine writes
them: each member of a chain points back (`continuation_of`) and forward (`continued_by`).
"""

from typing import Any

import pytest

from straitruns.domain.ids import IdKind
from straitruns.domain.models import Run, TriggeredBy
from straitruns.domain.statuses import RunStatus
from straitruns.services.run_state import status_change_event
from tests.support.app import ApiClient


def _store_run(api: ApiClient, **fields: Any) -> Run:
    if "job" not in api.jobs:
        api.create_job("job")
    api.clock.advance(1)
    services = api.services
    run = Run.model_validate(
        {
            "id": fields.pop("id", None) or services.ids.new(IdKind.RUN),
            "job_id": api.jobs["job"],
            "project_id": api.project_id,
            "status": RunStatus.QUEUED,
            "created_by": "admin",
            "created_at": api.clock.now(),
            **fields,
        }
    )
    services.runs.create(run, status_change_event(services.ids, api.clock, run, None, "created", 1))
    return run


def _chain(api: ApiClient, length: int) -> list[str]:
    """A continue-as-new chain of `length` runs, root first; every member but the newest is
    completed and continued by the next."""
    ids = [api.services.ids.new(IdKind.RUN) for _ in range(length)]
    for depth, run_id in enumerate(ids):
        _store_run(
            api,
            id=run_id,
            status=RunStatus.COMPLETED if depth < length - 1 else RunStatus.QUEUED,
            continuation_of=ids[depth - 1] if depth else None,
            continued_by=ids[depth + 1] if depth < length - 1 else None,
            lineage_depth=depth,
        )
    return ids


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()]


def _lineage(api: ApiClient, run_id: str) -> Any:
    return api.http.get(f"/v1/runs/{run_id}/lineage", headers=api.auth)


def test_lineage_is_root_to_newest_from_any_member(api: ApiClient) -> None:
    chain = _chain(api, 4)
    _chain(api, 2)  # another chain of the project

    for member in chain:
        response = _lineage(api, member)
        assert _ids(response) == chain, f"lineage from {member}"
        assert [run["lineage_depth"] for run in response.json()] == [0, 1, 2, 3]
        assert [run["continuation_of"] for run in response.json()] == [None, *chain[:-1]]


def test_lineage_of_the_longest_chain_holds_every_member(api: ApiClient) -> None:
    chain = _chain(api, 11)  # lineage depth 10: the root and ten continuations

    assert _ids(_lineage(api, chain[0])) == chain
    assert _ids(_lineage(api, chain[5])) == chain
    assert _ids(_lineage(api, chain[-1])) == chain


def test_lineage_of_a_run_without_a_chain_is_itself(api: ApiClient) -> None:
    run = api.run({})
    _chain(api, 3)

    assert _ids(_lineage(api, run["id"])) == [run["id"]]


def test_lineage_of_an_unknown_or_malformed_run_is_404(api: ApiClient) -> None:
    unknown = api.services.ids.new(IdKind.RUN)

    assert _lineage(api, unknown).status_code == 404
    assert _lineage(api, "run_nope").status_code == 404


@pytest.fixture
def family(api: ApiClient) -> tuple[str, list[str]]:
    """A triggered parent with three spawned children, and an unrelated run."""
    parent = api.run({})["id"]
    children = [_store_run(api, parent_run_id=parent, triggered_by=TriggeredBy.SPAWN).id for _ in range(3)]
    _store_run(api)
    return parent, children


def _children(api: ApiClient, parent: str) -> Any:
    return api.http.get(f"/v1/runs/{parent}/children", headers=api.auth)


def test_children_are_the_runs_spawned_by_the_parent_oldest_first(
    api: ApiClient, family: tuple[str, list[str]]
) -> None:
    parent, children = family

    response = _children(api, parent)

    assert _ids(response) == children
    assert {run["parent_run_id"] for run in response.json()} == {parent}
    assert "x-next-cursor" not in response.headers


def test_children_show_their_live_status(api: ApiClient, family: tuple[str, list[str]]) -> None:
    # Given the children listed once, all queued
    parent, children = family
    assert [run["status"] for run in _children(api, parent).json()] == ["queued"] * 3

    # When one child is canceled and another starts executing
    middle = api.services.runs.get(children[1])
    assert middle is not None
    api.services.state.change(middle, RunStatus.CANCELED, "test")
    last = api.services.runs.get(children[2])
    assert last is not None
    api.services.state.change(last, RunStatus.DEQUEUED, "test")
    dequeued = api.services.runs.get(children[2])
    assert dequeued is not None
    api.services.state.change(dequeued, RunStatus.EXECUTING, "test")

    # Then listing again shows the new statuses, in the same order
    response = _children(api, parent)
    assert _ids(response) == children
    assert [run["status"] for run in response.json()] == ["queued", "canceled", "executing"]


def test_a_run_without_children_lists_none(api: ApiClient, family: tuple[str, list[str]]) -> None:
    _, children = family

    response = _children(api, children[0])

    assert _ids(response) == []
    assert "x-next-cursor" not in response.headers
