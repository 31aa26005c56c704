"""Printing lists the way the caller asked: a Rich table (default), `--json` (one array) or
`--jsonl` (one object a line, printed page by page as pages arrive)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any

import click
from rich.console import RenderableType

from strait_runs_cli.api import ApiClient, Pager
from strait_runs_cli.errors import ApiError
from strait_runs_cli.render import echo_json, echo_jsonl, runs_table
from strait_runs_cli.runtime import runtime

JOB_NAMES_READ_AT_MOST = 1000


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"


def output_options[F: Callable[..., Any]](command: F) -> F:
    """Adds --json and --jsonl; the command receives one `output` argument."""

    @functools.wraps(command)
    def with_output(*args: Any, as_json: bool, as_jsonl: bool, **kwargs: Any) -> Any:
        if as_json and as_jsonl:
            raise click.UsageError("--json and --jsonl exclude each other")
        output = Output.JSON if as_json else Output.JSONL if as_jsonl else Output.TABLE
        return command(*args, output=output, **kwargs)

    decorated: Any = click.option("--jsonl", "as_jsonl", is_flag=True, help="One JSON object a line.")(
        with_output
    )
    return click.option("--json", "as_json", is_flag=True, help="One JSON array.")(decorated)  # type: ignore[no-any-return]


def limit_options[F: Callable[..., Any]](default: int, what: str) -> Callable[[F], F]:
    """Adds --limit N (default `default`) and --all; the command receives one `limit` argument,
    None with --all (read to the end, following the cursors)."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def with_limit(*args: Any, limit: int, read_all: bool, **kwargs: Any) -> Any:
            return command(*args, limit=None if read_all else limit, **kwargs)

        decorated: Any = click.option(
            "--all", "read_all", is_flag=True, help=f"Print every {what}, following the cursors (no --limit)."
        )(with_limit)
        return click.option(  # type: ignore[no-any-return]
            "--limit",
            type=click.IntRange(min=1),
            metavar="N",
            default=default,
            show_default=True,
            help=f"Print at most this many {what}s.",
        )(decorated)

    return decorate


def cursor_option[F: Callable[..., Any]](command: F) -> F:
    """Adds --cursor: continue a list where a previous one stopped."""
    return click.option(
        "--cursor", metavar="CURSOR", help="Continue a list where it stopped (the cursor it printed)."
    )(command)


def json_option[F: Callable[..., Any]](command: F) -> F:
    """Adds --json for commands that print one object; the command receives `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help="Print the JSON the API answered.")(command)


def print_items(
    items: Iterable[Any], output: Output, table: Callable[[list[Any]], RenderableType], empty: str
) -> int:
    """Prints `items` as asked; returns how many there were."""
    if output is Output.JSONL:
        count = 0
        for item in items:
            echo_jsonl([item])
            count += 1
        return count
    collected = list(items)
    if output is Output.JSON:
        echo_json(collected)
    elif collected:
        runtime().out.print(table(collected))
    else:
        runtime().err.print(empty, style="dim")
    return len(collected)


def print_runs(pager: Pager, output: Output) -> None:
    """A list of runs; on the table, job slugs instead of ids where the key may read jobs, and a
    count on stderr that says how to read on when more runs remain."""
    client = runtime().client()
    count = print_items(
        pager.items(), output, lambda runs: runs_table(runs, job_names(client)), "No runs match."
    )
    if output is Output.TABLE and count:
        summary = f"{count} run{'s' if count != 1 else ''}"
        if pager.next_cursor:
            summary += f"; more follow: add --all, or --cursor {pager.next_cursor}"
        runtime().err.print(summary, style="dim", markup=False)


@functools.cache
def _job_names_of(client: ApiClient) -> Mapping[str, str]:
    names: dict[str, str] = {}
    params = {"project_id": client.settings.project}
    try:
        for job in client.pages("/v1/jobs", params, page_size=100, limit=JOB_NAMES_READ_AT_MOST).items():
            if isinstance(job, dict) and isinstance(job.get("id"), str):
                names[job["id"]] = str(job.get("slug") or job["id"])
    except (ApiError, click.UsageError):
        return {}
    return names


def job_names(client: ApiClient) -> Mapping[str, str]:
    """Job id -> slug for the acting project (empty when the key may not read jobs)."""
    return _job_names_of(client)
