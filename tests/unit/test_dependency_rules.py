"""The dependency rules of the domain (spec 4.8): conditions, scopes, ordering, cycles."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from straitruns.domain.dependencies import (
    ALL_RUNS,
    DEPENDENCY_KEY,
    Dependency,
    DependencyCondition,
    LatestTerminal,
    ScopeKind,
    condition_met,
    find_cycle,
    is_waiting_on_dependencies,
    latest_of,
    scope_of_waiting,
    scopes_of_finished,
    unmet,
)
from straitruns.domain.errors import ValidationFailed
from straitruns.domain.models import Run
from straitruns.domain.statuses import FAILURE_STATUSES, NON_TERMINAL, TERMINAL, RunStatus

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
C = DependencyCondition


def _run(run_id: str = "run_1", **fields: object) -> Run:
    values: dict[str, object] = {
        "id": run_id,
        "job_id": "job_down",
        "project_id": "proj_1",
        "status": RunStatus.QUEUED,
        "created_by": "admin",
        "created_at": NOW,
        **fields,
    }
    return Run.model_validate(values)


def _dependency(upstream: str, condition: DependencyCondition = C.COMPLETED) -> Dependency:
    return Dependency(
        id=f"dep_{upstream}",
        job_id="job_down",
        depends_on_job_id=upstream,
        condition=condition,
        created_at=NOW,
    )


def _latest(status: RunStatus) -> LatestTerminal:
    return LatestTerminal("run_up", status, "x")


# --- conditions ----------------------------------------------------------------------------


def test_completed_is_met_only_by_completed() -> None:
    met = {status for status in RunStatus if condition_met(C.COMPLETED, status)}

    assert met == {RunStatus.COMPLETED}


def test_failed_is_met_by_every_failure_status_and_not_by_canceled() -> None:
    met = {status for status in RunStatus if condition_met(C.FAILED, status)}

    assert met == {
        RunStatus.FAILED,
        RunStatus.TIMED_OUT,
        RunStatus.CRASHED,
        RunStatus.SYSTEM_FAILED,
        RunStatus.EXPIRED,
        RunStatus.DEAD_LETTER,
    }
    assert met == FAILURE_STATUSES


def test_any_is_met_by_every_terminal_status_including_canceled() -> None:
    met = {status for status in RunStatus if condition_met(C.ANY, status)}

    assert met == TERMINAL


@pytest.mark.parametrize("condition", list(DependencyCondition))
def test_no_terminal_run_meets_no_condition(condition: DependencyCondition) -> None:
    assert not condition_met(condition, None)
    assert not any(condition_met(condition, status) for status in NON_TERMINAL)


def test_unmet_lists_dependencies_without_a_matching_latest_run() -> None:
    on_a, on_b, on_c = _dependency("job_a"), _dependency("job_b", C.FAILED), _dependency("job_c", C.ANY)
    latest = {"job_a": _latest(RunStatus.COMPLETED), "job_b": _latest(RunStatus.COMPLETED)}

    assert unmet([on_a, on_b, on_c], latest) == [on_b, on_c]


def test_no_dependencies_are_always_met() -> None:
    assert unmet([], {}) == []


# --- scopes --------------------------------------------------------------------------------


def test_idempotency_key_scopes_a_run_before_its_dependency_key() -> None:
    run = _run(idempotency_key="k1", metadata={DEPENDENCY_KEY: "d1"})

    scope = scope_of_waiting(run)

    assert scope.kind == ScopeKind.IDEMPOTENCY_KEY
    assert scope == scope_of_waiting(_run("run_2", idempotency_key="k1"))
    assert scope != scope_of_waiting(_run("run_3", idempotency_key="k2"))


def test_dependency_key_scopes_a_run_without_idempotency_key() -> None:
    scope = scope_of_waiting(_run(metadata={DEPENDENCY_KEY: "batch-7"}))

    assert scope.kind == ScopeKind.DEPENDENCY_KEY
    assert "batch-7" not in scope.digest  # hashed: user values may exceed key sizes


def test_a_run_without_keys_looks_at_every_upstream_run() -> None:
    assert scope_of_waiting(_run(metadata={"other": "x"})) == ALL_RUNS


def test_a_finished_run_counts_in_every_scope_it_belongs_to() -> None:
    run = _run(idempotency_key="k1", metadata={DEPENDENCY_KEY: "d1"})

    scopes = scopes_of_finished(run)

    assert scopes[0] == ALL_RUNS
    assert scope_of_waiting(_run("run_2", idempotency_key="k1")) in scopes
    assert scope_of_waiting(_run("run_3", metadata={DEPENDENCY_KEY: "d1"})) in scopes
    assert len(scopes) == 3


def test_a_run_claimed_before_it_waits_is_not_waiting_on_dependencies() -> None:
    assert is_waiting_on_dependencies(_run(status=RunStatus.WAITING))
    assert not is_waiting_on_dependencies(_run(status=RunStatus.WAITING, ever_claimed=True))
    assert not is_waiting_on_dependencies(_run(status=RunStatus.QUEUED))


# --- which terminal run is the latest ------------------------------------------------------


def test_a_later_finish_orders_after_an_earlier_one() -> None:
    early = latest_of(_run("run_9", status=RunStatus.COMPLETED, finished_at=NOW), NOW)
    late = latest_of(_run("run_1", status=RunStatus.FAILED, finished_at=NOW + timedelta(microseconds=1)), NOW)

    assert early.order < late.order


def test_finishes_at_the_same_instant_are_ordered_by_run_id() -> None:
    first = latest_of(_run("run_1", status=RunStatus.COMPLETED, finished_at=NOW), NOW)
    second = latest_of(_run("run_2", status=RunStatus.COMPLETED, finished_at=NOW), NOW)

    assert first.order < second.order


def test_a_run_without_finished_at_is_ordered_by_now() -> None:
    record = latest_of(_run(status=RunStatus.CANCELED), NOW + timedelta(hours=1))

    assert record.order.startswith("2026-11-28T13:00:00")


# --- cycles --------------------------------------------------------------------------------


def _graph(edges: dict[str, list[str]]) -> Callable[[str], list[str]]:
    """`upstreams_of` over a fixed graph: job -> the jobs it depends on."""
    return lambda job_id: edges.get(job_id, [])


def test_depending_on_itself_is_a_cycle() -> None:
    assert find_cycle("job_a", "job_a", _graph({})) == ["job_a", "job_a"]


def test_a_two_job_cycle_is_found() -> None:
    # B already depends on A; A -> B would close A -> B -> A.
    cycle = find_cycle("job_a", "job_b", _graph({"job_b": ["job_a"]}))

    assert cycle == ["job_a", "job_b", "job_a"]


def test_a_longer_cycle_is_reported_along_its_path() -> None:
    edges = {"job_b": ["job_x", "job_c"], "job_c": ["job_a"], "job_x": []}

    cycle = find_cycle("job_a", "job_b", _graph(edges))

    assert cycle == ["job_a", "job_b", "job_c", "job_a"]


def test_a_diamond_is_not_a_cycle() -> None:
    # B and C both depend on D: A may depend on either without looping back to A.
    edges = {"job_b": ["job_d"], "job_c": ["job_d"], "job_d": []}

    assert find_cycle("job_a", "job_b", _graph(edges)) is None
    assert find_cycle("job_a", "job_c", _graph(edges)) is None


def test_an_unbounded_graph_is_refused_rather_than_walked() -> None:
    chain = {f"job_{n}": [f"job_{n + 1}"] for n in range(50)}

    with pytest.raises(ValidationFailed, match="too large"):
        find_cycle("job_a", "job_0", _graph(chain), max_jobs=10)
