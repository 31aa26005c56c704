"""`config`: named profiles of API URL, API key and project in the user's config file."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from strait_runs_cli.config_file import FIELDS, ConfigFile, check_profile_name
from strait_runs_cli.runtime import runtime
from strait_runs_cli.safe_text import one_line
from strait_runs_cli.settings import check_api_url, selected_profile

KEY_CHOICE = click.Choice(sorted(FIELDS))


def _profile_to_edit(config: ConfigFile) -> str:
    name, _ = selected_profile(runtime().profile_flag, config, runtime().env)
    return name


def _masked(field: str, value: str | None) -> str:
    if value is None:
        return "-"
    if field == "api_key":
        return value[:11] + "…" + value[-4:] if len(value) > 20 else "****"
    return one_line(value)


@click.group("config")
def config() -> None:
    """Profiles: API URL, API key and project saved under a name.

    Values are taken from, in order: the flags (--api-url, --api-key, --project), the
    environment (STRAIT_API_URL, STRAIT_API_KEY, STRAIT_PROJECT_ID), the profile (--profile,
    STRAIT_PROFILE, else the current profile, else `default`), the default API URL
    http://127.0.0.1:8080. The file is $STRAIT_CONFIG, else config.toml in the user's config
    directory (see `strait-runs config path`).

    \b
    Example:
      strait-runs --profile staging config set api-url https://runs.example.com
      strait-runs --profile staging config set api-key strait_...
      strait-runs config use staging
    """


@config.command("set")
@click.argument("key", type=KEY_CHOICE)
@click.argument("value")
def set_value(key: str, value: str) -> None:
    """Save a setting in a profile.

    KEY is api-url, api-key or project; the profile is --profile, else the current one.
    """
    if key == "api-url":
        value = check_api_url(value)
    if not value.strip() or any(character.isspace() for character in value):
        raise click.BadParameter("must be non-empty, without spaces", param_hint="VALUE")
    stored = runtime().config()
    profile = _profile_to_edit(stored)
    stored.profiles.setdefault(profile, {})[FIELDS[key]] = value
    stored.save()
    runtime().err.print(f"Saved {key} in profile {profile} ({stored.path}).", markup=False)


@config.command("unset")
@click.argument("key", type=KEY_CHOICE)
def unset_value(key: str) -> None:
    """Remove KEY from the profile."""
    stored = runtime().config()
    profile = _profile_to_edit(stored)
    stored.profiles.get(profile, {}).pop(FIELDS[key], None)
    stored.save()
    runtime().err.print(f"Removed {key} from profile {profile}.", markup=False)


@config.command("use")
@click.argument("profile")
def use_profile(profile: str) -> None:
    """Make PROFILE the current profile.

    It is used when neither --profile nor STRAIT_PROFILE names one.
    """
    stored = runtime().config()
    check_profile_name(profile)
    if profile not in stored.profiles:
        raise click.BadParameter(
            f"no profile {profile!r}; create it with `strait-runs --profile {profile} config set ...`"
        )
    stored.current_profile = profile
    stored.save()
    runtime().err.print(f"Current profile: {profile}.", markup=False)


@config.command("show")
def show() -> None:
    """Show the settings in force and where each comes from.

    The API key is masked. The profiles of the config file are listed after.
    """
    settings = runtime().settings()
    table = Table(
        show_header=False, box=None, pad_edge=False, title=f"profile {settings.profile}", title_justify="left"
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_column(style="dim")
    for name, value in (
        ("api_url", settings.api_url),
        ("api_key", settings.api_key),
        ("project", settings.project),
    ):
        table.add_row(name.replace("_", "-"), Text(_masked(name, value)), Text(settings.sources[name]))
    runtime().out.print(table)
    stored = runtime().config()
    if stored.profiles:
        names = ", ".join(
            f"{name}{' (current)' if name == stored.current_profile else ''}"
            for name in sorted(stored.profiles)
        )
        runtime().out.print(f"Profiles in {stored.path}: {names}", markup=False)


@config.command("path")
def path() -> None:
    """Print where the config file is."""
    click.echo(str(runtime().config().path))
