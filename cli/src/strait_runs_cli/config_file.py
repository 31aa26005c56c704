"""Named profiles in a TOML file under the user's config directory.

    current_profile = "staging"

    [profiles.staging]
    api_url = "https://api.example.com"
    api_key = "strait_..."
    project = "proj_..."

The file is `$STRAIT_CONFIG`, else `config.toml` in click's application directory for
`strait-runs` (`$XDG_CONFIG_HOME/strait-runs`, by default `~/.config/strait-runs`). It holds API
keys, so it is written with mode 0600, atomically (a crash never leaves half a file).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click

from strait_runs_cli.outcomes import ExitCode

CONFIG_ENV = "STRAIT_CONFIG"
APP_NAME = "strait-runs"
# What `config set` accepts, and the key each is stored under.
FIELDS = {"api-url": "api_url", "api-key": "api_key", "project": "project"}
PROFILE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_PROFILE = "default"


class ConfigFileError(click.ClickException):
    """The config file cannot be read or written (exit 2: a configuration problem)."""

    exit_code = ExitCode.USAGE


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the profiles live: $STRAIT_CONFIG, else the user's config directory."""
    explicit = (os.environ if environ is None else environ).get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(click.get_app_dir(APP_NAME)) / "config.toml"


def check_profile_name(name: str) -> str:
    if not PROFILE_NAME.match(name):
        raise click.BadParameter(
            f"{name!r} is not a profile name (1..64 letters, digits, '_' or '-')", param_hint="'--profile'"
        )
    return name


@dataclass
class ConfigFile:
    """The parsed file; `save()` writes it back."""

    path: Path
    current_profile: str | None = None
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> ConfigFile:
        """The file at `path` (default `config_path()`); an absent file is an empty config."""
        path = path or config_path()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ConfigFileError(f"cannot read the config file {path}: {error}") from None
        return cls(path, _current(data, path), _profiles(data, path))

    def save(self) -> None:
        """Writes the file (mode 0600) through a temporary file in the same folder."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".config-", suffix=".toml")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(self.text())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except OSError as error:
            raise ConfigFileError(f"cannot write the config file {self.path}: {error}") from None

    def text(self) -> str:
        lines = ["# strait-runs profiles, written by `strait-runs config`. Holds API keys: keep it private."]
        if self.current_profile:
            lines.append(f"current_profile = {_toml_string(self.current_profile)}")
        for name in sorted(self.profiles):
            lines += ["", f"[profiles.{_toml_key(name)}]"]
            lines += [f"{key} = {_toml_string(value)}" for key, value in sorted(self.profiles[name].items())]
        return "\n".join(lines) + "\n"


def _toml_key(name: str) -> str:
    return name if PROFILE_NAME.match(name) else _toml_string(name)


def _toml_string(value: str) -> str:
    # A JSON string with ASCII escapes is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def _current(data: dict[str, object], path: Path) -> str | None:
    current = data.get("current_profile")
    if current is None or isinstance(current, str):
        return current
    raise ConfigFileError(f"{path}: current_profile must be a string")


def _profiles(data: dict[str, object], path: Path) -> dict[str, dict[str, str]]:
    raw = data.get("profiles", {})
    if not isinstance(raw, dict):
        raise ConfigFileError(f"{path}: [profiles] must be a table of profiles")
    profiles: dict[str, dict[str, str]] = {}
    for name, values in raw.items():
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise ConfigFileError(f"{path}: profile {name!r} must be a table of strings")
        unknown = set(values) - set(FIELDS.values())
        if unknown:
            raise ConfigFileError(f"{path}: profile {name!r} has unknown keys: {', '.join(sorted(unknown))}")
        profiles[name] = dict(values)
    return profiles
