"""Runs made by runs (spec 6): spawned children, awaited or not, and continue-as-new.

Children and continuations are created the way triggers create runs (TriggerService.create_for_run:
limits, dependency gate, queue message). A parent that awaits its children goes `executing ->
waiting` at once (the state machine gives its concurrency slot back) with its await deadline as its
timer; the children it awaits are recorded under its current generation. When a child ends, the
effects of its status change (docs/engine.md#effects) look at the parent: once every awaited child
has ended, the parent goes `waiting -> queued` with a new generation (attempt unchanged), remembering
the children
(`resumed_after`, sent as `X-Resumed-After`), and is sent to the run queue. The scheduler ends a
parent still waiting at its deadline (`timed_out`).
"""

import logging
from datetime import datetime, timedelta

from straitruns.adapters.run_queue import RunQueue, run_message
from straitruns.adapters.store.jobs import JobStore
from straitruns.adapters.store.run_family import RunFamilyStore
from straitruns.adapters.store.runs import RunStore
from straitruns.domain import limits, transitions
from straitruns.domain.clock import Clock
from straitruns.domain.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from straitruns.domain.ids import IdKind, is_valid_id
from straitruns.domain.jsonvalue import dump_json, load_json
from straitruns.domain.models import Job, Run
from straitruns.domain.statuses import RunStatus
from straitruns.domain.timers import TimerPolicy
from straitruns.services.commands import TriggerRun
from straitruns.services.run_state import RunStateMachine, with_wake
from straitruns.services.sdk_commands import ContinueBody, SpawnBody
from straitruns.services.triggers import RunLinks, TriggerService

logger = logging.getLogger("straitruns.run_family")

_READ_CHUNK = 100
# What a continuation takes over from the run it continues (besides job, project and metadata).
_INHERITED = (
    "tags",
    "priority",
    "concurrency_key",
    "debug_mode",
    "max_attempts_override",
    "timeout_secs_override",
    "retry_backoff",
    "retry_initial_delay_secs",
    "retry_max_delay_secs",
)


class RunFamily:
    def __init__(
        self,
        runs: RunStore,
        family: RunFamilyStore,
        jobs: JobStore,
        triggers: TriggerService,
        state: RunStateMachine,
        queue: RunQueue,
        clock: Clock,
        policy: TimerPolicy,
    ) -> None:
        self.runs = runs
        self.family = family
        self.jobs = jobs
        self.triggers = triggers
        self.state = state
        self.queue = queue
        self.clock = clock
        self.policy = policy

    # Spawn --------------------------------------------------------------------------------

    def spawn(self, parent: Run, body: SpawnBody) -> Run:
        """A child run of a job of the parent's project (`parent_run_id`, `triggered_by = spawn`,
        `created_by = run:<parent>`). With `await_completion` the parent waits for it (see the
        module's docstring); returns the child as created.

        Raises Forbidden (`project_id` of another project), NotFound (no such job in the project),
        ValidationFailed (no job named; the parent already has 1,000 children), Conflict (the job
        is disabled; the parent moved on before it could wait), PayloadTooLarge (payload).
        """
        if body.project_id is not None and body.project_id != parent.project_id:
            raise Forbidden("a run may spawn runs only in its own project")
        job = self._job(parent, body)
        if not self.family.reserve_child(parent.id, limits.CHILDREN_PER_RUN):
            raise ValidationFailed(
                f"a run may spawn at most {limits.CHILDREN_PER_RUN} children",
                [{"field": "job_slug", "error": "children limit reached"}],
            )
        given = {"payload": body.payload} if "payload" in body.model_fields_set else {}
        try:
            child = self.triggers.create_for_run(
                job, TriggerRun.model_validate(given), RunLinks(parent.id, parent_run_id=parent.id)
            )
        except BaseException:
            self.family.release_child(parent.id)
            raise
        if body.await_completion:
            self._await(parent, child, timedelta(seconds=body.await_timeout_secs))
        return child

    def _job(self, parent: Run, body: SpawnBody) -> Job:
        reference = body.job_id or body.job_slug
        if reference is None:
            raise ValidationFailed(
                "job_slug or job_id is required", [{"field": "job_slug", "error": "missing"}]
            )
        if is_valid_id(IdKind.JOB, reference):
            job = self.jobs.get(reference)
        else:
            job = self.jobs.get_by_slug(parent.project_id, reference)
        if job is None or job.project_id != parent.project_id:
            raise NotFound("job not found in the run's project")
        return job

    def _await(self, parent: Run, child: Run, timeout: timedelta) -> None:
        deadline = self.clock.now() + timeout
        self.family.add_awaited(parent.id, parent.generation, child.id)
        try:
            self._wait(parent, deadline)
        except Conflict:
            self._abandon(child, "its parent moved on before it could wait for it")
            raise
        # The child may have ended before the parent was waiting (its effect then found the
        # parent still executing): look once more.
        self.settle(parent.id)

    def _wait(self, parent: Run, deadline: datetime) -> None:
        """The parent waiting until `deadline` at least. Raises Conflict when it moved on."""
        if parent.status == RunStatus.EXECUTING:
            try:
                self.state.apply(parent, transitions.awaiting_children(deadline))
                return
            except Conflict:
                current = self.runs.get(parent.id)  # another spawn of the same attempt may have won
                if current is None or current.generation != parent.generation:
                    raise
                parent = current
        if parent.status != RunStatus.WAITING:
            raise Conflict(f"a {parent.status.value} run cannot wait for children")
        if parent.timeout_at is not None and parent.timeout_at >= deadline:
            return
        later = with_wake(parent.model_copy(update={"timeout_at": deadline}), self.clock.now(), self.policy)
        if not self.runs.save(parent, later):
            raise Conflict("status changed concurrently")

    # Awaited children ending ------------------------------------------------------------------

    def settle(self, parent_id: str) -> Run | None:
        """Releases the parent when it waits for children and every one of them has ended:
        `waiting -> queued` with a new generation and `resumed_after`, and a queue message. Returns
        the released parent, or None (nothing to release, or another actor changed it first)."""
        parent = self.runs.get(parent_id)
        # A run waiting on job dependencies was never claimed; one awaiting children was.
        if parent is None or parent.status != RunStatus.WAITING or not parent.ever_claimed:
            return None
        awaited = self.family.awaited(parent.id, parent.generation)
        if not awaited or not self._all_ended(awaited):
            return None
        try:
            released = self.state.apply(
                parent, transitions.children_finished(parent, self.clock.now(), tuple(awaited))
            )
        except Conflict:
            return None
        self.queue.send([run_message(released)])
        return released

    def _all_ended(self, run_ids: list[str]) -> bool:
        for start in range(0, len(run_ids), _READ_CHUNK):
            chunk = run_ids[start : start + _READ_CHUNK]
            found = self.runs.get_many(chunk)
            if any(run_id in found and not found[run_id].is_terminal for run_id in chunk):
                return False
        return True

    # Continue-as-new ----------------------------------------------------------------------------

    def continue_as_new(self, run: Run, body: ContinueBody) -> Run:
        """A new run of the same job (`continuation_of` = this run, `lineage_depth` + 1,
        `triggered_by = spawn`) with the given payload (default: this run's), the same metadata,
        tags, priority, concurrency key and overrides; this run completes with the result
        `{"continued_as": <new id>}` and points forward to it (`continued_by`, for lineage).

        Raises BadRequest (past lineage depth 10), Conflict (the job is gone or disabled; the run
        moved on), PayloadTooLarge (payload).
        """
        depth = run.lineage_depth + 1
        if depth > limits.LINEAGE_DEPTH:
            raise BadRequest(
                f"a continue-as-new chain may be at most {limits.LINEAGE_DEPTH} continuations deep"
            )
        job = self.jobs.get(run.job_id)
        if job is None:
            raise Conflict("the run's job no longer exists")
        payload = body.payload if "payload" in body.model_fields_set else load_json(run.payload)
        inherited = {name: getattr(run, name) for name in _INHERITED if getattr(run, name) is not None}
        options = TriggerRun.model_validate(
            {"payload": payload, "metadata": run.metadata, **inherited}, strict=False
        )
        successor = self.triggers.create_for_run(
            job, options, RunLinks(run.id, continuation_of=run.id, lineage_depth=depth)
        )
        try:
            self.state.apply(
                run,
                transitions.continued(
                    self.clock.now(), successor.id, dump_json({"continued_as": successor.id})
                ),
            )
        except Conflict:
            self._abandon(successor, "the run it continues moved on")
            raise
        return successor

    def _abandon(self, run: Run, reason: str) -> None:
        """Cancels a run made for a call that then failed (best effort: logged otherwise)."""
        current = self.runs.get(run.id)
        if current is None or current.is_terminal:
            return
        try:
            self.state.apply(current, transitions.canceled(self.clock.now(), reason, "abandoned"))
        except Conflict:
            logger.warning("could not cancel an abandoned run", extra={"run_id": run.id})
