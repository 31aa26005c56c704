"""How a failed attempt ends (spec 4.4), shared by the dispatcher and the scheduler's reaper."""

import math
import random
from collections.abc import Sequence

from straitruns.adapters.run_queue import MAX_DELAY_SECS, run_message
from straitruns.domain import transitions
from straitruns.domain.clock import Clock
from straitruns.domain.models import ErrorClass, ExecutionTrace, Job, Run
from straitruns.domain.outcomes import after_retryable_failure
from straitruns.domain.statuses import RunStatus
from straitruns.domain.transitions import FailedAttempt
from straitruns.services.ports import RunMessages
from straitruns.services.run_state import EventDraft, RunStateMachine


class Attempts:
    def __init__(self, state: RunStateMachine, queue: RunMessages, clock: Clock) -> None:
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
        before: Sequence[EventDraft] = (),
    ) -> str:
        """Retries the run after a retryable failure, or ends it (timed_out, crashed, dead_letter),
        writing `before` (the attempt's own events) with the change. Returns `retry` or the
        resulting status. Raises Conflict when the run moved on."""
        now = self.clock.now()
        after = after_retryable_failure(run, job, error_class, fingerprint, now, random.uniform(-1, 1))
        failure = FailedAttempt(error, error_class, fingerprint, after.streak, trace)
        if after.status == RunStatus.QUEUED and after.next_retry_at is not None:
            retried = self.state.apply(
                run, transitions.retried(run, failure, now, after.next_retry_at), before=before
            )
            delay = (after.next_retry_at - now).total_seconds()
            if delay <= MAX_DELAY_SECS:
                self.queue.send([run_message(retried, max(0, math.ceil(delay)))])
            return "retry"
        self.state.apply(run, transitions.exhausted(after.status, failure, now), before=before)
        return after.status.value
