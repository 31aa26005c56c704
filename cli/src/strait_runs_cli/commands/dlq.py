"""The dead-letter list: `dlq list` and `dlq replay [filters]`."""

from __future__ import annotations

import click

from strait_runs_cli.commands.bulk import confirmation_options, run_bulk
from strait_runs_cli.commands.runs_read import RUN_PAGE_MAX
from strait_runs_cli.listing import Output, cursor_option, limit_options, output_options, print_runs
from strait_runs_cli.run_filter import RunFilter, run_filter_options
from strait_runs_cli.runtime import runtime


@click.group("dlq")
def dlq() -> None:
    """Dead letters: runs whose retryable failures used up their attempts."""


@dlq.command("list")
@click.option("--job", metavar="JOB", help="Only dead letters of this job (its id or slug).")
@limit_options(default=50, what="dead-lettered run")
@cursor_option
@output_options
def list_dead_letters(job: str | None, limit: int | None, cursor: str | None, output: Output) -> None:
    """List dead-lettered runs, newest first."""
    client = runtime().client()
    params = {"project_id": client.project_id(), "job_id": client.job_id(job) if job else None}
    pager = client.pages("/v1/runs/dlq", params, page_size=RUN_PAGE_MAX, limit=limit, cursor=cursor)
    print_runs(pager, output)


@dlq.command("replay")
@run_filter_options(status=False, bulk=True)
@confirmation_options
def replay_dead_letters(run_filter: RunFilter, dry_run: bool, yes: bool) -> None:
    """Put dead letters back in the queue: all, or those the filters match.

    A bulk operation of the `dlq-replay` action on runs in `dead_letter`: counts them first, asks
    before starting (unless --yes), shows the progress and a summary. One run:
    `strait-runs runs dlq-replay RUN`.

    \b
    Examples:
      strait-runs dlq replay --job send-report --dry-run
      strait-runs dlq replay --error-class timeout --created-after 1d --yes
    """
    run_bulk("dlq-replay", run_filter, dry_run=dry_run, yes=yes, fixed={"status": "dead_letter"})
