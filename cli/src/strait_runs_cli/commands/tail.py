"""`runs tail`: a run's live stream as readable lines, resumed after dropped connections, ending
with the run (exit 0 when it completed, 3 for any other end); and the quiet wait that
`jobs trigger --wait` uses."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.text import Text

from strait_runs_cli import json_text
from strait_runs_cli.api import ApiClient, api_path
from strait_runs_cli.outcomes import ExitCode, exit_code_of_run, is_terminal
from strait_runs_cli.render import LEVEL_STYLES, clock_time, status_text
from strait_runs_cli.runtime import runtime
from strait_runs_cli.safe_text import one_line, printable
from strait_runs_cli.sse import Frame, StreamFollower


def follower(
    client: ApiClient, run_id: str, chunks: bool = False, stream_id: str | None = None
) -> StreamFollower:
    """A resuming reader of the run's events (or chunks) stream that says on stderr when it
    lost the connection and where it resumes."""
    path = api_path("/v1/runs/{}/stream/chunks" if chunks else "/v1/runs/{}/stream", run_id)
    err = runtime().err

    def on_reconnect(reason: str, last_event_id: str | None, delay: float) -> None:
        after = f"after event {last_event_id}" if last_event_id else "from the start"
        err.print(
            f"Stream interrupted ({one_line(reason)}); resuming {after} in {delay:.1f} s.",
            style="dim",
            markup=False,
        )

    return StreamFollower(
        client,
        path,
        {"stream_id": stream_id} if stream_id else None,
        sleep=runtime().sleep,
        on_reconnect=on_reconnect,
    )


def final_status(client: ApiClient, run_id: str, end: Frame | None) -> str:
    """The terminal status the stream ended with (its `end` frame, else the run as read now)."""
    if end is not None:
        status = end.json().get("status")
        if isinstance(status, str):
            return status
    run = client.get(api_path("/v1/runs/{}", run_id))
    return str(run.get("status"))


def wait_for_end(client: ApiClient, run_id: str) -> str:
    """Follows the run's stream without printing it; returns its terminal status."""
    stream = follower(client, run_id)
    end = next((frame for frame in stream.frames() if frame.event == "end"), None)
    return final_status(client, run_id, end)


def frame_line(data: Any) -> Text:
    """One frame of the events stream as a line: time, then the status change or the event."""
    line = Text()
    line.append(f"{clock_time(data.get('timestamp'))}  ", style="dim")
    if data.get("type") == "status_change":
        line.append("status    ", style="bold")
        if data.get("from"):
            line.append_text(status_text(data.get("from")))
        else:
            line.append("created", style="dim")
        line.append(" → ")
        line.append_text(status_text(data.get("to")))
        if data.get("attempt") is not None:
            line.append(f"  attempt {one_line(str(data['attempt']))}", style="dim")
        return line
    level = str(data.get("level") or "info")
    event_type = str(data.get("event_type") or "event")
    line.append(f"{one_line(level):<9} ", style=LEVEL_STYLES.get(level, ""))
    line.append(f"{one_line(event_type):<16} ", style="bold")
    details = data.get("data")
    if event_type == "progress" and isinstance(details, dict):
        line.append(_progress(details))
        details = None
    if data.get("message"):
        line.append(printable(str(data["message"])))
    if details not in (None, {}):
        line.append(f"  {printable(json_text.compact(details))}", style="dim")
    return line


def _progress(details: dict[str, Any]) -> str:
    parts = []
    if details.get("percent") is not None:
        parts.append(f"{one_line(str(details['percent']))}%")
    if details.get("step"):
        parts.append(one_line(str(details["step"])))
    if details.get("eta_seconds") is not None:
        parts.append(f"eta {one_line(str(details['eta_seconds']))}s")
    return "  ".join(parts) + ("  " if parts else "")


class _ChunkPrinter:
    """Chunks as text, stream after stream, with a `[stream_id]` header whenever the stream changes."""

    def __init__(self) -> None:
        self._stream: str | None = None
        self._open = False

    def print(self, data: Any) -> None:
        stream_id = str(data.get("stream_id"))
        if stream_id != self._stream:
            if self._open:
                sys.stdout.write("\n")
            sys.stdout.write(f"[{one_line(stream_id)}] ")
            self._stream = stream_id
        sys.stdout.write(printable(str(data.get("chunk") or "")))
        self._open = not data.get("done")
        if data.get("done"):
            sys.stdout.write("\n")
            self._stream = None
        sys.stdout.flush()


@click.command("tail")
@click.argument("run_id")
@click.option(
    "--chunks", is_flag=True, help="Tail the run's stream chunks (LLM output) instead of its events."
)
@click.option("--stream-id", metavar="STREAM", help="With --chunks: only this stream.")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print each frame's data as one JSON line.")
@click.pass_context
def tail(ctx: click.Context, run_id: str, chunks: bool, stream_id: str | None, as_jsonl: bool) -> None:
    """Follow a run live until it ends.

    Status changes (in colour), logs and progress, one line each.

    Reconnects after a dropped connection and resumes after the last event received
    (Last-Event-ID), so nothing is missed or shown twice. Exits 0 when the run completed, 3 when
    it ended any other way (failed, timed_out, canceled, dead_letter, ...), 1 on an API error,
    130 on Ctrl-C. A run that has already ended is replayed, then the command exits the same way.
    """
    if stream_id and not chunks:
        raise click.UsageError("--stream-id needs --chunks")
    client = runtime().client()
    stream = follower(client, run_id, chunks, stream_id)
    chunk_printer = _ChunkPrinter()
    end: Frame | None = None
    try:
        for frame in stream.frames():
            data = frame.json()
            if as_jsonl:
                click.echo(json_text.compact(data))
            if frame.event == "end":
                end = frame
                break
            if as_jsonl or not isinstance(data, dict):
                continue
            if chunks:
                chunk_printer.print(data)
            else:
                runtime().out.print(frame_line(data))
        status = final_status(client, run_id, end)
    except KeyboardInterrupt:
        runtime().err.print(f"Stopped following {run_id}; the run goes on.", markup=False)
        ctx.exit(ExitCode.INTERRUPTED)
    if not as_jsonl:
        line = Text(f"{one_line(run_id)} ended: ")
        line.append_text(status_text(status))
        (runtime().err if chunks else runtime().out).print(line)
    if not is_terminal(status):
        raise click.ClickException(f"the stream ended but {run_id} is {status}, not terminal")
    ctx.exit(exit_code_of_run(status))
