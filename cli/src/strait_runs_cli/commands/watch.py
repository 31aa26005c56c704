"""`runs watch`: the runs matching a filter as a live table, refreshed in place until Ctrl-C."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from strait_runs_cli.api import ApiClient
from strait_runs_cli.errors import ApiError, NetworkError
from strait_runs_cli.listing import job_names
from strait_runs_cli.render import runs_table
from strait_runs_cli.run_filter import RunFilter, run_filter_options
from strait_runs_cli.runtime import runtime
from strait_runs_cli.safe_text import one_line


class RunsView:
    """What the live table shows: the latest page of runs, which of them changed since the
    previous refresh, and why the last refresh failed (if it did)."""

    def __init__(self, read: Callable[[], list[Any]], names: Callable[[], Any]) -> None:
        self._read = read
        self._names = names
        self.runs: list[Any] = []
        self.changed: set[str] = set()
        self.problem: str | None = None
        self.refreshed_at: str | None = None
        self._seen: dict[str, tuple[Any, Any]] = {}

    def refresh(self, strict: bool = False) -> None:
        """Reads the runs again. A network error or a 5xx is shown and retried at the next
        refresh (unless `strict`: the first read); any other API error (bad key, bad filter)
        ends the watch."""
        try:
            runs = self._read()
        except NetworkError as error:
            if strict:
                raise
            self.problem = error.format_message()
            return
        except ApiError as error:
            if strict or error.status < 500:
                raise
            self.problem = error.format_message()
            return
        state = {str(run.get("id")): (run.get("status"), run.get("attempt")) for run in runs}
        self.changed = {
            run_id for run_id, now in state.items() if self._seen and self._seen.get(run_id) != now
        }
        self._seen = state
        self.runs, self.problem = runs, None
        self.refreshed_at = time.strftime("%H:%M:%S")

    def render(self) -> RenderableType:
        title = f"{len(self.runs)} runs, newest first"
        if self.refreshed_at:
            title += f" · refreshed {self.refreshed_at}"
        footer = Text("Ctrl-C to stop", style="dim")
        if self.problem:
            footer = Text(f"Last refresh failed: {one_line(self.problem)} (retrying)", style="yellow")
        return Group(runs_table(self.runs, self._names(), self.changed, title=title), footer)


def _reader(client: ApiClient, params: dict[str, Any], limit: int) -> Callable[[], list[Any]]:
    def read() -> list[Any]:
        return next(iter(client.pages("/v1/runs", params, page_size=limit, limit=limit)), [])

    return read


@click.command("watch")
@run_filter_options()
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    metavar="N",
    default=20,
    show_default=True,
    help="Rows in the table.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    metavar="SECONDS",
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
def watch(run_filter: RunFilter, limit: int, interval: float) -> None:
    """Watch runs live in a table that updates in place.

    The newest matching runs, refreshed every --interval seconds; rows that changed since the
    last refresh are bold. Ctrl-C ends it.

    \b
    Example:
      strait-runs runs watch --job send-report --created-after 1h
    """
    client = runtime().client()
    params = {"project_id": client.project_id(), **run_filter.query(client)}
    view = RunsView(_reader(client, params, limit), lambda: job_names(client))
    view.refresh(strict=True)
    try:
        with Live(view.render(), console=runtime().out, auto_refresh=False, transient=False) as live:
            while True:
                runtime().sleep(interval)
                view.refresh()
                live.update(view.render(), refresh=True)
    except KeyboardInterrupt:
        return
