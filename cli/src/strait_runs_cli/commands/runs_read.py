"""Reading runs: `runs list`, `get`, `events`, `children`, `lineage`, `debug-bundle`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from strait_runs_cli import json_text
from strait_runs_cli.api import api_path, decode
from strait_runs_cli.listing import (
    Output,
    cursor_option,
    json_option,
    limit_options,
    output_options,
    print_items,
    print_runs,
)
from strait_runs_cli.render import LEVEL_STYLES, clock_time, details_table, echo_json, plain
from strait_runs_cli.run_filter import RunFilter, run_filter_options
from strait_runs_cli.runtime import runtime
from strait_runs_cli.safe_text import one_line, printable

RUN_PAGE_MAX = 100
SUB_LIST_PAGE = 1000
EVENT_LEVELS = ("debug", "info", "warn", "error")


@click.command("list")
@run_filter_options()
@limit_options(default=50, what="matching run")
@click.option(
    "--page-size",
    type=click.IntRange(1, RUN_PAGE_MAX),
    metavar="N",
    default=RUN_PAGE_MAX,
    show_default=True,
    help="Runs asked for per request.",
)
@cursor_option
@output_options
def list_runs(
    run_filter: RunFilter, limit: int | None, page_size: int, cursor: str | None, output: Output
) -> None:
    """List runs, newest first.

    Filters combine (AND). Without --all, at most --limit runs are printed and, when more match,
    a line on stderr tells how to go on.

    \b
    Examples:
      strait-runs runs list --status failed --job send-report
      strait-runs runs list --metadata customer=acme --created-after 2h --json
      strait-runs runs list --payload-contains '{"order": {"id": 7}}' --all --jsonl
    """
    client = runtime().client()
    params = {"project_id": client.project_id(), **run_filter.query(client)}
    pager = client.pages("/v1/runs", params, page_size=page_size, limit=limit, cursor=cursor)
    print_runs(pager, output)


@click.command("get")
@click.argument("run_id")
@json_option
def get_run(run_id: str, as_json: bool) -> None:
    """Show one run, payload and result included."""
    run = runtime().client().get(api_path("/v1/runs/{}", run_id))
    if as_json:
        echo_json(run)
    else:
        runtime().out.print(details_table(run))


def _events_table(events: list[Any]) -> Table:
    table = Table(header_style="bold", box=None, pad_edge=False)
    for name, justify in (("SEQ", "right"), ("TIME (UTC)", "left"), ("LEVEL", "left"), ("TYPE", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("MESSAGE", overflow="fold")
    table.add_column("DATA", overflow="fold")
    for event in events:
        level = str(event.get("level") or "")
        data = event.get("data")
        table.add_row(
            plain(event.get("sequence")),
            Text(clock_time(event.get("created_at"))),
            Text(one_line(level), style=LEVEL_STYLES.get(level, "")),
            plain(event.get("type")),
            plain(event.get("message")),
            Text(printable(json_text.compact(data)), style="dim") if data not in (None, {}) else Text(""),
        )
    return table


@click.command("events")
@click.argument("run_id")
@click.option("--level", type=click.Choice(EVENT_LEVELS), help="Only events of this level.")
@click.option(
    "--type",
    "event_type",
    metavar="TYPE",
    help="Only events of this type (log, progress, status_change, ...).",
)
@output_options
def list_events(run_id: str, level: str | None, event_type: str | None, output: Output) -> None:
    """List a run's events, oldest first.

    Every event of the run (page after page), or those of one level or type.
    """
    client = runtime().client()
    params = {"level": level, "type": event_type}
    pager = client.pages(api_path("/v1/runs/{}/events", run_id), params, page_size=SUB_LIST_PAGE)
    print_items(pager.items(), output, _events_table, "No events.")


@click.command("children")
@click.argument("run_id")
@output_options
def list_children(run_id: str, output: Output) -> None:
    """List the runs a run spawned, oldest first."""
    client = runtime().client()
    print_runs(client.pages(api_path("/v1/runs/{}/children", run_id), page_size=SUB_LIST_PAGE), output)


@click.command("lineage")
@click.argument("run_id")
@output_options
def list_lineage(run_id: str, output: Output) -> None:
    """List a run's continue-as-new chain.

    From the root run to the newest, whichever run of the chain is named.
    """
    client = runtime().client()
    print_runs(client.pages(api_path("/v1/runs/{}/lineage", run_id), page_size=SUB_LIST_PAGE), output)


@click.command("debug-bundle")
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    "target",
    required=True,
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    help="The file to write the bundle to ('-' for stdout).",
)
def debug_bundle(run_id: str, target: Path) -> None:
    """Save a run's debug bundle to a file.

    The bundle is the run with its events, checkpoints, usage, tool calls and outputs, as the JSON
    the API answered.
    """
    client = runtime().client()
    response = client.call("GET", api_path("/v1/runs/{}/debug-bundle", run_id))
    decoded = decode(response)
    bundle: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    if str(target) == "-":
        sys.stdout.buffer.write(response.content)
        sys.stdout.buffer.flush()
    else:
        try:
            target.write_bytes(response.content)
        except OSError as error:
            raise click.FileError(str(target), hint=str(error)) from None
        counts = ", ".join(
            f"{len(bundle.get(part) or [])} {part.replace('_', ' ')}"
            for part in ("events", "checkpoints", "usage", "tool_calls", "outputs")
        )
        runtime().err.print(f"Wrote the debug bundle of {run_id} to {target} ({counts}).", markup=False)
    if bundle.get("truncated"):
        runtime().err.print(
            "The API capped this bundle (truncated: true): some lists are incomplete.", style="yellow"
        )
