"""Bulk operations (`POST /v1/bulk-operations`): act on every run a filter matches, with a dry
run first, a confirmation, a progress bar while the server works, and a summary at the end.

`strait-runs bulk cancel|replay|dlq-replay|reschedule|pause|resume [filters]`, and for an
operation already started: `bulk status`, `bulk watch`, `bulk results`, `bulk abort`.
`dlq replay` (commands/dlq.py) is the `dlq-replay` action on dead-lettered runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from strait_runs_cli.api import ApiClient, api_path
from strait_runs_cli.errors import ApiError, UnexpectedResponse
from strait_runs_cli.listing import Output, json_option, limit_options, output_options, print_items
from strait_runs_cli.outcomes import BULK_FINAL_STATUSES, ExitCode
from strait_runs_cli.render import details_table, echo_json, plain, runs_table, status_text
from strait_runs_cli.run_filter import RunFilter, parse_duration, parse_time, run_filter_options
from strait_runs_cli.runtime import runtime
from strait_runs_cli.safe_text import one_line
from strait_runs_cli.sse import StreamFollower

BULK_PATH = "/v1/bulk-operations"
POLL_INTERVAL_SECS = 1.0
RESULTS_PAGE = 100
SAMPLE_SHOWN = 10
# What each action does, for the confirmation question and the summary.
VERBS = {
    "cancel": "Cancel",
    "replay": "Replay",
    "dlq-replay": "Replay from the dead-letter list",
    "reschedule": "Reschedule",
    "pause": "Pause",
    "resume": "Resume",
}
OUTCOME_STYLES = {"done": "green", "skipped": "yellow", "failed": "bold red"}


def run_bulk(
    action: str,
    run_filter: RunFilter,
    *,
    dry_run: bool,
    yes: bool,
    all_runs: bool = False,
    fixed: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """The whole flow: dry run (prints the count and a sample), confirmation (skipped by
    `yes`), start, progress until the operation ends, summary. `fixed` filter keys are always
    sent (dlq replay's status); `extra` goes into the request body (scheduled_at, ...)."""
    client = runtime().client()
    bulk_filter = _filter(client, run_filter, all_runs, fixed or {})
    request = {"action": action, "filter": bulk_filter, **(extra or {})}
    preview = client.json("POST", BULK_PATH, body={**request, "dry_run": True})
    matching = preview.get("matching") if isinstance(preview, dict) else None
    if not isinstance(matching, int):
        raise UnexpectedResponse(200, "the dry run did not say how many runs match")
    _print_preview(matching, preview.get("sample"))
    if dry_run or matching == 0:
        return
    if not yes:
        _confirm(f"{VERBS[action]} {matching} run{'s' if matching != 1 else ''}?")
    operation = client.json("POST", BULK_PATH, body={**request, "dry_run": False}, ok=(202,))
    operation_id = _operation_id(operation)
    runtime().err.print(f"Started bulk operation {operation_id}.", markup=False)
    follow_operation(client, operation_id, operation)


def _filter(
    client: ApiClient, run_filter: RunFilter, all_runs: bool, fixed: dict[str, Any]
) -> dict[str, Any]:
    if all_runs and not run_filter.is_empty():
        raise click.UsageError("--all-runs stands alone: it takes no other filter")
    if all_runs:
        return {"all": True, **fixed}
    if run_filter.is_empty() and not fixed:
        raise click.UsageError(
            "no filter given: that would act on every run of the project. "
            "Add filters, or --all-runs to mean it"
        )
    return {**run_filter.bulk_filter(client), **fixed}


def _print_preview(matching: int, sample: Any) -> None:
    out = runtime().out
    out.print(f"{matching} run{'s' if matching != 1 else ''} match.", markup=False)
    if not isinstance(sample, list) or not sample or matching == 0:
        return
    shown = sample[:SAMPLE_SHOWN]
    if all(isinstance(item, dict) for item in shown):
        out.print(runs_table(shown, title="For example:"))
    else:
        out.print("For example: " + ", ".join(one_line(str(item)) for item in shown), markup=False)


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise click.UsageError("confirmation needed and stdin is not a terminal: pass --yes to go ahead")
    if not click.confirm(question, default=False, err=True):
        runtime().err.print("Nothing started.")
        raise click.exceptions.Exit(ExitCode.OK)


def _operation_id(operation: Any) -> str:
    if not isinstance(operation, dict) or not isinstance(operation.get("id"), str):
        raise UnexpectedResponse(202, "the API did not answer with a bulk operation")
    return str(operation["id"])


def follow_operation(client: ApiClient, operation_id: str, operation: dict[str, Any] | None = None) -> None:
    """A progress bar until the operation ends (from its stream; by polling where the stream is
    not offered), then the summary. Exits 1 when the operation failed or was canceled; Ctrl-C
    leaves it running and says how to come back to it."""
    path = api_path(BULK_PATH + "/{}", operation_id)
    snapshot = operation or client.get(path)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=runtime().err,
    )
    task = progress.add_task(f"{snapshot.get('action', 'bulk')} {operation_id}", total=None, counts="")

    def show(state: dict[str, Any]) -> None:
        total = state.get("total")
        progress.update(
            task,
            total=total if isinstance(total, int) else None,
            completed=int(state.get("processed") or 0),
            counts=_counts(state),
        )

    try:
        with progress:
            show(snapshot)
            _await_end(client, path, snapshot, show)
        final = client.get(path)
    except KeyboardInterrupt:
        runtime().err.print(
            f"Stopped watching; {operation_id} goes on on the server. "
            f"Follow it with `strait-runs bulk watch {operation_id}`, "
            f"stop it with `strait-runs bulk abort {operation_id}`.",
            markup=False,
        )
        raise click.exceptions.Exit(ExitCode.INTERRUPTED) from None
    _summarise(operation_id, final)


def _await_end(
    client: ApiClient, path: str, snapshot: dict[str, Any], show: Callable[[dict[str, Any]], None]
) -> None:
    if snapshot.get("status") in BULK_FINAL_STATUSES:
        return
    stream = StreamFollower(client, path + "/stream", sleep=runtime().sleep)
    try:
        for frame in stream.frames():
            if frame.event == "end":
                return
            data = frame.json()
            if frame.event == "progress" and isinstance(data, dict):
                show(data)
        return
    except ApiError as error:
        if error.status != 404:
            raise
    while (state := client.get(path)).get("status") not in BULK_FINAL_STATUSES:
        show(state)
        runtime().sleep(POLL_INTERVAL_SECS)


def _counts(state: dict[str, Any]) -> str:
    done, skipped, failed = (state.get(name) or 0 for name in ("succeeded", "skipped", "failed"))
    return f"done {done} · skipped {skipped} · failed {failed}"


def _summarise(operation_id: str, final: Any) -> None:
    status = str(final.get("status"))
    line = Text(f"Bulk {one_line(str(final.get('action')))} {one_line(operation_id)} ")
    line.append(one_line(status), style={"completed": "bold green"}.get(status, "bold red"))
    line.append(
        f": {final.get('succeeded') or 0} done, {final.get('skipped') or 0} skipped, "
        f"{final.get('failed') or 0} failed (of {final.get('total') or 0})."
    )
    runtime().out.print(line)
    runtime().out.print(f"Per-run results: strait-runs bulk results {operation_id}", markup=False)
    if status == "completed":
        return
    reason = f": {final['error']}" if final.get("error") else ""
    raise click.ClickException(f"bulk operation {operation_id} {status}{reason}")


def _scheduled_at(at_time: str | None, delay: timedelta | None) -> str:
    if (at_time is None) == (delay is None):
        raise click.UsageError("give exactly one of --at TIME and --in DURATION")
    if at_time:
        return at_time
    moment = datetime.now(UTC) + (delay or timedelta())
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def confirmation_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--dry-run and --yes, shared by every bulk action and `dlq replay`."""
    command = click.option("--yes", "-y", is_flag=True, help="Start without asking for confirmation.")(
        command
    )
    return click.option("--dry-run", is_flag=True, help="Only count the matching runs and show a sample.")(
        command
    )


def _action_command(action: str, summary: str) -> click.Command:
    @run_filter_options(bulk=True)
    @click.option("--all-runs", is_flag=True, help="Act on every run of the project (no filter).")
    @confirmation_options
    def command(run_filter: RunFilter, all_runs: bool, dry_run: bool, yes: bool, **extra: Any) -> None:
        body: dict[str, Any] = {}
        if action == "reschedule":
            body["scheduled_at"] = _scheduled_at(extra.get("at_time"), extra.get("delay"))
        if extra.get("from_latest_checkpoint"):
            body["from_latest_checkpoint"] = True
        run_bulk(action, run_filter, dry_run=dry_run, yes=yes, all_runs=all_runs, extra=body)

    command.__doc__ = (
        f"{summary}\n\nCounts the matching runs first (a dry run) and asks before starting, unless "
        "--yes. Then shows the progress until the operation ends, and a summary: runs done, "
        "skipped (not in a state the action accepts) and failed. Exit 0 when the operation "
        "completed, 1 when it failed or was aborted."
    )
    if action == "reschedule":
        command = click.option(
            "--in",
            "delay",
            metavar="DURATION",
            callback=parse_duration,
            help="Or this long from now: 90s, 10m, 2h.",
        )(command)
        command = click.option(
            "--at", "at_time", metavar="TIME", callback=parse_time, help="The new time (RFC 3339)."
        )(command)
    if action == "replay":
        command = click.option(
            "--from-latest-checkpoint",
            is_flag=True,
            help="Each new run starts from its run's latest checkpoint.",
        )(command)
    return click.command(action)(command)


@click.group("bulk")
def bulk() -> None:
    """Act on many runs at once, chosen by filter (bulk operations).

    \b
    Examples:
      strait-runs bulk cancel --job send-report --status queued --yes
      strait-runs bulk replay --status failed --created-after 1h --dry-run
      strait-runs bulk reschedule --job nightly --status delayed --in 2h
    """


for _action, _summary in (
    ("cancel", "Cancel the matching runs (and their descendants)."),
    ("replay", "Replay the matching ended runs, each as a new run."),
    ("dlq-replay", "Put the matching dead-lettered runs back in the queue."),
    ("reschedule", "Move the matching runs that have not started to another time."),
    ("pause", "Pause the matching runs."),
    ("resume", "Resume the matching paused runs."),
):
    bulk.add_command(_action_command(_action, _summary))


@bulk.command("status")
@click.argument("operation_id")
@json_option
def status(operation_id: str, as_json: bool) -> None:
    """Show a bulk operation: its status and counts."""
    operation = runtime().client().get(api_path(BULK_PATH + "/{}", operation_id))
    if as_json:
        echo_json(operation)
    else:
        runtime().out.print(details_table(operation))


@bulk.command("watch")
@click.argument("operation_id")
def watch(operation_id: str) -> None:
    """Follow a bulk operation until it ends, then summarise it."""
    follow_operation(runtime().client(), operation_id)


@bulk.command("abort")
@click.argument("operation_id")
@json_option
def abort(operation_id: str, as_json: bool) -> None:
    """Stop a bulk operation.

    Runs it has not reached yet are left alone.
    """
    operation = (
        runtime().client().json("POST", api_path(BULK_PATH + "/{}/cancel", operation_id), ok=(200, 202))
    )
    if as_json:
        echo_json(operation)
        return
    line = Text(f"{one_line(operation_id)}: ")
    line.append_text(status_text(operation.get("status") if isinstance(operation, dict) else None))
    runtime().out.print(line)


def _results_table(results: list[Any]) -> Table:
    table = Table(header_style="bold", box=None, pad_edge=False)
    for name in ("RUN", "OUTCOME", "NEW RUN", "ERROR"):
        table.add_column(name, no_wrap=name != "ERROR", overflow="fold")
    for result in results:
        outcome = one_line(str(result.get("outcome")))
        table.add_row(
            plain(result.get("run_id")),
            Text(outcome, style=OUTCOME_STYLES.get(outcome, "")),
            plain(result.get("new_run_id")),
            plain(result.get("error")),
        )
    return table


@bulk.command("results")
@click.argument("operation_id")
@limit_options(default=100, what="result")
@output_options
def results(operation_id: str, limit: int | None, output: Output) -> None:
    """List what a bulk operation did to each run.

    Each run is done, skipped or failed, with why.
    """
    client = runtime().client()
    pager = client.pages(
        api_path(BULK_PATH + "/{}/results", operation_id),
        page_size=RESULTS_PAGE,
        limit=limit,
    )
    count = print_items(pager.items(), output, _results_table, "No results yet.")
    if output is Output.TABLE and pager.next_cursor:
        runtime().err.print(f"{count} shown; more follow: add --all.", style="dim")
