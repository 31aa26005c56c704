"""The installed `strait-runs` command as a subprocess, the way an operator runs it: finished
runs (`run`), and live ones (`start`) whose output a test reads line by line as it comes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Bounds, not sleeps: a command that does not finish (or print) in time fails the test.
COMMAND_TIMEOUT_SECS = 60.0
LINE_TIMEOUT_SECS = 30.0


def installed_command() -> Path:
    """`.venv/bin/strait-runs`, as `make install` puts it there."""
    command = Path(sys.executable).parent / "strait-runs"
    assert command.exists(), f"{command} is missing: `make install` installs the command line (cli/)"
    return command


def command_env(api_url: str, api_key: str, config_dir: Path) -> dict[str, str]:
    """The environment of a command: the caller's, without any STRAIT_* of the developer, with
    its own config file, no colours, and the API and key given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRAIT_")}
    env.update(
        STRAIT_API_URL=api_url,
        STRAIT_API_KEY=api_key,
        STRAIT_CONFIG=str(config_dir / "config.toml"),
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("COLUMNS", None)
    return env


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


class Cli:
    """Runs `strait-runs` with a fixed environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, *args: str, **env: str) -> Finished:
        done = subprocess.run(
            [str(installed_command()), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECS,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return Finished(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str, **env: str) -> LiveCommand:
        return LiveCommand([str(installed_command()), *args], {**self.env, **env})


class LiveCommand:
    """A running command whose stdout and stderr lines are collected as they arrive."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._changed = threading.Condition()
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("stdout", self._process.stdout), ("stderr", self._process.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                self.lines[name].append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, text: str, stream: str = "stdout", timeout: float = LINE_TIMEOUT_SECS) -> str:
        """The first line of `stream` containing `text`; fails with the output so far if none
        comes within `timeout` or the command ends without it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines[stream] if text in line), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (
                    self._process.poll() is not None and not any(r.is_alive() for r in self._readers)
                ):
                    raise AssertionError(f"no {stream} line with {text!r}.\n{self._output()}")
                self._changed.wait(min(left, 0.5))

    def finish(self, timeout: float = COMMAND_TIMEOUT_SECS) -> Finished:
        """Waits for the command to exit by itself (it is killed if it does not)."""
        try:
            code = self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the command did not exit within {timeout} s.\n{self._output()}") from None
        for reader in self._readers:
            reader.join(5)
        return Finished(code, "\n".join(self.lines["stdout"]), "\n".join(self.lines["stderr"]))

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)

    def _output(self) -> str:
        return (
            "--- stdout ---\n"
            + "\n".join(self.lines["stdout"])
            + "\n--- stderr ---\n"
            + "\n".join(self.lines["stderr"])
        )
