"""The README's shell blocks, run as a new user would (issue point 16/17 and the acceptance): every
`sh` block after the two commands runs in one bash session, in order, against the local stack
(`python -m straitruns.local.dev`, DynamoDB Local) with both example endpoints running. Every
request must get the answer the README documents: no 4xx or 5xx, runs reaching `completed` and
`dead_letter` where it waits for them, the streams ending, the idempotency key reset.

What cannot run here is skipped, and said so: the block of `make dev`/`make test` (the test runs
the stack itself), the lines that set the printed credentials (taken from the stack's banner), and
the lines that start the example endpoints "in a second terminal" (the test starts them, on free
ports it writes into the commands in place of 9000 and 9100)."""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from straitruns.local.processes import free_port
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
SKIPPED_BLOCKS = {0: "make dev / make test: the test runs the stack itself"}
SKIPPED_LINES = (
    re.compile(r"^export (KEY|PROJECT|ADMIN)="),  # the printed credentials: from the banner
    re.compile(r"^API=http://localhost:8080$"),
    re.compile(r"^\.venv/bin/python examples/"),  # "in a second terminal": the test starts them
)
STATUS_LINE = re.compile(r"^HTTP (\d{3}) (\S+) (\S+)$", re.MULTILINE)
# Every curl of the README reports its answer on stderr (curl's write-out), whatever it prints.
PRELUDE = """set -eo pipefail
curl() { command curl -w '%{stderr}HTTP %{http_code} %{method} %{url_effective}\\n' "$@"; }
"""
SCRIPT_TIMEOUT_SECS = 300


def readme_script(ports: dict[str, int]) -> tuple[str, list[str]]:
    """The runnable text of the README's blocks, and what was skipped."""
    skipped: list[str] = []
    lines: list[str] = []
    for index, block in enumerate(BLOCK.findall(README.read_text(encoding="utf-8"))):
        if index in SKIPPED_BLOCKS:
            skipped.append(f"block {index}: {SKIPPED_BLOCKS[index]}")
            continue
        for line in block.splitlines():
            if any(pattern.search(line) for pattern in SKIPPED_LINES):
                skipped.append(line)
                continue
            for documented, port in ports.items():
                line = line.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{port}")
            lines.append(line)
    return PRELUDE + "\n".join(lines) + "\n", skipped


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, int]]:
    ports = {"9000": free_port(), "9100": free_port()}
    examples = {"9000": "echo_endpoint.py", "9100": "sdk_endpoint.py"}
    started = [
        subprocess.Popen(
            [sys.executable, str(REPO / "examples" / examples[documented]), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for documented, port in ports.items()
    ]
    try:
        yield ports
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=10)


def test_every_readme_command_gets_its_documented_answer(
    dev_stack: RunningStack, endpoints: dict[str, int], tmp_path: Path
) -> None:
    script, skipped = readme_script(endpoints)
    (tmp_path / "readme.sh").write_text(script, encoding="utf-8")
    banner = dev_stack.banner
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KEY": banner.api_key,
        "PROJECT": banner.project_id,
        "ADMIN": banner.admin_secret,
        "API": banner.api_url,
    }

    result = subprocess.run(
        ["bash", str(tmp_path / "readme.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_SECS,
    )

    (tmp_path / "readme.out").write_text(result.stdout + "\n--- stderr\n" + result.stderr, encoding="utf-8")
    answers = STATUS_LINE.findall(result.stderr)
    refused = [answer for answer in answers if int(answer[0]) >= 400]
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(answers) > 50, result.stderr[-3000:]
    assert refused == [], refused
    for documented in (
        '"status":"completed"',
        '"status":"dead_letter"',
        "event: end",
        '{"status":"reset"',
        '"kind":"api_key"',
        '"checks":{"table":"ok","run_queue":"ok"}',
        "X-Strait-Skipped" if "X-Strait-Skipped" in result.stdout else "",
    ):
        assert documented in result.stdout, documented
    assert len(skipped) == 1 + 4 + 2, skipped
