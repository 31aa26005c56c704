"""`strait-runs`: the root command, its global options, and the exit code rules (0 success,
1 API or network error, 2 usage error, 3 a run ended other than `completed`, 130 Ctrl-C)."""

from __future__ import annotations

import sys

import click

from strait_runs_cli import __version__
from strait_runs_cli.commands.bulk import bulk
from strait_runs_cli.commands.config import config
from strait_runs_cli.commands.dlq import dlq
from strait_runs_cli.commands.jobs import jobs
from strait_runs_cli.commands.runs import runs
from strait_runs_cli.outcomes import ExitCode
from strait_runs_cli.render import details_table, echo_json
from strait_runs_cli.runtime import Runtime, runtime

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.option(
    "--api-url",
    metavar="URL",
    help="The API's base URL  [env STRAIT_API_URL; default http://127.0.0.1:8080]",
)
@click.option(
    "--api-key", metavar="KEY", help="An API key (strait_...) or the admin secret  [env STRAIT_API_KEY]"
)
@click.option(
    "--project",
    metavar="PROJECT_ID",
    help="The project to act on; needed with the admin secret only (a key acts on its own)  "
    "[env STRAIT_PROJECT_ID]",
)
@click.option("--profile", metavar="NAME", help="Take unset values from this profile  [env STRAIT_PROFILE]")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    default=30.0,
    show_default=True,
    help="Seconds to wait for each API answer.",
)
@click.version_option(__version__, "--version", prog_name="strait-runs")
@click.pass_context
def cli(
    ctx: click.Context,
    api_url: str | None,
    api_key: str | None,
    project: str | None,
    profile: str | None,
    timeout: float,
) -> None:
    """Strait Runs from the terminal: list, watch, tail, steer and bulk-operate runs.

    \b
    Configure once (or use the flags / STRAIT_* variables):
      strait-runs config set api-url http://127.0.0.1:8080
      strait-runs config set api-key strait_...

    \b
    Exit codes: 0 success (tail, --wait: the run completed), 1 API or network error,
    2 usage error, 3 the run ended failed, timed_out, crashed, system_failed, canceled,
    expired or dead_letter, 130 interrupted (Ctrl-C).
    """
    state = ctx.ensure_object(Runtime)
    state.flags = {"api_url": api_url, "api_key": api_key, "project": project}
    state.profile_flag = profile
    state.timeout = timeout
    ctx.call_on_close(state.close)


@cli.command("whoami")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API answered.")
def whoami(as_json: bool) -> None:
    """Show who the configured credential is.

    Its kind (api_key or admin), project, key id, name and scopes, from GET /v1/me.
    """
    me = runtime().client().me()
    if as_json:
        echo_json(me)
    else:
        runtime().out.print(details_table(me))


for _group in (runs, jobs, dlq, bulk, config):
    cli.add_command(_group)


def main(argv: list[str] | None = None) -> None:
    """The console script: runs the command and exits with its code. Errors are one message on
    stderr (ClickException), Ctrl-C is exit 130 without a traceback."""
    try:
        code = cli.main(args=argv, prog_name="strait-runs", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
