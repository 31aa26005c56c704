"""The `runs` group: reading, watching, tailing and steering runs."""

import click

from strait_runs_cli.commands import runs_read, runs_steer
from strait_runs_cli.commands.tail import tail
from strait_runs_cli.commands.watch import watch


@click.group("runs")
def runs() -> None:
    """Runs: list, inspect, watch, tail and steer them.

    \b
    Examples:
      strait-runs runs list --status failed --created-after 1h
      strait-runs runs tail run_01J...
      strait-runs runs replay run_01J...
    """


for _command in (
    runs_read.list_runs,
    runs_read.get_run,
    runs_read.list_events,
    runs_read.list_children,
    runs_read.list_lineage,
    runs_read.debug_bundle,
    watch,
    tail,
    runs_steer.cancel,
    runs_steer.replay,
    runs_steer.dlq_replay,
    runs_steer.pause,
    runs_steer.resume,
    runs_steer.restart,
    runs_steer.reschedule,
    runs_steer.debug,
):
    runs.add_command(_command)
