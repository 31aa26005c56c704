"""The state one invocation shares between the root options and the command: the flags, the
resolved settings, one API client, the consoles. Tests pass their own Runtime as click's `obj`
(with an httpx transport and a sleep of their own) instead of patching anything."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import click
import httpx
from rich.console import Console

from strait_runs_cli.api import DEFAULT_TIMEOUT_SECS, ApiClient
from strait_runs_cli.config_file import ConfigFile, config_path
from strait_runs_cli.render import make_console
from strait_runs_cli.settings import Settings, resolve


@dataclass
class Runtime:
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    environ: Mapping[str, str] | None = None
    flags: dict[str, str | None] = field(default_factory=dict)
    profile_flag: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECS
    _config: ConfigFile | None = None
    _client: ApiClient | None = None
    _out: Console | None = None
    _err: Console | None = None

    def config(self) -> ConfigFile:
        if self._config is None:
            self._config = ConfigFile.load(config_path(self.env))
        return self._config

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ

    def settings(self) -> Settings:
        return resolve(self.flags, self.profile_flag, self.config(), self.env)

    def client(self) -> ApiClient:
        """The API client (click.UsageError when no API key is configured)."""
        if self._client is None:
            self._client = ApiClient(self.settings(), self.transport, self.timeout)
        return self._client

    @property
    def out(self) -> Console:
        if self._out is None:
            self._out = make_console()
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = make_console(stderr=True)
        return self._err

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def runtime() -> Runtime:
    """The current invocation's Runtime."""
    return click.get_current_context().find_object(Runtime) or click.get_current_context().ensure_object(
        Runtime
    )
