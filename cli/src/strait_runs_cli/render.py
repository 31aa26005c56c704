"""What people read: Rich tables and lines with statuses in colour, and JSON for programs
(`--json`: one array; `--jsonl`: one object a line). Text from the API is printed as text, never
as Rich markup, with control characters escaped."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import IO, Any

import click
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.table import Table
from rich.text import Text

from strait_runs_cli import json_text
from strait_runs_cli.safe_text import one_line, printable

# Wide enough that ids are never cut when the output goes to a file or a pipe.
PIPE_WIDTH = 200

STATUS_STYLES = {
    "delayed": "cyan",
    "queued": "cyan",
    "dequeued": "blue",
    "executing": "bold blue",
    "waiting": "magenta",
    "paused": "magenta",
    "replay_staged": "magenta",
    "completed": "bold green",
    "failed": "bold red",
    "timed_out": "bold red",
    "crashed": "bold red",
    "system_failed": "bold red",
    "dead_letter": "bold red",
    "canceled": "yellow",
    "expired": "yellow",
}
LEVEL_STYLES = {"debug": "dim", "info": "", "warn": "yellow", "error": "bold red"}


def make_console(file: IO[str] | None = None, stderr: bool = False) -> Console:
    """A console on stdout (or stderr): colours only on a terminal (NO_COLOR is honoured), and a
    wide page when the output is not a terminal and COLUMNS is not set."""
    stream = file or (sys.stderr if stderr else sys.stdout)
    is_terminal = stream.isatty()
    width = None if is_terminal or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=stream, width=width, highlight=False, soft_wrap=not is_terminal, emoji=False)


def status_text(status: Any) -> Text:
    text = one_line(str(status)) if status is not None else "-"
    return Text(text, style=STATUS_STYLES.get(text, ""))


def plain(value: Any) -> Text:
    """A value as plain (unstyled, unmarked-up) text; None as '-'."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, (dict, list)):
        return Text(printable(json_text.compact(value)))
    return Text(printable(str(value)))


def short_time(value: Any) -> str:
    """An RFC 3339 timestamp as `YYYY-MM-DD HH:MM:SS` (UTC), '-' when absent."""
    if not isinstance(value, str) or not value:
        return "-"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return one_line(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def clock_time(value: Any) -> str:
    """An RFC 3339 timestamp as `HH:MM:SS.mmm` (UTC)."""
    if not isinstance(value, str):
        return "--:--:--.---"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return one_line(value)
    return parsed.strftime("%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}"


def duration(run: Mapping[str, Any]) -> str:
    """How long the run ran (started_at to finished_at), '-' when it has not both."""
    try:
        started = datetime.fromisoformat(str(run.get("started_at")))
        finished = datetime.fromisoformat(str(run.get("finished_at")))
    except ValueError:
        return "-"
    seconds = (finished - started).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


_RUN_COLUMNS = ("RUN", "JOB", "STATUS", "ATTEMPT", "TRIGGER", "CREATED (UTC)", "DURATION", "ERROR")
_RIGHT_ALIGNED = {"ATTEMPT", "DURATION"}
_COLUMN_GAP = 2
_ERROR_MIN_WIDTH = 12
# On a narrow terminal these go first, in this order (--json has every field).
_DROPPED_FIRST = ("TRIGGER", "DURATION", "ATTEMPT")


class RunsTable:
    """Runs as a table: id, job (its slug when known), status, attempt, trigger, created, duration,
    error. Every column but ERROR keeps its full width (ids are never cut); the error gets the
    room left and ends with an ellipsis when it does not fit (`runs get` shows it whole); on a
    narrow terminal the trigger, duration and attempt columns are left out to make room. Rows in
    `changed` are bold (the live view marks what moved since the last refresh)."""

    def __init__(
        self,
        runs: Iterable[Mapping[str, Any]],
        job_names: Mapping[str, str] | None = None,
        changed: set[str] | None = None,
        title: str | None = None,
    ) -> None:
        names = job_names or {}
        self._title = title
        self._rows = [(self._cells(run, names), bool(changed and run.get("id") in changed)) for run in runs]

    @staticmethod
    def _cells(run: Mapping[str, Any], job_names: Mapping[str, str]) -> list[Text]:
        job = str(run.get("job_id") or "")
        return [
            plain(run.get("id")),
            plain(job_names.get(job, job) or None),
            status_text(run.get("status")),
            plain(run.get("attempt")),
            plain(run.get("triggered_by")),
            Text(short_time(run.get("created_at"))),
            Text(duration(run)),
            Text(one_line(str(run["error"])), style="red") if run.get("error") else plain(None),
        ]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = {
            name: max([len(name), *(cells[index].cell_len for cells, _ in self._rows)])
            for index, name in enumerate(_RUN_COLUMNS)
        }
        shown = list(_RUN_COLUMNS)
        for optional in _DROPPED_FIRST:
            if self._room(shown, widths, options.max_width) >= _ERROR_MIN_WIDTH:
                break
            shown.remove(optional)
        table = Table(title=self._title, title_justify="left", header_style="bold", box=None, pad_edge=False)
        for name in shown[:-1]:
            justify: JustifyMethod = "right" if name in _RIGHT_ALIGNED else "left"
            table.add_column(name, no_wrap=True, min_width=widths[name], justify=justify)
        room = max(self._room(shown, widths, options.max_width), _ERROR_MIN_WIDTH)
        table.add_column("ERROR", no_wrap=True, overflow="ellipsis", max_width=room)
        indexes = [_RUN_COLUMNS.index(name) for name in shown]
        for cells, bold in self._rows:
            table.add_row(*(cells[index] for index in indexes), style="bold" if bold else None)
        yield table

    @staticmethod
    def _room(shown: list[str], widths: dict[str, int], max_width: int) -> int:
        """The width left for ERROR when the other `shown` columns take their full width."""
        return max_width - sum(widths[name] for name in shown[:-1]) - _COLUMN_GAP * (len(shown) - 1)


def runs_table(
    runs: Iterable[Mapping[str, Any]],
    job_names: Mapping[str, str] | None = None,
    changed: set[str] | None = None,
    title: str | None = None,
) -> RunsTable:
    """See RunsTable."""
    return RunsTable(runs, job_names, changed, title)


def details_table(item: Mapping[str, Any]) -> Table:
    """One object as `field  value` rows; JSON values indented, statuses coloured."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in item.items():
        if key == "status":
            rendered = status_text(value)
        elif isinstance(value, (dict, list)) and value:
            rendered = Text(printable(json_text.pretty(value)))
        else:
            rendered = plain(value)
        table.add_row(Text(one_line(str(key))), rendered)
    return table


def echo_json(value: Any) -> None:
    click.echo(json_text.pretty(value))


def echo_jsonl(items: Iterable[Any]) -> None:
    for item in items:
        click.echo(json_text.compact(item))
