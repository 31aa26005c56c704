"""Run statuses and the one table of allowed transitions (spec 3)."""

from enum import StrEnum


class RunStatus(StrEnum):
    DELAYED = "delayed"
    QUEUED = "queued"
    DEQUEUED = "dequeued"
    EXECUTING = "executing"
    WAITING = "waiting"
    PAUSED = "paused"
    REPLAY_STAGED = "replay_staged"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"
    SYSTEM_FAILED = "system_failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    DEAD_LETTER = "dead_letter"


S = RunStatus

# `None` is creation. Everything not listed here is refused.
TRANSITIONS: dict[RunStatus | None, frozenset[RunStatus]] = {
    None: frozenset({S.DELAYED, S.QUEUED, S.WAITING}),
    S.DELAYED: frozenset({S.QUEUED, S.PAUSED, S.CANCELED, S.EXPIRED}),
    S.QUEUED: frozenset({S.DEQUEUED, S.DELAYED, S.QUEUED, S.PAUSED, S.CANCELED, S.EXPIRED}),
    S.DEQUEUED: frozenset({S.EXECUTING, S.QUEUED, S.CANCELED, S.SYSTEM_FAILED}),
    S.EXECUTING: frozenset(
        {
            S.COMPLETED,
            S.FAILED,
            S.TIMED_OUT,
            S.CRASHED,
            S.DEAD_LETTER,
            S.SYSTEM_FAILED,
            S.QUEUED,
            S.WAITING,
            S.PAUSED,
            S.CANCELED,
        }
    ),
    S.WAITING: frozenset({S.QUEUED, S.COMPLETED, S.FAILED, S.TIMED_OUT, S.CANCELED, S.EXPIRED}),
    S.PAUSED: frozenset({S.QUEUED, S.DELAYED, S.CANCELED}),
    S.REPLAY_STAGED: frozenset({S.QUEUED, S.DEAD_LETTER, S.CANCELED}),
    S.DEAD_LETTER: frozenset({S.QUEUED, S.REPLAY_STAGED}),
}

# A status with no way out is terminal; dead_letter is terminal although replays may revive it.
TERMINAL: frozenset[RunStatus] = frozenset(
    {S.COMPLETED, S.FAILED, S.TIMED_OUT, S.CRASHED, S.SYSTEM_FAILED, S.CANCELED, S.EXPIRED, S.DEAD_LETTER}
)
NON_TERMINAL: frozenset[RunStatus] = frozenset(RunStatus) - TERMINAL
# Terminal statuses that satisfy a dependency condition of `failed` (spec 4.8).
FAILURE_STATUSES: frozenset[RunStatus] = frozenset(
    {S.FAILED, S.TIMED_OUT, S.CRASHED, S.SYSTEM_FAILED, S.EXPIRED, S.DEAD_LETTER}
)
# The reference's `status` query values; replay_staged and paused are accepted as well.
QUERYABLE: frozenset[RunStatus] = frozenset(RunStatus)


def can_transition(current: RunStatus | None, target: RunStatus) -> bool:
    """True when the transition table allows `current -> target` (`None` means creation)."""
    return target in TRANSITIONS.get(current, frozenset())


def is_terminal(status: RunStatus) -> bool:
    return status in TERMINAL
