"""The local stack behind `make dev` (`python -m straitruns.local.dev`).

It starts the engines that stand in for AWS (DynamoDB Local and a moto server for SQS, or one moto
server for both), creates the table and queues of template.yaml, serves every router with uvicorn,
makes sure a dev project and a `*` API key exist, and prints how to call it. SIGINT or SIGTERM stops
the API and every child process, in the reverse order of their start.

Everything the stack runs is a Component (start, stop, running). The order is: engines, the API,
then BACKGROUND_WORKERS, each built from the services once the API answers.
"""

import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal, NoReturn, Protocol, Self

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from straitruns.adapters.store.run_codec import LAYOUT_VERSION
from straitruns.adapters.store.table import DynamoTable
from straitruns.api.app import create_app
from straitruns.domain.auth import Principal, Scope, valid_admin_secret
from straitruns.domain.errors import NotFound, Unauthenticated
from straitruns.local.event_sources import (
    dispatcher_event_source,
    effects_event_source,
    scheduler_event_source,
)
from straitruns.local.http_protocol import JsonErrorH11Protocol
from straitruns.local.processes import BackendError, BackendNotInstalledError, DynamoDBLocal, MotoServer
from straitruns.local.provision import ProvisionError, ensure_queues, ensure_table
from straitruns.local.template import TemplateError, load_template, queue_specs, repo_root, table_spec
from straitruns.migrations.runs_v2 import is_empty, layout_version, mark_current, migrate
from straitruns.services.access import AccessService
from straitruns.settings import Settings
from straitruns.wiring import Services, aws_clients, build_services

Backend = Literal["dynamodb-local", "moto"]
BACKENDS: dict[str, Backend] = {"dynamodb-local": "dynamodb-local", "moto": "moto"}

DEFAULT_HOST = "127.0.0.1"
ADMIN_SECRET_FILE = "admin-secret"
RUN_TOKEN_SECRET_FILE = "run-token-secret"
DEV_CREDENTIALS_FILE = "dev-credentials.json"
# Where the running stack says how to reach it (tools such as `python -m straitruns.replay_effects
# --local` read it); secrets stay in their own files.
STACK_FILE = "stack.json"
DEV_PROJECT_NAME = "dev"
DEV_KEY_NAME = "dev"
RUN_TOKEN_SECRET_MIN_BYTES = 32
FAKE_AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}

API_START_TIMEOUT_SECONDS = 30.0
API_STOP_TIMEOUT_SECONDS = 10.0
API_GRACEFUL_SHUTDOWN_SECONDS = 5
WATCH_INTERVAL_SECONDS = 0.5
READY_LINE = "Press Ctrl-C to stop."


class LocalStackError(RuntimeError):
    """The local stack cannot start: a bad variable, a busy port, an unusable stored secret."""


class Component(Protocol):
    """A part of the stack: started in order, stopped in reverse order, watched while it runs."""

    @property
    def name(self) -> str: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


# Factories of the components that run beside the API (the dispatcher worker pool, the scheduler
# timer, the effects function's stream poller): each is built from the services once the API
# answers, and stopped before it. They play the engine's AWS event sources (local/event_sources.py)
# with the runner's own services.
BACKGROUND_WORKERS: tuple[Callable[[Services], Component], ...] = (
    dispatcher_event_source,
    scheduler_event_source,
    effects_event_source,
)


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """The local-only variables (spec 9), beside the ones Settings reads."""

    data_dir: Path
    backend: Backend
    host: str
    dynamodb_port: int | None
    sqs_port: int | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """Read STRAIT_DATA_DIR, STRAIT_LOCAL_BACKEND, STRAIT_HOST, STRAIT_DYNAMODB_PORT and
        STRAIT_SQS_PORT; unset or empty ones keep their defaults. Raises LocalStackError for an
        unknown backend or a port that is not an integer in 1..65535."""
        data_dir = env.get("STRAIT_DATA_DIR") or str(repo_root() / ".data")
        name = env.get("STRAIT_LOCAL_BACKEND") or "dynamodb-local"
        backend = BACKENDS.get(name)
        if backend is None:
            raise LocalStackError(f"STRAIT_LOCAL_BACKEND must be one of {', '.join(BACKENDS)}, got {name!r}")
        return cls(
            data_dir=Path(data_dir).expanduser().resolve(),
            backend=backend,
            host=env.get("STRAIT_HOST") or DEFAULT_HOST,
            dynamodb_port=_port(env, "STRAIT_DYNAMODB_PORT"),
            sqs_port=_port(env, "STRAIT_SQS_PORT"),
        )


class DevCredentials(BaseModel):
    """The dev project and the raw value of its `*` key, kept in the data dir between starts."""

    project_id: str
    api_key: str


@dataclass(frozen=True, slots=True)
class Engines:
    """The processes that stand in for DynamoDB and SQS, and where they answer."""

    components: tuple[Component, ...]
    dynamodb_endpoint_url: str
    sqs_endpoint_url: str
    description: str


@dataclass(frozen=True, slots=True)
class LocalStack:
    """A started stack: what it serves, how to call it, and every component it runs."""

    config: LocalConfig
    settings: Settings
    services: Services
    dev: DevCredentials
    api_url: str
    backend_description: str
    components: tuple[Component, ...]

    def stopped_component(self) -> str | None:
        """The name of a component that stopped by itself, or None while all of them run."""
        return next((component.name for component in self.components if not component.running), None)


class ApiServer:
    """The app under uvicorn in a thread of its own: the main thread keeps the signals, and the
    engines and workers are stopped by the same code whichever way the stack ends."""

    name = "api"

    def __init__(self, app: FastAPI, listener: socket.socket) -> None:
        """Serve `app` on `listener`, a bound and listening socket the server takes over."""
        self._app = app
        self._listener = listener
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Serve on the listener and return once the server accepts connections.

        Raises LocalStackError if the server stops, or does not start, within the start timeout.
        """
        config = uvicorn.Config(
            self._app,
            http=JsonErrorH11Protocol,
            lifespan="off",
            log_level="info",
            timeout_graceful_shutdown=API_GRACEFUL_SHUTDOWN_SECONDS,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._listener]}, name="api", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        try:
            self._wait_until_serving(server, thread)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_serving(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        deadline = time.monotonic() + API_START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() >= deadline:
                raise LocalStackError(f"the API server did not start on {self._listener.getsockname()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Finish the requests in flight (within a grace period) and stop serving; idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(API_STOP_TIMEOUT_SECONDS)
        if thread.is_alive():
            server.force_exit = True
            thread.join(API_STOP_TIMEOUT_SECONDS)


@contextmanager
def start_stack(env: Mapping[str, str] | None = None) -> Iterator[LocalStack]:
    """Start the whole local stack in this process from `env` (default: os.environ) and stop every
    component, in reverse order, when the block exits (normally, by an exception or a signal).

    Sets fake AWS credentials in os.environ when it has none, so nothing reaches a real account.
    Raises LocalStackError for bad configuration or a busy port, BackendError if an engine fails
    to start, TemplateError or ProvisionError if the table or queues cannot be created.
    """
    source = os.environ if env is None else env
    config = LocalConfig.from_env(source)
    _private_dir(config.data_dir)
    base = local_settings(source, config.data_dir)
    use_fake_aws_credentials(os.environ)
    engines = local_engines(config)
    with ExitStack() as running:
        # Bound before the engines start, so a busy port fails at once instead of after their boot.
        listener = running.enter_context(_listen(config.host, base.port))
        started: list[Component] = []
        for engine in engines.components:
            _start(running, started, engine)
        settings, services = _provisioned_services(base, engines)
        _write_private(config.data_dir / STACK_FILE, _stack_description(settings))
        dev = ensure_dev_credentials(services.access, config.data_dir / DEV_CREDENTIALS_FILE)
        api = ApiServer(create_app(lambda: services), listener)
        _start(running, started, api)
        for make_worker in BACKGROUND_WORKERS:
            _start(running, started, make_worker(services))
        yield LocalStack(
            config=config,
            settings=settings,
            services=services,
            dev=dev,
            api_url=f"http://{_connectable(config.host)}:{settings.port}",
            backend_description=engines.description,
            components=tuple(started),
        )


def local_settings(env: Mapping[str, str], data_dir: Path) -> Settings:
    """Settings.from_env(env) with both secrets resolved by local_secret() under `data_dir`, and
    private endpoint URLs allowed unless STRAIT_ALLOW_PRIVATE_ENDPOINTS is set (to anything).

    Raises LocalStackError for a value Settings refuses, a scheduler interval that is not positive,
    or a secret that is too weak.
    """
    try:
        settings = Settings.from_env(env)
    except ValidationError as error:
        raise LocalStackError(f"invalid STRAIT_* configuration: {error}") from error
    admin_secret = local_secret(
        settings.admin_secret,
        data_dir / ADMIN_SECRET_FILE,
        valid_admin_secret,
        "STRAIT_ADMIN_SECRET must have at least 32 characters and not start with 'strait_'",
    )
    run_token_secret = local_secret(
        settings.run_token_secret,
        data_dir / RUN_TOKEN_SECRET_FILE,
        lambda secret: len(secret.encode()) >= RUN_TOKEN_SECRET_MIN_BYTES,
        f"STRAIT_RUN_TOKEN_SECRET must have at least {RUN_TOKEN_SECRET_MIN_BYTES} bytes",
    )
    if settings.scheduler_interval_secs <= 0:
        raise LocalStackError("STRAIT_SCHEDULER_INTERVAL_SECS must be a positive number of seconds")
    allow_private = settings.allow_private_endpoints or not env.get("STRAIT_ALLOW_PRIVATE_ENDPOINTS")
    return settings.model_copy(
        update={
            "admin_secret": admin_secret,
            "run_token_secret": run_token_secret,
            "allow_private_endpoints": allow_private,
        }
    )


def local_engines(config: LocalConfig) -> Engines:
    """The engines of `config.backend`, not started yet: DynamoDB Local persisted under
    `<data dir>/dynamodb` plus moto for SQS, or one in-memory moto server for both."""
    if config.backend == "moto":
        moto = MotoServer(config.sqs_port or config.dynamodb_port, log_path=config.data_dir / "moto.log")
        return Engines(
            components=(moto,),
            dynamodb_endpoint_url=moto.endpoint_url,
            sqs_endpoint_url=moto.endpoint_url,
            description=f"moto (DynamoDB and SQS in memory on {moto.endpoint_url})",
        )
    dynamodb = DynamoDBLocal(config.dynamodb_port, config.data_dir / "dynamodb")
    sqs = MotoServer(config.sqs_port, log_path=config.data_dir / "moto.log")
    return Engines(
        # moto first: started while the JVM warms up, it takes seconds longer than on its own.
        components=(sqs, dynamodb),
        dynamodb_endpoint_url=dynamodb.endpoint_url,
        sqs_endpoint_url=sqs.endpoint_url,
        description=f"dynamodb-local (DynamoDB Local on {dynamodb.endpoint_url}, SQS on moto at "
        f"{sqs.endpoint_url})",
    )


def local_secret(configured: str, path: Path, is_valid: Callable[[str], bool], requirement: str) -> str:
    """`configured` if set; else the secret stored at `path`; else a new random one (64 hex
    characters, so never an API key look-alike) stored there with mode 0600.

    Raises LocalStackError, quoting `requirement`, if the configured or stored secret fails `is_valid`.
    """
    if configured:
        if not is_valid(configured):
            raise LocalStackError(requirement)
        return configured
    stored = _read_private(path)
    if stored is not None:
        if not is_valid(stored):
            raise LocalStackError(
                f"{path} holds an unusable secret ({requirement}): delete it to get a new one"
            )
        return stored
    secret = secrets.token_hex(32)
    _write_private(path, secret)
    return secret


def use_fake_aws_credentials(environ: MutableMapping[str, str]) -> None:
    """Put fake AWS keys in `environ` unless it holds a key pair; environment keys win over any
    profile, so a developer's account is never used by the local engines' clients."""
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        return
    environ.update(FAKE_AWS_CREDENTIALS)


def ensure_dev_credentials(access: AccessService, path: Path) -> DevCredentials:
    """The dev project and `*` key stored at `path` while the key still authenticates for that
    project; otherwise a new key (in the stored project if it exists, else in a new one), stored
    at `path` with mode 0600 before it is returned."""
    stored = _read_dev_credentials(path)
    if stored is not None and _authenticates(access, stored):
        return stored
    credentials = _new_dev_credentials(access, stored.project_id if stored is not None else None)
    _write_private(path, credentials.model_dump_json(indent=2) + "\n")
    return credentials


def banner(stack: LocalStack) -> str:
    """What `make dev` prints once the stack answers: where it is, the secrets, one curl line."""
    rows = (
        ("API", stack.api_url),
        ("Docs", f"{stack.api_url}/docs"),
        ("Admin secret", stack.settings.admin_secret),
        ("Project id", stack.dev.project_id),
        ("API key", stack.dev.api_key),
        ("Data dir", str(stack.config.data_dir)),
        ("Backend", stack.backend_description),
    )
    width = max(len(label) for label, _ in rows) + 2
    curl = (
        f"curl -s -H 'Authorization: Bearer {stack.dev.api_key}' "
        f"'{stack.api_url}/v1/runs?project_id={stack.dev.project_id}'"
    )
    return "\n".join(
        [
            "",
            "Strait Runs local stack is ready.",
            *(f"  {label:<{width}}{value}" for label, value in rows),
            "",
            "Try:",
            f"  {curl}",
            "",
            READY_LINE,
            "",
        ]
    )


class StopRequested(BaseException):
    """Raised in the main thread by SIGINT or SIGTERM; a BaseException so that no `except
    Exception` on the way up swallows it before the stack unwinds."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stack until SIGINT or SIGTERM (exit 0), a component stopping by itself (exit 1),
    or a failure to start (exit 1, with the reason on stderr). Takes no arguments."""
    if argv:
        print("usage: python -m straitruns.local.dev (configured by STRAIT_* variables)", file=sys.stderr)
        return 2
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _request_stop)
    try:
        with start_stack() as stack:
            print(banner(stack), flush=True)
            stopped = _watch(stack)
        _say(f"{stopped} stopped unexpectedly; the local stack was shut down.")
        return 1
    except StopRequested as request:
        _say(f"Stopped on {request}.")
        return 0
    except BackendNotInstalledError as error:
        _say(f"The local stack could not start: {error}\n(STRAIT_LOCAL_BACKEND=moto needs no Java.)")
    except (LocalStackError, BackendError, TemplateError, ProvisionError, OSError) as error:
        _say(f"The local stack could not start: {error}")
    return 1


def _watch(stack: LocalStack) -> str:
    while (stopped := stack.stopped_component()) is None:
        time.sleep(WATCH_INTERVAL_SECONDS)
    return stopped


def _request_stop(signum: int, _frame: FrameType | None) -> NoReturn:
    # Further signals are ignored so that a second Ctrl-C cannot cut the shutdown short and leave
    # an engine behind; every stop step has its own timeout instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise StopRequested(signal.Signals(signum).name)


def _start(running: ExitStack, started: list[Component], component: Component) -> None:
    _say(f"Starting {component.name}...")
    # Registered first: a start cut short (by a signal, say) still stops what it launched.
    running.callback(_stop, component)
    component.start()
    started.append(component)


def _stop(component: Component) -> None:
    _say(f"Stopping {component.name}...")
    component.stop()


def _stack_description(settings: Settings) -> str:
    description = settings.model_dump(mode="json", exclude={"admin_secret", "run_token_secret"})
    description["effects_failure_queue_url"] = settings.run_queue_url.replace("-runs", "-effects-failures")
    return json.dumps(description, indent=2) + "\n"


def _migrate(table: DynamoTable) -> None:
    """Brings a data folder written before the current stored layout to it (docs/deployment.md
    #migrations); a new table is marked current at once."""
    if layout_version(table) >= LAYOUT_VERSION:
        return
    if is_empty(table):
        mark_current(table)
        return
    print("Migrating the data folder to the current stored layout...", flush=True)
    report = migrate(table)
    print(f"  {report.runs_converted} runs converted, {report.jobs_counted} jobs counted.", flush=True)


def _provisioned_services(base: Settings, engines: Engines) -> tuple[Settings, Services]:
    settings = base.model_copy(
        update={
            "dynamodb_endpoint_url": engines.dynamodb_endpoint_url,
            "sqs_endpoint_url": engines.sqs_endpoint_url,
        }
    )
    dynamodb, sqs = aws_clients(settings)
    template = load_template()
    ensure_table(dynamodb, settings.table_name, table_spec(template))
    _migrate(DynamoTable(dynamodb, settings.table_name))
    queues = ensure_queues(
        sqs, f"{settings.table_name}-runs", f"{settings.table_name}-dead-letters", queue_specs(template)
    )
    settings = settings.model_copy(
        update={"run_queue_url": queues.run_queue_url, "dead_letter_queue_url": queues.dead_letter_queue_url}
    )
    return settings, build_services(settings, dynamodb_client=dynamodb, sqs_client=sqs)


def _new_dev_credentials(access: AccessService, project_id: str | None) -> DevCredentials:
    admin = Principal(is_admin=True, project_id=None)
    if project_id is not None:
        with suppress(NotFound):
            _, raw_key = access.create_api_key(admin, project_id, DEV_KEY_NAME, None, None)
            return DevCredentials(project_id=project_id, api_key=raw_key)
    project = access.create_project(admin, DEV_PROJECT_NAME)
    _, raw_key = access.create_api_key(admin, project.id, DEV_KEY_NAME, None, None)
    return DevCredentials(project_id=project.id, api_key=raw_key)


def _authenticates(access: AccessService, credentials: DevCredentials) -> bool:
    try:
        principal = access.authenticate(f"Bearer {credentials.api_key}")
    except Unauthenticated:
        return False
    return principal.project_id == credentials.project_id and Scope.ALL in principal.scopes


def _read_dev_credentials(path: Path) -> DevCredentials | None:
    text = _read_private(path)
    if text is None:
        return None
    try:
        return DevCredentials.model_validate_json(text)
    except ValidationError:
        return None  # an unreadable file only costs a new dev key


def _port(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise LocalStackError(f"{name} must be a port number (1..65535), got {raw!r}")
    return int(raw)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise LocalStackError(
            f"cannot listen on {host}:{port} ({reason}): set STRAIT_PORT or STRAIT_HOST"
        ) from error


def _connectable(host: str) -> str:
    """The address a client on this machine uses to reach a server bound to `host`."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _read_private(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return text or None


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only, never visible half-written."""
    staging = path.with_name(f".{path.name}.tmp")
    staging.unlink(missing_ok=True)
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
    os.replace(staging, path)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
