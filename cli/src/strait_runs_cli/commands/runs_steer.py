"""Steering one run: `runs cancel`, `replay`, `dlq-replay`, `pause`, `resume`, `restart`,
`reschedule` and `debug` (they need a key with runs:write)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.text import Text

from strait_runs_cli.api import api_path
from strait_runs_cli.json_input import read_json_value
from strait_runs_cli.listing import json_option
from strait_runs_cli.render import echo_json, status_text
from strait_runs_cli.run_filter import parse_duration, parse_time
from strait_runs_cli.runtime import runtime
from strait_runs_cli.safe_text import one_line


def _report(run: Any, as_json: bool, verb: str) -> None:
    """Prints the run an action answered: its JSON, or `<id> <verb>: <status>`."""
    if as_json:
        echo_json(run)
        return
    line = Text(f"{one_line(str(run.get('id')))} {verb}: ")
    line.append_text(status_text(run.get("status")))
    runtime().out.print(line)


def _post_run(
    path: str, body: Any = None, ok: tuple[int, ...] = (200,), params: dict[str, int | None] | None = None
) -> Any:
    return runtime().client().json("POST", path, params=params, body=body, ok=ok)


@click.command("cancel")
@click.argument("run_id")
def cancel(run_id: str) -> None:
    """Cancel a run and its descendants.

    Every non-terminal descendant is canceled too. A run that has already ended is refused (409).
    """
    runtime().client().call("DELETE", api_path("/v1/runs/{}", run_id), ok=(204,))
    runtime().out.print(f"{run_id} canceled (with its non-terminal descendants).", markup=False)


@click.command("replay")
@click.argument("run_id")
@click.option(
    "--from-checkpoint",
    type=click.IntRange(min=1),
    metavar="SEQUENCE",
    help="Start from this checkpoint's state (the new run is in debug mode).",
)
@json_option
def replay(run_id: str, from_checkpoint: int | None, as_json: bool) -> None:
    """Replay an ended run as a new run.

    The new run has the same job, payload, metadata, tags and overrides, attempt 1.
    """
    params = {"from_checkpoint": from_checkpoint}
    run = _post_run(api_path("/v1/runs/{}/replay", run_id), ok=(201,), params=params)
    _report(run, as_json, f"replays {run_id}")


@click.command("dlq-replay")
@click.argument("run_id")
@json_option
def dlq_replay(run_id: str, as_json: bool) -> None:
    """Put a dead letter back in the queue.

    The same run goes back to queued in place, attempt 1. Many at once: `strait-runs dlq replay`.
    """
    _report(_post_run(api_path("/v1/runs/{}/dlq-replay", run_id)), as_json, "back in the queue")


@click.command("pause")
@click.argument("run_id")
@json_option
def pause(run_id: str, as_json: bool) -> None:
    """Pause a run: it is not dispatched until resumed.

    Delayed, queued and executing runs can be paused (an executing call is not aborted).
    """
    _report(_post_run(api_path("/v1/runs/{}/pause", run_id)), as_json, "paused")


@click.command("resume")
@click.argument("run_id")
@json_option
def resume(run_id: str, as_json: bool) -> None:
    """Resume a paused run (attempt unchanged)."""
    _report(_post_run(api_path("/v1/runs/{}/resume", run_id)), as_json, "resumed")


@click.command("restart")
@click.argument("run_id")
@click.option(
    "--machine-preset", metavar="PRESET", help="Run it on this machine preset (one the API accepts)."
)
@json_option
def restart(run_id: str, machine_preset: str | None, as_json: bool) -> None:
    """Queue a run again on a new generation.

    For queued, executing, paused or waiting runs; the current attempt is abandoned, the attempt
    count unchanged.
    """
    body = {"machine_preset": machine_preset} if machine_preset else {}
    _report(_post_run(api_path("/v1/runs/{}/restart", run_id), body), as_json, "restarted")


@click.command("reschedule")
@click.argument("run_id")
@click.option(
    "--at",
    "at_time",
    metavar="TIME",
    callback=parse_time,
    help="The new time: RFC 3339 (UTC when no offset).",
)
@click.option(
    "--in",
    "delay",
    metavar="DURATION",
    callback=parse_duration,
    help="Or this long from now: 90s, 10m, 2h, 1d.",
)
@click.option(
    "--payload", metavar="JSON", callback=read_json_value, help="Replace the payload (JSON, @FILE or -)."
)
@json_option
def reschedule(
    run_id: str, at_time: str | None, delay: timedelta | None, payload: Any, as_json: bool
) -> None:
    """Move a run that has not started to another time.

    For delayed runs and queued runs never dispatched; at most 30 days ahead.
    """
    if (at_time is None) == (delay is None):
        raise click.UsageError("give exactly one of --at TIME and --in DURATION")
    when = at_time or (datetime.now(UTC) + (delay or timedelta())).isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )
    body: dict[str, Any] = {"scheduled_at": when}
    if payload is not None:
        body["payload"] = payload
    _report(_post_run(api_path("/v1/runs/{}/reschedule", run_id), body), as_json, f"rescheduled to {when}")


@click.command("debug")
@click.argument("run_id")
@click.option("--on/--off", "enabled", default=True, show_default=True, help="Turn debug mode on or off.")
def debug(run_id: str, enabled: bool) -> None:
    """Turn a run's debug mode on or off.

    While on, later attempts record debug.request and debug.response events.
    """
    runtime().client().call(
        "POST", api_path("/v1/runs/{}/debug", run_id), body={"debug_mode": enabled}, ok=(204,)
    )
    runtime().out.print(f"{run_id}: debug mode {'on' if enabled else 'off'}.", markup=False)
