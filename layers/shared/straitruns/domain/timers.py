"""When the scheduler must look at a run next (spec 4.2, 4.5): one wake-up time per run, derived
from its status, kept in the sparse timer index."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus

SQS_MAX_DELAY_SECS = 900


@dataclass(frozen=True)
class TimerPolicy:
    reenqueue_after_secs: int = 60
    heartbeat_lost_secs: int = 60
    timeout_grace_secs: int = 5
    replay_staged_secs: int = 10


def due_at(run: Run) -> datetime | None:
    """When a queued or delayed run may be claimed (None: at once)."""
    moments = [moment for moment in (run.scheduled_at, run.next_retry_at) if moment is not None]
    return max(moments) if moments else None


def _seconds(value: int) -> timedelta:
    return timedelta(seconds=value)


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


def next_wake(run: Run, now: datetime, policy: TimerPolicy) -> datetime | None:
    """The scheduler's next look at `run`, or None when nothing can happen to it by time alone."""
    expiry = run.expires_at if not run.ever_claimed else None
    status = run.status
    if status == RunStatus.DELAYED:
        promote = (run.scheduled_at or now) - _seconds(SQS_MAX_DELAY_SECS)
        return _earliest(max(promote, now), expiry)
    if status == RunStatus.QUEUED:
        due = max(due_at(run) or now, run.queued_at or now)
        if (due - now).total_seconds() > SQS_MAX_DELAY_SECS:
            return _earliest(due - _seconds(SQS_MAX_DELAY_SECS), expiry)
        return _earliest(due + _seconds(policy.reenqueue_after_secs), expiry)
    if status == RunStatus.DEQUEUED:
        return (run.claimed_at or now) + _seconds(policy.heartbeat_lost_secs)
    if status == RunStatus.EXECUTING:
        beats = [moment for moment in (run.started_at, run.heartbeat_at) if moment is not None]
        beat = max(beats) if beats else now
        deadline = run.timeout_at + _seconds(policy.timeout_grace_secs) if run.timeout_at else None
        return _earliest(beat + _seconds(policy.heartbeat_lost_secs), deadline)
    if status == RunStatus.WAITING:
        return _earliest(run.timeout_at, expiry)
    if status == RunStatus.REPLAY_STAGED:
        return now + _seconds(policy.replay_staged_secs)
    return None
