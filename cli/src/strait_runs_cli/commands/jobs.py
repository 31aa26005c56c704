"""`jobs list` and `jobs trigger JOB [--wait]`."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from strait_runs_cli.api import api_path, decode
from strait_runs_cli.commands.tail import wait_for_end
from strait_runs_cli.json_input import read_json_value
from strait_runs_cli.listing import Output, output_options, print_items
from strait_runs_cli.outcomes import ExitCode, exit_code_of_run
from strait_runs_cli.render import echo_json, plain, status_text
from strait_runs_cli.run_filter import parse_time
from strait_runs_cli.runtime import runtime
from strait_runs_cli.safe_text import one_line

JOB_PAGE = 100


@click.group("jobs")
def jobs() -> None:
    """Jobs: list them, trigger runs."""


def _jobs_table(found: list[Any]) -> Table:
    table = Table(header_style="bold", box=None, pad_edge=False)
    for name in ("JOB", "SLUG", "NAME", "ENABLED", "PAUSED", "MAX ATTEMPTS", "ENDPOINT"):
        table.add_column(name, no_wrap=name in ("JOB", "SLUG"), overflow="fold")
    for job in found:
        table.add_row(
            plain(job.get("id")),
            plain(job.get("slug")),
            plain(job.get("name")),
            plain("yes" if job.get("enabled") else "no"),
            Text("yes", style="magenta") if job.get("paused") else plain("no"),
            plain(job.get("max_attempts")),
            plain(job.get("endpoint_url")),
        )
    return table


@jobs.command("list")
@output_options
def list_jobs(output: Output) -> None:
    """List the project's jobs, oldest first (all of them)."""
    client = runtime().client()
    pager = client.pages("/v1/jobs", {"project_id": client.settings.project}, page_size=JOB_PAGE)
    print_items(pager.items(), output, _jobs_table, "No jobs.")


def _pairs(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, pair_value = value.partition("=")
        if not key or not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}")
        pairs[key] = pair_value
    return pairs


@jobs.command("trigger")
@click.argument("job")
@click.option(
    "--payload", metavar="JSON", callback=read_json_value, help="The run's payload: JSON, @FILE or - (stdin)."
)
@click.option(
    "--metadata", multiple=True, metavar="KEY=VALUE", callback=_pairs, help="Metadata (repeatable)."
)
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", callback=_pairs, help="A tag (repeatable)."
)
@click.option(
    "--priority",
    type=click.IntRange(0, 10),
    metavar="0-10",
    help="Higher runs first where the engine chooses.",
)
@click.option("--idempotency-key", metavar="KEY", help="At most one run per key while it is held.")
@click.option("--concurrency-key", metavar="KEY", help="Counts against the job's per-key concurrency limit.")
@click.option(
    "--scheduled-at", metavar="TIME", callback=parse_time, help="Start no earlier than TIME (RFC 3339)."
)
@click.option("--wait", is_flag=True, help="Wait until the run ends; exit 0 if it completed, 3 otherwise.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON (with --wait: as it ended).")
@click.pass_context
def trigger(
    ctx: click.Context,
    job: str,
    payload: Any,
    metadata: dict[str, str],
    tags: dict[str, str],
    priority: int | None,
    idempotency_key: str | None,
    concurrency_key: str | None,
    scheduled_at: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Trigger a run of JOB (its id or slug).

    \b
    Examples:
      strait-runs jobs trigger send-report --payload '{"report": 42}' --metadata customer=acme
      strait-runs jobs trigger send-report --payload @payload.json --wait
    """
    body: dict[str, Any] = {
        key: value
        for key, value in {
            "payload": payload,
            "metadata": metadata or None,
            "tags": tags or None,
            "priority": priority,
            "idempotency_key": idempotency_key,
            "concurrency_key": concurrency_key,
            "scheduled_at": scheduled_at,
        }.items()
        if value is not None
    }
    client = runtime().client()
    response = client.call("POST", api_path("/v1/jobs/{}/trigger", job), body=body, ok=(200, 201))
    run = decode(response)
    _run_id(run)
    replayed = response.status_code == 200
    if not as_json or not wait:
        _report_trigger(run, replayed, as_json)
    if not wait:
        return
    try:
        status = wait_for_end(client, str(run["id"]))
    except KeyboardInterrupt:
        runtime().err.print(f"Stopped waiting; {run['id']} goes on.", markup=False)
        ctx.exit(ExitCode.INTERRUPTED)
    ended = client.get(api_path("/v1/runs/{}", str(run["id"])))
    if as_json:
        echo_json(ended)
    else:
        line = Text(f"{one_line(str(run['id']))} ended: ")
        line.append_text(status_text(status))
        if ended.get("error"):
            line.append(f"  {one_line(str(ended['error']))}", style="red")
        runtime().out.print(line)
    ctx.exit(exit_code_of_run(status))


def _run_id(run: Any) -> str:
    if not isinstance(run, dict) or not isinstance(run.get("id"), str):
        raise click.ClickException("the API did not answer the trigger with a run")
    return str(run["id"])


def _report_trigger(run: Any, replayed: bool, as_json: bool) -> None:
    if as_json:
        echo_json(run)
        return
    line = Text(f"{one_line(str(run.get('id')))} ")
    line.append("already exists (idempotency key held): " if replayed else "triggered: ")
    line.append_text(status_text(run.get("status")))
    runtime().out.print(line)
