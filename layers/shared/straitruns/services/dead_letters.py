"""Dead letters (spec 4.7): a dead-lettered run is parked on the SQS dead-letter queue (an effect
of its status change, docs/engine.md#effects), and comes back by `dlq-replay` or by a redrive of
that queue, at most once per dead-lettering."""

from straitruns.adapters.run_queue import RunMessage, run_message
from straitruns.domain import transitions
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict, Unavailable
from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus
from straitruns.services.ports import RunMessages
from straitruns.services.run_state import RunStateMachine


class DeadLetters:
    def __init__(
        self, state: RunStateMachine, queue: RunMessages, dead_letter_queue: RunMessages, clock: Clock
    ) -> None:
        self.state = state
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue
        self.clock = clock

    def park(self, run_id: str, generation: int) -> None:
        """Puts the message of a run that became dead_letter (at `generation`) on the dead-letter
        queue. A duplicate message is harmless: a redrive replays a run at most once. Raises
        Unavailable when SQS refuses it (the effect is then retried)."""
        if self.dead_letter_queue.send([RunMessage(run_id, generation, dead_letter=True)]):
            raise Unavailable("could not park the run on the dead-letter queue")

    def stage(self, run: Run) -> Run:
        """`dead_letter -> replay_staged`, the first step of a bulk replay. A staged run that is
        not finished by `replay` (the caller died) is finished by the scheduler's next look at it.
        Raises Conflict when the run is not (or no longer) dead_letter."""
        return self.state.apply(run, transitions.replay_staged())

    def replay(self, run: Run, reason: str = "dlq-replay") -> Run:
        """Puts a dead-lettered (or replay-staged) run back to `queued` in place: attempt 1, a new
        generation, the last attempt's traces cleared. Raises Conflict when it is not (or no
        longer) dead_letter or replay_staged."""
        if run.status not in (RunStatus.DEAD_LETTER, RunStatus.REPLAY_STAGED):
            raise Conflict(
                f"only a dead_letter run can be replayed from the dead-letter queue, not {run.status}"
            )
        queued = self.state.apply(run, transitions.dlq_replayed(run, self.clock.now(), reason))
        self.queue.send([run_message(queued)])
        return queued
