"""Stopping `make dev` with Ctrl-C leaves nothing running, and a restart on the same data dir
finds the job, the run and the dev key of the first start."""

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.calls import create_job, list_runs, trigger
from tests.e2e.conftest import http_client
from tests.e2e.runner import Banner, DevRunner, pid_alive

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Restart:
    """Two starts on one data dir, with what the first one created and how it stopped."""

    first: Banner
    second: Banner
    job: dict[str, Any]
    run: dict[str, Any]
    first_exit_code: int
    first_children: dict[int, str]


@pytest.fixture(scope="module")
def restart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restart]:
    base = tmp_path_factory.mktemp("restart")
    runner = DevRunner(base / "data", base / "runner.log")
    try:
        first = runner.start()
        with http_client(first) as http:
            job = create_job(http, first, "survives-restart")
            triggered = trigger(http, first, job["id"], {"n": 1})
            assert triggered.status_code == 201, triggered.text
        children = runner.descendants()
        exit_code = runner.stop(signal.SIGINT)
        second = runner.start()
        yield Restart(first, second, job, triggered.json(), exit_code, children)
        runner.stop()
    finally:
        runner.kill()


def test_sigint_exits_0_and_stops_dynamodb_local_and_moto(restart: Restart) -> None:
    commands = restart.first_children.values()
    assert any("DynamoDBLocal.jar" in command for command in commands), commands
    assert any("moto.server" in command for command in commands), commands

    assert restart.first_exit_code == 0
    assert [pid for pid in restart.first_children if pid_alive(pid)] == []


def test_restart_prints_the_same_dev_key_project_and_admin_secret(restart: Restart) -> None:
    assert restart.second.api_key == restart.first.api_key
    assert restart.second.project_id == restart.first.project_id
    assert restart.second.admin_secret == restart.first.admin_secret


def test_restart_keeps_the_job_and_the_run(restart: Restart) -> None:
    banner = restart.second
    with http_client(banner) as http:
        job = http.get(f"/v1/jobs/{restart.job['id']}", headers=banner.auth)
        run = http.get(f"/v1/runs/{restart.run['id']}", headers=banner.auth)
        listed = list_runs(http, banner)

    assert job.status_code == 200, job.text
    assert job.json()["slug"] == "survives-restart"
    assert run.status_code == 200, run.text
    assert run.json()["payload"] == {"n": 1}
    assert restart.run["id"] in [item["id"] for item in listed]
