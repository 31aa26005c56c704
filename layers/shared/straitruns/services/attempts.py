"""How a failed attempt ends (spec 4.4), shared by the dispatcher and the scheduler's reaper."""

import random
from typing import Any

from straitruns.adapters.run_queue import MAX_DELAY_SECS, RunMessage, RunQueue
from straitruns.domain.clock import Clock
from straitruns.domain.models import ErrorClass, ExecutionTrace, Job, Run
from straitruns.domain.outcomes import after_retryable_failure, engine_error
from straitruns.domain.statuses import RunStatus
from straitruns.services.run_state import RunStateMachine


class Attempts:
    def __init__(self, state: RunStateMachine, queue: RunQueue, clock: Clock) -> None:
        self.state = state
        self.queue = queue
        self.clock = clock

    def fail(
        self,
        run: Run,
        job: Job,
        error: str,
        error_class: ErrorClass,
        fingerprint: str,
        trace: ExecutionTrace | None,
    ) -> str:
        """Retries the run after a retryable failure, or ends it (timed_out, crashed, dead_letter).
        Returns the resulting status. Raises Conflict when the run moved on."""
        now = self.clock.now()
        after = after_retryable_failure(run, job, error_class, fingerprint, now, random.uniform(-1, 1))
        changes: dict[str, Any] = {
            "error": engine_error(error),
            "error_class": error_class,
            "error_fingerprint": fingerprint,
            "fingerprint_streak": after.streak,
        }
        if trace is not None:
            changes["execution_trace"] = trace
        if after.status == RunStatus.QUEUED and after.next_retry_at is not None:
            retried = self.state.change(
                run,
                RunStatus.QUEUED,
                f"retry after {error_class.value}",
                attempt=run.attempt + 1,
                next_retry_at=after.next_retry_at,
                queued_at=now,
                **changes,
            )
            delay = (after.next_retry_at - now).total_seconds()
            if delay <= MAX_DELAY_SECS:
                self.queue.send([RunMessage(retried.id, retried.generation, max(0, int(delay + 0.999)))])
            return "retry"
        self.state.change(run, after.status, error_class.value, finished_at=now, **changes)
        return after.status.value
