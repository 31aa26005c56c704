"""The runner refuses bad configuration up front, before any engine starts."""

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.runner import DevRunner

pytestmark = pytest.mark.e2e


def test_admin_secret_shorter_than_32_characters_is_refused(
    make_runner: Callable[..., DevRunner], tmp_path: Path
) -> None:
    runner = make_runner(tmp_path / "data", "moto", STRAIT_ADMIN_SECRET="too-short")
    runner.launch()

    assert runner.wait(timeout=60) == 1
    assert "STRAIT_ADMIN_SECRET must have at least 32 characters" in runner.output()
    assert "Starting" not in runner.output()


def test_unknown_backend_is_refused(make_runner: Callable[..., DevRunner], tmp_path: Path) -> None:
    runner = make_runner(tmp_path / "data", "sqlite")
    runner.launch()

    assert runner.wait(timeout=60) == 1
    assert "STRAIT_LOCAL_BACKEND must be one of dynamodb-local, moto" in runner.output()


def test_busy_api_port_is_refused_before_any_engine_starts(
    make_runner: Callable[..., DevRunner], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runner = make_runner(tmp_path / "data", "moto", STRAIT_PORT=str(port))
        runner.launch()

        assert runner.wait(timeout=60) == 1
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in runner.output()
    assert "Starting" not in runner.output()
