"""Dead letters (spec 4.7): a dead-lettered run is parked on the SQS dead-letter queue, and comes
back by `dlq-replay` or by a redrive of that queue, at most once per dead-lettering."""

import logging

from straitruns.adapters.run_queue import RunMessage, RunQueue
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict
from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus
from straitruns.services.run_state import RunStateMachine

logger = logging.getLogger("straitruns.dead_letters")


class DeadLetters:
    def __init__(
        self, state: RunStateMachine, queue: RunQueue, dead_letter_queue: RunQueue, clock: Clock
    ) -> None:
        self.state = state
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue
        self.clock = clock

    def on_change(self, old: Run, new: Run) -> None:
        """Listener: a run that became dead_letter gets its message on the dead-letter queue."""
        if new.status == RunStatus.DEAD_LETTER and old.status != RunStatus.DEAD_LETTER:
            failed = self.dead_letter_queue.send([RunMessage(new.id, new.generation, dead_letter=True)])
            if failed:
                # The run is dead_letter in the table either way: dlq-replay and GET /v1/runs/dlq
                # read the table; only an SQS redrive would miss it.
                logger.warning("could not park the run on the dead-letter queue", extra={"run_id": new.id})

    def stage(self, run: Run) -> Run:
        """`dead_letter -> replay_staged`, the first step of a bulk replay. A staged run that is
        not finished by `replay` (the caller died) is finished by the scheduler's next look at it.
        Raises Conflict when the run is not (or no longer) dead_letter."""
        return self.state.change(run, RunStatus.REPLAY_STAGED, "bulk-dlq-replay staged")

    def replay(self, run: Run, reason: str = "dlq-replay") -> Run:
        """Puts a dead-lettered (or replay-staged) run back to `queued` in place: attempt 1, a new
        generation, the last attempt's traces cleared. Raises Conflict when it is not (or no
        longer) dead_letter or replay_staged."""
        if run.status not in (RunStatus.DEAD_LETTER, RunStatus.REPLAY_STAGED):
            raise Conflict(
                f"only a dead_letter run can be replayed from the dead-letter queue, not {run.status}"
            )
        queued = self.state.change(
            run,
            RunStatus.QUEUED,
            reason,
            attempt=1,
            generation=run.generation + 1,
            error=None,
            error_class=None,
            started_at=None,
            finished_at=None,
            heartbeat_at=None,
            next_retry_at=None,
            claimed_at=None,
            timeout_at=None,
            queued_at=self.clock.now(),
            error_fingerprint=None,
            fingerprint_streak=0,
        )
        self.queue.send([RunMessage(queued.id, queued.generation)])
        return queued
