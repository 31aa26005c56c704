"""Which API, key and project a command uses. Each value comes from the first of: the command
line flag, the environment variable, the selected profile of the config file, the default.

The profile is `--profile`, else `$STRAIT_PROFILE`, else the file's `current_profile`, else
`default` (which may be absent: then only flags, variables and defaults count).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import click

from strait_runs_cli.config_file import DEFAULT_PROFILE, ConfigFile, check_profile_name

DEFAULT_API_URL = "http://127.0.0.1:8080"
ENV = {"api_url": "STRAIT_API_URL", "api_key": "STRAIT_API_KEY", "project": "STRAIT_PROJECT_ID"}
PROFILE_ENV = "STRAIT_PROFILE"
API_KEY_PREFIX = "strait_"


@dataclass(frozen=True)
class Settings:
    """The effective configuration, and where each value came from (for `config show`)."""

    api_url: str
    api_key: str | None
    project: str | None
    profile: str
    sources: Mapping[str, str]

    @property
    def is_admin(self) -> bool:
        """Whether the credential is the admin secret (API keys start with `strait_`)."""
        return self.api_key is not None and not self.api_key.startswith(API_KEY_PREFIX)


def selected_profile(flag: str | None, config: ConfigFile, environ: Mapping[str, str]) -> tuple[str, bool]:
    """The profile name, and whether it was asked for explicitly (flag or environment)."""
    explicit = flag or environ.get(PROFILE_ENV)
    if explicit:
        return check_profile_name(explicit), True
    return config.current_profile or DEFAULT_PROFILE, False


def resolve(
    flags: Mapping[str, str | None],
    profile_flag: str | None,
    config: ConfigFile,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings for `flags` (keys api_url, api_key, project); raises click.UsageError for a
    profile named explicitly that the file does not have, or an API URL that is not http(s)."""
    environ = os.environ if environ is None else environ
    profile, explicit = selected_profile(profile_flag, config, environ)
    if explicit and profile not in config.profiles:
        raise click.UsageError(
            f"no profile {profile!r} in {config.path} (create it with `strait-runs config set`)"
        )
    stored = config.profiles.get(profile, {})
    values: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for name, variable in ENV.items():
        if flags.get(name):
            values[name], sources[name] = flags[name], "flag"
        elif environ.get(variable):
            values[name], sources[name] = environ[variable], f"environment {variable}"
        elif stored.get(name):
            values[name], sources[name] = stored[name], f"profile {profile}"
        else:
            values[name], sources[name] = None, "default" if name == "api_url" else "not set"
    api_url = check_api_url(values["api_url"] or DEFAULT_API_URL)
    return Settings(api_url, values["api_key"], values["project"], profile, sources)


def check_api_url(url: str) -> str:
    """`url` without a trailing slash; click.UsageError unless it is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.UsageError(f"the API URL must be an http:// or https:// URL, not {url!r}")
    return url.rstrip("/")
