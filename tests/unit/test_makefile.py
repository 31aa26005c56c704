"""The two commands' installs (issue point 18): `make dev` installs only what the stack needs (the
runtime and local-engine dependencies, DynamoDB Local), the test tooling, the SAM CLI and Chromium
belong to `make test`, and Python 3.12 is found whatever PYENV_VERSION says. Read from make's dry
run (`-n -B`: every recipe printed, nothing run)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(target: str, **env: str) -> str:
    result = subprocess.run(
        ["make", "-n", "-B", target],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def test_make_dev_installs_the_stack_only() -> None:
    plan = dry_run("dev")

    assert "-e '.[local]'" in plan
    assert "npm ci" in plan
    for test_only in ("[local,dev]", "[dev]", "aws-sam-cli", "install -y", "chromium"):
        assert test_only not in plan, test_only


def test_make_test_installs_the_test_tooling_the_sam_cli_and_chromium() -> None:
    plan = dry_run("test")

    for needed in ("-e '.[local,dev]'", "aws-sam-cli==", "npm ci"):
        assert needed in plan, needed


def test_python_312_is_found_when_the_environment_names_another_pyenv_version() -> None:
    plan = dry_run("dev", PYENV_VERSION="3.11.7")

    venv_line = next(line for line in plan.splitlines() if line.endswith("-m venv .venv"))
    python = venv_line.removesuffix(" -m venv .venv")
    env = {**os.environ, "PYENV_VERSION": "3.11.7"}
    version = subprocess.run(
        [python, "--version"], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert re.fullmatch(r"Python 3\.12\.\d+\n", version.stdout)
