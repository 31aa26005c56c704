"""`make dev` with STRAIT_LOCAL_BACKEND=moto: no Java, everything in one in-memory moto server."""

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.calls import create_job, trigger
from tests.e2e.conftest import http_client
from tests.e2e.runner import DevRunner, pid_alive

pytestmark = pytest.mark.e2e


def test_moto_backend_triggers_a_run_and_stops_on_sigterm(
    make_runner: Callable[..., DevRunner], tmp_path: Path
) -> None:
    runner = make_runner(tmp_path / "data", "moto")
    banner = runner.start()
    children = runner.descendants()
    with http_client(banner) as http:
        job = create_job(http, banner, "on-moto")
        triggered = trigger(http, banner, job["id"])
        assert triggered.status_code == 201, triggered.text
        assert triggered.json()["status"] == "queued"
        fetched = http.get(f"/v1/runs/{triggered.json()['id']}", headers=banner.auth)
        assert fetched.status_code == 200, fetched.text

    exit_code = runner.stop(signal.SIGTERM)

    assert banner.backend.startswith("moto")
    assert [command for command in children.values() if "java" in command] == []
    assert any("moto.server" in command for command in children.values())
    assert exit_code == 0
    assert [pid for pid in children if pid_alive(pid)] == []


def test_dev_key_lost_with_moto_memory_is_replaced_on_restart(
    make_runner: Callable[..., DevRunner], tmp_path: Path
) -> None:
    runner = make_runner(tmp_path / "data", "moto")
    first = runner.start()
    assert runner.stop() == 0

    second = runner.start()

    assert second.api_key != first.api_key
    assert second.admin_secret == first.admin_secret
    with http_client(second) as http:
        response = http.get("/v1/jobs", params={"project_id": second.project_id}, headers=second.auth)
    assert response.status_code == 200, response.text
