"""Which in-run calls a run accepts in each status (spec 6): executing and waiting runs all of them;
paused runs the reads and the records (so paused code can checkpoint and stop), not complete, fail,
continue, spawn or annotate; any other non-terminal run the reads only. Refusals are 409."""

from collections.abc import Callable
from typing import Any

import pytest

from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus
from tests.support.app import ApiClient
from tests.support.engine import Engine
from tests.support.in_run import Sdk, run_token, start_run

# name -> (method, path, body, status when accepted)
CALLS: dict[str, tuple[str, str, Any, int]] = {
    "payload": ("GET", "payload", None, 200),
    "latest checkpoint": ("GET", "checkpoints/latest", None, 200),
    "state list": ("GET", "state", None, 200),
    "state get": ("GET", "state/seen", None, 200),
    "heartbeat": ("POST", "heartbeat", None, 200),
    "log": ("POST", "log", {"message": "m"}, 201),
    "progress": ("POST", "progress", {"percent": 5}, 201),
    "checkpoint": ("POST", "checkpoint", {"state": {"n": 2}}, 201),
    "usage": ("POST", "usage", {"provider": "p", "model": "m"}, 201),
    "tool call": ("POST", "tool-call", {"tool_name": "t"}, 201),
    "output": ("POST", "output", {"key": "o", "value": 1}, 201),
    "state set": ("POST", "state", {"key": "k", "value": 1}, 201),
    "state delete": ("DELETE", "state/k", None, 204),
    "stream": ("POST", "stream", {"chunk": "c"}, 200),
    "annotate": ("POST", "annotate", {"annotations": {"a": "b"}}, 200),
    "spawn": ("POST", "spawn", {"job_slug": "child"}, 201),
    "continue": ("POST", "continue", None, 201),
    "complete": ("POST", "complete", None, 200),
    "fail": ("POST", "fail", {"error": "boom"}, 200),
}
READS = {"payload", "latest checkpoint", "state list", "state get"}
PAUSED_REFUSED = {"annotate", "spawn", "continue", "complete", "fail"}
STATUS_CHANGING = {"spawn", "continue", "complete", "fail"}


def _call(sdk: Sdk, name: str) -> int:
    method, path, body, _ = CALLS[name]
    response = sdk.http.request(method, sdk.url(path), json=body, headers=sdk.headers)
    return response.status_code


def _prepared(api: ApiClient) -> tuple[Run, Sdk]:
    """An executing run with a checkpoint and a state entry (so the reads find something), and a
    child job to spawn."""
    if "child" not in api.jobs:
        api.create_job("child")
    run, sdk = start_run(api)
    sdk.ok("checkpoint", {"state": {"n": 1}})
    sdk.ok("state", {"key": "seen", "value": True})
    return run, sdk


def _waiting(api: ApiClient, run: Run) -> Run:
    deadline = api.clock.now()
    return api.services.state.change(run, RunStatus.WAITING, "test", timeout_at=deadline)


def _paused(api: ApiClient, run: Run) -> Run:
    return api.services.state.change(run, RunStatus.PAUSED, "test")


def _queued_for_retry(api: ApiClient, run: Run) -> Run:
    # A retry keeps the generation: the previous attempt's token is current until the next claim.
    return api.services.state.change(run, RunStatus.QUEUED, "retry", attempt=run.attempt + 1)


SETUPS: dict[str, Callable[[ApiClient, Run], Run]] = {
    "executing": lambda _api, run: run,
    "waiting": _waiting,
    "paused": _paused,
    "queued": _queued_for_retry,
}


def _expected(status: str, name: str) -> int:
    accepted = CALLS[name][3]
    if status in ("executing", "waiting"):
        return accepted
    if status == "paused":
        return 409 if name in PAUSED_REFUSED else accepted
    return accepted if name in READS else 409


@pytest.mark.parametrize("status", sorted(SETUPS))
def test_each_call_is_accepted_or_refused_by_the_runs_status(api: ApiClient, status: str) -> None:
    # Given one run in `status` for the calls that leave its status alone, and a fresh one for
    # each call that may end or park it
    answered: dict[str, int] = {}
    run, sdk = _prepared(api)
    SETUPS[status](api, run)
    for name in sorted(set(CALLS) - STATUS_CHANGING):
        answered[name] = _call(sdk, name)
    for name in sorted(STATUS_CHANGING):
        fresh, fresh_sdk = _prepared(api)
        SETUPS[status](api, fresh)
        answered[name] = _call(fresh_sdk, name)

    # Then every call got the answer its status gives it
    assert answered == {name: _expected(status, name) for name in CALLS}


@pytest.mark.parametrize("name", ["payload", "state list", "log", "heartbeat", "complete"])
def test_dequeued_run_accepts_reads_only(api: ApiClient, name: str) -> None:
    triggered = api.run({"payload": {"n": 1}})
    claimed = Engine(api.services).claim(triggered["id"])
    sdk = Sdk(api.http, claimed.id, run_token(api.services, claimed))

    assert _call(sdk, name) == (CALLS[name][3] if name in READS else 409)


def test_heartbeat_of_a_paused_run_asks_the_code_to_pause(api: ApiClient) -> None:
    run, sdk = start_run(api)

    assert sdk.ok("heartbeat", status=200) == {"status": "ok"}
    _paused(api, run)
    assert sdk.ok("heartbeat", status=200) == {"status": "ok", "action": "pause"}


def test_heartbeat_moves_the_runs_heartbeat_at(api: ApiClient) -> None:
    run, sdk = start_run(api)
    api.clock.advance(30)

    sdk.ok("heartbeat", status=200)

    after = api.http.get(f"/v1/runs/{run.id}", headers=api.auth).json()
    assert after["heartbeat_at"] == api.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_paused_code_can_checkpoint_and_the_refusal_names_the_status(api: ApiClient) -> None:
    run, sdk = start_run(api)
    _paused(api, run)

    checkpoint = sdk.ok("checkpoint", {"state": {"stopped_at": 3}})
    refused = sdk.post("complete", {"result": 1})

    assert checkpoint["sequence"] == 1
    assert (refused.status_code, refused.json()["error"]) == (409, "a paused run does not accept complete")


def test_waiting_parent_can_complete_and_fail(api: ApiClient) -> None:
    first, first_sdk = start_run(api)
    second, second_sdk = start_run(api)
    _waiting(api, first)
    _waiting(api, second)

    completed = first_sdk.ok("complete", {"result": {"ok": True}}, status=200)
    failed = second_sdk.ok("fail", {"error": "gave up"}, status=200)

    assert (completed["status"], completed["result"]) == ("completed", {"ok": True})
    assert (failed["status"], failed["error"], failed["error_class"]) == ("failed", "gave up", None)
