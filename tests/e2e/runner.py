"""`python -m straitruns.local.dev` as a child process, the way a developer runs `make dev`: it is
started with a data dir and ports of its own, read through the banner it prints, and stopped with
a signal. Linux only (child processes are found through /proc)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from straitruns.local.dev import READY_LINE
from straitruns.local.processes import free_port
from straitruns.local.template import repo_root

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
_BANNER_ROW = re.compile(r"^  (?P<label>[A-Z][A-Za-z ]*?)  +(?P<value>\S.*)$")
# The runner must not inherit a developer's configuration or AWS account.
_INHERITED_PREFIXES_DROPPED = ("STRAIT_", "AWS_")


class RunnerFailedError(AssertionError):
    """The runner exited or stayed silent instead of printing its banner."""


@dataclass(frozen=True)
class Banner:
    """What the runner printed once ready."""

    api_url: str
    docs_url: str
    admin_secret: str
    project_id: str
    api_key: str
    data_dir: str
    backend: str
    curl: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


class DevRunner:
    """One `python -m straitruns.local.dev` process on a free API port and `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        backend: str = "dynamodb-local",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.backend = backend
        self.extra_env = extra_env or {}
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int:
        assert self._process is not None, "the runner was not started"
        return self._process.pid

    def start(self) -> Banner:
        """Launch the runner and return its banner; raise RunnerFailedError (with its log) if it
        exits or prints none within START_TIMEOUT_SECONDS."""
        self.launch()
        return self._wait_for_banner()

    def launch(self) -> None:
        """Launch the runner without waiting for it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES_DROPPED)}
        env.update(
            STRAIT_DATA_DIR=str(self.data_dir),
            STRAIT_PORT=str(self.port),
            STRAIT_LOCAL_BACKEND=self.backend,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "straitruns.local.dev"],
                cwd=repo_root(),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, timeout: float = START_TIMEOUT_SECONDS) -> int:
        """The exit code of a runner expected to exit by itself within `timeout` seconds
        (RunnerFailedError if it does not)."""
        assert self._process is not None, "the runner was not started"
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired as error:
            self.kill()
            raise RunnerFailedError(f"the runner did not exit.{self._log()}") from error

    def descendants(self) -> dict[int, str]:
        """Every live process below the runner, as pid -> command line."""
        return {pid: _command_line(pid) for pid in _descendants(self.pid)}

    def stop(self, stop_signal: signal.Signals = signal.SIGINT) -> int:
        """Send `stop_signal` and return the runner's exit code once it has exited."""
        assert self._process is not None, "the runner was not started"
        self._process.send_signal(stop_signal)
        try:
            return self._process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as error:
            raise RunnerFailedError(f"the runner ignored {stop_signal.name}.{self._log()}") from error

    def kill(self) -> None:
        """Teardown of last resort: SIGKILL the runner and each process it started, by pid."""
        if self._process is None or self._process.poll() is not None:
            return
        for pid in [*_descendants(self.pid), self.pid]:
            _kill(pid)
        self._process.wait(STOP_TIMEOUT_SECONDS)

    def output(self) -> str:
        """What the current run of the runner wrote so far (stdout and stderr)."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def _wait_for_banner(self) -> Banner:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while READY_LINE not in (text := self.output()):
            if self._process.poll() is not None:
                raise RunnerFailedError(f"the runner exited with {self._process.returncode}.{self._log()}")
            if time.monotonic() >= deadline:
                self.kill()
                raise RunnerFailedError(f"no banner within {START_TIMEOUT_SECONDS:.0f} s.{self._log()}")
            time.sleep(0.1)
        return _parse_banner(text)

    def _log(self) -> str:
        return f"\n--- runner output ---\n{self.output()[-4000:]}"


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _parse_banner(text: str) -> Banner:
    rows: dict[str, str] = {}
    curl = ""
    for line in text.splitlines():
        if line.strip().startswith("curl "):
            curl = line.strip()
        elif match := _BANNER_ROW.match(line):
            rows.setdefault(match["label"], match["value"].strip())
    return Banner(
        api_url=rows["API"],
        docs_url=rows["Docs"],
        admin_secret=rows["Admin secret"],
        project_id=rows["Project id"],
        api_key=rows["API key"],
        data_dir=rows["Data dir"],
        backend=rows["Backend"],
        curl=curl,
    )


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
