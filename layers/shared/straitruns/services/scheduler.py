"""The scheduler (spec 4.2, 4.5): each tick reads only the runs whose wake-up is due (the sharded
timer index) and settles them: promotes delayed runs, re-enqueues queued runs whose message was
lost, puts back claims whose dispatcher vanished, reaps lost and overdue attempts, expires runs
never claimed, finishes bulk DLQ replays left staged (spec 5 item 8), and continues cancelling the
descendants of cancelled runs (spec 5 item 5)."""

import logging
from collections import Counter
from datetime import datetime, timedelta

from straitruns.adapters.run_queue import MAX_DELAY_SECS, run_message
from straitruns.adapters.store.engine import EngineStore
from straitruns.adapters.store.keys import WAKE_SHARDS
from straitruns.domain import transitions
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict
from straitruns.domain.models import ErrorClass, Run
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timers import TimerPolicy, due_at, next_wake
from straitruns.services.attempts import Attempts
from straitruns.services.cancellation import Cancellation
from straitruns.services.concurrency import ConcurrencyQueues
from straitruns.services.dead_letters import DeadLetters
from straitruns.services.ports import JobReads, RunMessages, RunReads
from straitruns.services.run_state import RunStateMachine

logger = logging.getLogger("straitruns.scheduler")

_PER_SHARD = 100


def _secs(value: float) -> timedelta:
    return timedelta(seconds=value)


class Scheduler:
    def __init__(
        self,
        runs: RunReads,
        engine: EngineStore,
        jobs: JobReads,
        state: RunStateMachine,
        attempts: Attempts,
        queue: RunMessages,
        clock: Clock,
        policy: TimerPolicy,
        dead_letters: DeadLetters,
        cancellation: Cancellation,
        concurrency: ConcurrencyQueues,
    ) -> None:
        self.concurrency = concurrency
        self.dead_letters = dead_letters
        self.cancellation = cancellation
        self.runs = runs
        self.engine = engine
        self.jobs = jobs
        self.state = state
        self.attempts = attempts
        self.queue = queue
        self.clock = clock
        self.policy = policy

    def tick(self) -> dict[str, int]:
        """One pass over every due run; returns what was done, by kind. A run that fails to
        settle is left for the next tick (its wake-up stays due)."""
        now = self.clock.now()
        done: Counter[str] = Counter()
        for shard in range(WAKE_SHARDS):
            for run_id in self.engine.due_run_ids(shard, now, _PER_SHARD):
                try:
                    done[self.wake(run_id, now)] += 1
                except Conflict:
                    done["raced"] += 1
                except Exception:
                    logger.exception("could not settle a due run", extra={"run_id": run_id})
                    done["error"] += 1
        return dict(done)

    def wake(self, run_id: str, now: datetime) -> str:
        """Settles one due run. Raises Conflict when another actor changed it meanwhile."""
        run = self.runs.get(run_id)
        if run is None or run.wake_at is None or run.wake_at > now:
            return "not-due"
        if run.is_terminal:
            # Only a cancel leaves a terminal run a wake-up: its descendants are to be walked.
            return self.cancellation.continue_walk(run)
        if run.status == RunStatus.REPLAY_STAGED:
            # A bulk DLQ replay that died between staging and queueing: finish it.
            self.dead_letters.replay(run, "staged replay finished by the scheduler")
            return "replay-finished"
        expiring = not run.ever_claimed and run.expires_at is not None and run.expires_at <= now
        if expiring and run.status in (RunStatus.DELAYED, RunStatus.QUEUED, RunStatus.WAITING):
            self.state.apply(run, transitions.expired(now))
            return "expired"
        if run.status == RunStatus.DELAYED:
            return self._delayed(run, now)
        if run.status == RunStatus.QUEUED:
            return self._queued(run, now)
        if run.status == RunStatus.DEQUEUED:
            requeued = self.state.apply(run, transitions.requeued("dispatcher lost before the call", now))
            self.queue.send([run_message(requeued)])
            return "requeued"
        if run.status == RunStatus.EXECUTING:
            return self._executing(run, now)
        if run.status == RunStatus.WAITING and run.timeout_at is not None and run.timeout_at <= now:
            self.state.apply(run, transitions.await_timed_out(now))
            return "timed_out"
        # Woken early (a claim keeps the earlier wake-up of its queued run): look again when due.
        self.engine.set_wake(run, next_wake(run, now, self.policy))
        return "idle"

    def _delayed(self, run: Run, now: datetime) -> str:
        scheduled = run.scheduled_at or now
        remaining = (scheduled - now).total_seconds()
        if remaining > MAX_DELAY_SECS:
            self.engine.set_wake(run, scheduled - _secs(MAX_DELAY_SECS))
            return "not-due"
        if not self._job_accepts(run):
            return "parked"
        self.queue.send([run_message(run, max(0, int(remaining + 0.999)))])
        self.engine.set_wake(run, max(scheduled, now) + _secs(self.policy.reenqueue_after_secs))
        return "promoted"

    def _queued(self, run: Run, now: datetime) -> str:
        due = max(due_at(run) or now, now)
        if (due - now).total_seconds() > MAX_DELAY_SECS:
            self.engine.set_wake(run, due - _secs(MAX_DELAY_SECS))
            return "not-due"
        if not self._job_accepts(run):
            return "parked"
        self.engine.set_wake(run, due + _secs(self.policy.reenqueue_after_secs))
        if run.slot_queue is not None:
            # It waits for a concurrency slot: a drain lost in a race would leave it there.
            self.concurrency.drain(run.slot_queue)
            return "slot-drained"
        self.queue.send([run_message(run, int((due - now).total_seconds() + 0.999))])
        return "enqueued"

    def _executing(self, run: Run, now: datetime) -> str:
        grace = _secs(self.policy.timeout_grace_secs)
        beats = [moment for moment in (run.started_at, run.heartbeat_at) if moment is not None]
        last_beat = max(beats) if beats else now
        overdue = run.timeout_at is not None and run.timeout_at + grace <= now
        lost = now - last_beat >= _secs(self.policy.heartbeat_lost_secs)
        if not overdue and not lost:
            limits = [last_beat + _secs(self.policy.heartbeat_lost_secs)]
            if run.timeout_at is not None:
                limits.append(run.timeout_at + grace)
            self.engine.set_wake(run, min(limits))
            return "alive"
        job = self.jobs.get(run.job_id)
        if job is None:
            step = transitions.ended(
                RunStatus.SYSTEM_FAILED, "job deleted", now, "the job no longer exists", ErrorClass.SYSTEM
            )
            self.state.apply(run, step)
            return "system_failed"
        if overdue:
            return self.attempts.fail(run, job, "attempt timed out", ErrorClass.TIMEOUT, "timeout", None)
        return self.attempts.fail(run, job, "heartbeat lost", ErrorClass.HEARTBEAT, "heartbeat", None)

    def _job_accepts(self, run: Run) -> bool:
        """False (and the run parked) while its job is paused or disabled."""
        job = self.jobs.get(run.job_id)
        if job is not None and (job.paused or not job.enabled):
            self.engine.park(run)
            # A parked run is not re-enqueued, but one never claimed still expires (spec 3).
            self.engine.set_wake(run, None if run.ever_claimed else run.expires_at)
            return False
        return True
