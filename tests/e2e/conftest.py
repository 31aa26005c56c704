"""Fixtures that start `python -m straitruns.local.dev` on free ports with a temporary data dir."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.runner import Banner, DevRunner

HTTP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class RunningStack:
    """A started runner, its banner, and an HTTP client for its API."""

    runner: DevRunner
    banner: Banner
    http: httpx.Client


def http_client(banner: Banner) -> httpx.Client:
    """A client for the API a banner announces (no credentials attached)."""
    return httpx.Client(base_url=banner.api_url, timeout=HTTP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One stack on DynamoDB Local for a test module, stopped with SIGINT at its end."""
    base = tmp_path_factory.mktemp("dev-stack")
    runner = DevRunner(base / "data", base / "runner.log")
    try:
        banner = runner.start()
        with http_client(banner) as http:
            yield RunningStack(runner, banner, http)
        runner.stop()
    finally:
        runner.kill()


@pytest.fixture
def make_runner(tmp_path: Path) -> Iterator[Callable[..., DevRunner]]:
    """Builds runners logging under tmp_path; any still running at teardown is killed."""
    made: list[DevRunner] = []

    def make(data_dir: Path, backend: str = "dynamodb-local", **extra_env: str) -> DevRunner:
        runner = DevRunner(data_dir, tmp_path / f"runner-{len(made)}.log", backend, extra_env)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.kill()
