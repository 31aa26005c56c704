"""The installed `strait-runs` command against the local stack (one stack for the module): lists
with filters and pages, get, cancel, tail to the end across a dropped connection, dead letters,
`jobs trigger --wait`, the exit codes of failures, and bulk operations."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from straitruns.local.processes import free_port
from tests.e2e.cli_process import Cli, command_env
from tests.e2e.conftest import RunningStack
from tests.e2e.cut_proxy import CuttableProxy
from tests.support.endpoint import JobEndpoint, json_reply, status_reply

# One worker runs the whole module, so the module's one local stack serves every test.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cli-e2e")]

UNREACHABLE_ENDPOINT = "http://127.0.0.1:9/run"
SETTLES_WITHIN_SECS = 20.0
TERMINAL = {
    "completed",
    "failed",
    "timed_out",
    "crashed",
    "system_failed",
    "canceled",
    "expired",
    "dead_letter",
}


@pytest.fixture(scope="module")
def cli(dev_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    banner = dev_stack.banner
    return Cli(command_env(banner.api_url, banner.api_key, tmp_path_factory.mktemp("cli-config")))


@pytest.fixture
def endpoint() -> Iterator[JobEndpoint]:
    with JobEndpoint() as server:
        yield server


def _job(stack: RunningStack, slug: str, endpoint_url: str = UNREACHABLE_ENDPOINT, **fields: Any) -> str:
    body = {"slug": slug, "name": slug, "endpoint_url": endpoint_url, **fields}
    response = stack.http.post("/v1/jobs", json=body, headers=stack.banner.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _trigger(stack: RunningStack, job: str, **body: Any) -> str:
    response = stack.http.post(f"/v1/jobs/{job}/trigger", json=body, headers=stack.banner.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _wait_for_status(stack: RunningStack, run_id: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLES_WITHIN_SECS
    while True:
        run: dict[str, Any] = stack.http.get(f"/v1/runs/{run_id}", headers=stack.banner.auth).json()
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, f"{run_id} is still {run['status']}, not one of {statuses}"
        time.sleep(0.1)


def _sdk(stack: RunningStack, token: str, run_id: str, call: str, body: dict[str, Any]) -> None:
    response = stack.http.post(
        f"/sdk/v1/runs/{run_id}/{call}", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code in (200, 201), response.text


def _table_rows(stdout: str) -> list[list[str]]:
    """The rows of a Rich table (the header dropped), split on runs of spaces."""
    return [line.split() for line in stdout.splitlines()[1:] if line.strip()]


def test_runs_list_filters_pages_and_prints_table_json_and_jsonl(dev_stack: RunningStack, cli: Cli) -> None:
    # Given a paused job: its runs are created and stay queued.
    _job(dev_stack, "cli-list", paused=True)
    runs = [
        _trigger(dev_stack, "cli-list", payload={"n": n}, metadata={"team": "a" if n < 3 else "b"},
                 tags={"tier": "gold" if n == 0 else "std"})
        for n in range(5)
    ]  # fmt: skip
    newest_first = list(reversed(runs))

    table = cli.run("runs", "list", "--job", "cli-list", "--metadata", "team=a")
    as_json = cli.run("runs", "list", "--job", "cli-list", "--json")
    paged = cli.run("runs", "list", "--job", "cli-list", "--all", "--page-size", "2", "--jsonl")
    limited = cli.run("runs", "list", "--job", "cli-list", "--limit", "2")
    by_payload = cli.run("runs", "list", "--job", "cli-list", "--payload-contains", '{"n": 4}', "--json")
    by_tag = cli.run("runs", "list", "--job", "cli-list", "--tag", "tier=gold", "--json")

    assert table.code == 0, table
    assert table.stdout.splitlines()[0].split()[:3] == ["RUN", "JOB", "STATUS"]
    assert [row[:3] for row in _table_rows(table.stdout)] == [
        [run, "cli-list", "queued"] for run in newest_first[2:]
    ]
    assert [run["id"] for run in json.loads(as_json.stdout)] == newest_first, as_json
    assert [json.loads(line)["id"] for line in paged.stdout.splitlines()] == newest_first, paged
    assert [row[0] for row in _table_rows(limited.stdout)] == newest_first[:2]
    assert "2 runs; more follow: add --all, or --cursor " in limited.stderr
    assert [run["id"] for run in json.loads(by_payload.stdout)] == [runs[4]]
    assert [run["id"] for run in json.loads(by_tag.stdout)] == [runs[0]]


def test_runs_get_and_cancel(dev_stack: RunningStack, cli: Cli) -> None:
    _job(dev_stack, "cli-cancel", paused=True)
    triggered = cli.run("jobs", "trigger", "cli-cancel", "--payload", '{"amount": 1.000000000000000000001}')
    run_id = triggered.stdout.split()[0]

    got = cli.run("runs", "get", run_id, "--json")
    shown = cli.run("runs", "get", run_id)
    canceled = cli.run("runs", "cancel", run_id)
    listed = cli.run("runs", "list", "--job", "cli-cancel", "--status", "canceled", "--json")
    again = cli.run("runs", "cancel", run_id)

    assert triggered.stdout.strip() == f"{run_id} triggered: queued", triggered
    assert got.code == 0, got
    assert json.loads(got.stdout)["id"] == run_id
    assert '"amount": 1.000000000000000000001' in got.stdout  # every digit, as stored
    assert ["status", "queued"] in [line.split() for line in shown.stdout.splitlines()]
    assert (canceled.code, canceled.stdout.strip()) == (
        0,
        f"{run_id} canceled (with its non-terminal descendants).",
    )
    assert [run["id"] for run in json.loads(listed.stdout)] == [run_id]
    assert again.code == 1
    assert "run already in terminal state" in again.stderr
    assert "(HTTP 409 conflict, request id " in again.stderr


def test_tail_follows_a_run_to_its_end_and_resumes_after_a_dropped_connection(
    dev_stack: RunningStack, cli: Cli, endpoint: JobEndpoint
) -> None:
    # Given a run whose endpoint accepted the work (202): it stays executing until the SDK ends it.
    endpoint.answer_always(status_reply(202))
    _job(dev_stack, "cli-tail", endpoint.url)
    run_id = _trigger(dev_stack, "cli-tail")
    calls = endpoint.wait_for_requests(1, timeout=SETTLES_WITHIN_SECS)
    assert calls, f"{run_id} was never dispatched to its endpoint"
    call = calls[0]
    token = str(call.header("X-Run-Token"))

    with CuttableProxy(int(dev_stack.banner.api_url.rsplit(":", 1)[1])) as proxy:
        tail = cli.start("--api-url", proxy.url, "runs", "tail", run_id)
        try:
            tail.wait_for_line("dequeued → executing")
            _sdk(dev_stack, token, run_id, "log", {"message": "before the cut"})
            tail.wait_for_line("before the cut")

            # When the connection drops, and an event is written while the client cannot reach the API
            proxy.cut()
            _sdk(dev_stack, token, run_id, "log", {"message": "during the outage"})
            tail.wait_for_line("Stream interrupted", stream="stderr")
            proxy.restore()
            tail.wait_for_line("during the outage")
            _sdk(dev_stack, token, run_id, "complete", {"result": {"ok": True}})
            finished = tail.finish()
        finally:
            tail.kill()

    # Then it resumed after the last event it had, saw each event once, and exited 0 with the run.
    assert finished.code == 0, finished
    lines = finished.stdout.splitlines()
    assert [line for line in lines if "before the cut" in line or "during the outage" in line] == [
        next(line for line in lines if "before the cut" in line),
        next(line for line in lines if "during the outage" in line),
    ]
    assert lines[-1] == f"{run_id} ended: completed"
    assert "executing → completed" in lines[-2]
    resumed = [bytes(sent) for sent in proxy.sent_by_clients[1:] if b"GET /v1/runs/" in sent]
    assert resumed, "the command never reconnected"
    assert all(b"last-event-id: " in sent.lower() for sent in resumed)


def test_a_run_that_failed_exits_3_from_tail_and_trigger_wait(
    dev_stack: RunningStack, cli: Cli, endpoint: JobEndpoint
) -> None:
    endpoint.respond(
        lambda request: status_reply(400) if request.json().get("fail") else json_reply({"ok": 1})
    )
    _job(dev_stack, "cli-wait", endpoint.url)

    completed = cli.run("jobs", "trigger", "cli-wait", "--payload", '{"fail": false}', "--wait")
    failed = cli.run("jobs", "trigger", "cli-wait", "--payload", '{"fail": true}', "--wait")
    failed_run = failed.stdout.split()[0]
    replayed_tail = cli.run("runs", "tail", failed_run)

    assert completed.code == 0, completed
    assert completed.stdout.splitlines()[-1].endswith("ended: completed")
    assert failed.code == 3, failed
    assert failed.stdout.splitlines()[-1].startswith(f"{failed_run} ended: failed")
    assert replayed_tail.code == 3, replayed_tail
    assert replayed_tail.stdout.splitlines()[-1] == f"{failed_run} ended: failed"
    assert "executing → failed" in replayed_tail.stdout


def test_dead_letters_are_listed_and_replayed_in_place(
    dev_stack: RunningStack, cli: Cli, endpoint: JobEndpoint
) -> None:
    endpoint.answer_always(status_reply(500))
    _job(dev_stack, "cli-dlq", endpoint.url, max_attempts=1)
    run_id = _trigger(dev_stack, "cli-dlq")
    _wait_for_status(dev_stack, run_id, {"dead_letter"})

    listed = cli.run("dlq", "list", "--job", "cli-dlq", "--json")
    endpoint.answer_always(json_reply({"ok": True}))
    replayed = cli.run("runs", "dlq-replay", run_id)
    tail = cli.run("runs", "tail", run_id)

    assert [run["id"] for run in json.loads(listed.stdout)] == [run_id], listed
    assert replayed.code == 0, replayed
    assert replayed.stdout.strip() == f"{run_id} back in the queue: queued"
    assert tail.code == 0, tail
    assert tail.stdout.splitlines()[-1] == f"{run_id} ended: completed"


def test_failures_exit_1_for_the_api_and_the_network_and_2_for_usage(cli: Cli) -> None:
    wrong_key = cli.run("runs", "list", STRAIT_API_KEY="strait_" + "0" * 64)
    api_down = cli.run("runs", "list", STRAIT_API_URL=f"http://127.0.0.1:{free_port()}")
    bad_option = cli.run("runs", "list", "--no-such-option")

    assert wrong_key.code == 1, wrong_key
    assert wrong_key.stderr.startswith(
        "Error: invalid API key (HTTP 401 authentication_required, request id req_"
    )
    assert api_down.code == 1, api_down
    assert len(api_down.stderr.splitlines()) == 1
    assert api_down.stderr.startswith("Error: cannot reach the API at http://127.0.0.1:")
    assert bad_option.code == 2, bad_option
    assert "No such option '--no-such-option'" in bad_option.stderr
    assert all("Traceback" not in done.stderr for done in (wrong_key, api_down, bad_option))


def _bulk_operations_exist(stack: RunningStack) -> bool:
    probe = {"action": "cancel", "filter": {"status": "queued"}, "dry_run": True}
    return stack.http.post("/v1/bulk-operations", json=probe, headers=stack.banner.auth).status_code != 404


def test_bulk_cancel_by_filter_and_dlq_replay_end_with_their_summaries(
    dev_stack: RunningStack, cli: Cli, endpoint: JobEndpoint
) -> None:
    if not _bulk_operations_exist(dev_stack):
        pytest.skip("the API has no bulk operations yet (POST /v1/bulk-operations answers 404; issue 11)")
    _job(dev_stack, "cli-bulk", paused=True)
    queued = {_trigger(dev_stack, "cli-bulk", metadata={"wave": "1"}) for _ in range(3)}
    endpoint.answer_always(status_reply(500))
    _job(dev_stack, "cli-bulk-dlq", endpoint.url, max_attempts=1)
    dead = {_trigger(dev_stack, "cli-bulk-dlq") for _ in range(2)}
    for run_id in dead:
        _wait_for_status(dev_stack, run_id, {"dead_letter"})

    canceled = cli.run("bulk", "cancel", "--job", "cli-bulk", "--metadata", "wave=1", "--yes")
    endpoint.answer_always(json_reply({"ok": True}))
    replayed = cli.run("dlq", "replay", "--job", "cli-bulk-dlq", "--yes")

    assert canceled.code == 0, canceled
    assert canceled.stdout.startswith("3 runs match.")
    summary, where = canceled.stdout.splitlines()[-2:]
    assert summary.endswith("completed: 3 done, 0 skipped, 0 failed (of 3).")
    operation_id = where.removeprefix("Per-run results: strait-runs bulk results ")
    results = cli.run("bulk", "results", operation_id, "--json")
    assert {item["run_id"] for item in json.loads(results.stdout)} == queued
    statuses = cli.run("runs", "list", "--job", "cli-bulk", "--json")
    assert {run["status"] for run in json.loads(statuses.stdout)} == {"canceled"}
    assert replayed.code == 0, replayed
    assert replayed.stdout.splitlines()[-2].endswith("completed: 2 done, 0 skipped, 0 failed (of 2).")
    for run_id in dead:
        assert _wait_for_status(dev_stack, run_id, TERMINAL)["status"] == "completed"
