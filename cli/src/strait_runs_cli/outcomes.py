"""Run statuses as the API publishes them, and the exit codes the command line promises.

Exit codes: 0 success (for `runs tail` and `jobs trigger --wait`: the run ended `completed`);
1 an API or network error; 2 a usage error; 3 the run ended in another terminal status;
130 interrupted with Ctrl-C before the run ended.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    API_ERROR = 1
    USAGE = 2
    RUN_NOT_COMPLETED = 3
    INTERRUPTED = 130


# The API's run statuses (spec 3), in lifecycle order; tests keep this list equal to the server's.
NON_TERMINAL_STATUSES = ("delayed", "queued", "dequeued", "executing", "waiting", "paused", "replay_staged")
TERMINAL_STATUSES = (
    "completed",
    "failed",
    "timed_out",
    "crashed",
    "system_failed",
    "canceled",
    "expired",
    "dead_letter",
)
RUN_STATUSES = NON_TERMINAL_STATUSES + TERMINAL_STATUSES

# Why a run's last attempt failed (the `error_class` field of a run).
ERROR_CLASSES = (
    "client",
    "auth",
    "rate_limited",
    "server",
    "timeout",
    "connection",
    "heartbeat",
    "system",
    "canceled",
)

# A bulk operation's statuses; the last three are final.
BULK_FINAL_STATUSES = ("completed", "canceled", "failed")


def exit_code_of_run(status: str) -> ExitCode:
    """The exit code for a run that ended in `status` (a terminal status)."""
    return ExitCode.OK if status == "completed" else ExitCode.RUN_NOT_COMPLETED


def is_terminal(status: object) -> bool:
    return status in TERMINAL_STATUSES
