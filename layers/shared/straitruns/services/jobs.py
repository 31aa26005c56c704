"""Jobs: create, read, update (the version grows), delete (spec 2.2, 8)."""

import hashlib
from collections.abc import Iterable
from urllib.parse import urlsplit

from straitruns.adapters.run_queue import RunQueue, run_message
from straitruns.adapters.store import keys
from straitruns.adapters.store.engine import EngineStore, slot_counter
from straitruns.adapters.store.jobs import JobStore, SlugTaken, StaleJob
from straitruns.adapters.store.runs import RunStore
from straitruns.domain import transitions
from straitruns.domain.auth import Principal
from straitruns.domain.clock import Clock
from straitruns.domain.errors import Conflict, NotFound, ValidationFailed
from straitruns.domain.ids import IdFactory, IdKind, is_valid_id
from straitruns.domain.models import Job
from straitruns.domain.run_filter import RunFilter
from straitruns.domain.statuses import RunStatus, is_terminal
from straitruns.domain.timers import TimerPolicy, next_wake
from straitruns.services.commands import CreateJob, UpdateJob
from straitruns.services.concurrency import ConcurrencyQueues
from straitruns.services.projects import can_see
from straitruns.services.run_state import RunStateMachine

_UNPARK_BATCH = 500
_DELETE_CANCEL_MAX = 1000


class JobService:
    def __init__(
        self,
        jobs: JobStore,
        runs: RunStore,
        state: RunStateMachine,
        queue: RunQueue,
        clock: Clock,
        ids: IdFactory,
        allow_plain_http: bool,
        engine: EngineStore,
        policy: TimerPolicy,
        concurrency: ConcurrencyQueues,
    ) -> None:
        self.concurrency = concurrency
        self.engine = engine
        self.policy = policy
        self.jobs = jobs
        self.runs = runs
        self.state = state
        self.queue = queue
        self.clock = clock
        self.ids = ids
        self.allow_plain_http = allow_plain_http

    def create(self, project_id: str, command: CreateJob) -> Job:
        """A new job (version 1). Raises ValidationFailed for a bad URL, Conflict for a taken slug."""
        self._check_url(command.endpoint_url)
        now = self.clock.now()
        settings = command.model_dump(exclude_none=True)
        job = Job(
            id=self.ids.new(IdKind.JOB),
            project_id=project_id,
            version_id=self.ids.new(IdKind.VERSION),
            created_at=now,
            updated_at=now,
            upstream_count=0,
            downstream_count=0,
            indexed_payload_since=now if settings.get("indexed_payload_paths") else None,
            **settings,
        )
        try:
            self.jobs.create(job)
        except SlugTaken as exc:
            raise Conflict(f"a job with slug '{job.slug}' already exists in this project") from exc
        return job

    def get(self, principal: Principal, job_ref: str, project_id: str | None = None) -> Job:
        """A job by id or slug. Raises NotFound for a missing job or one of another project."""
        job: Job | None = None
        if is_valid_id(IdKind.JOB, job_ref):
            job = self.jobs.get(job_ref)
        else:
            project = project_id or principal.project_id
            if project:
                job = self.jobs.get_by_slug(project, job_ref)
        if job is None or not can_see(principal, job.project_id):
            raise NotFound("job not found")
        return job

    def get_for_trigger(
        self,
        principal: Principal,
        job_ref: str,
        project_id: str | None,
        concurrency_keys: Iterable[str | None] = (),
    ) -> tuple[Job, dict[str, int]]:
        """A job by id or slug with the slots in use of its concurrency counters (the job's, and
        those of `concurrency_keys`), read together. Raises NotFound as `get` does."""
        job_id: str | None = job_ref if is_valid_id(IdKind.JOB, job_ref) else None
        if job_id is None:
            project = project_id or principal.project_id
            job_id = self.jobs.slug_job_id(project, job_ref) if project else None
        if job_id is None:
            raise NotFound("job not found")
        hashes = {hashlib.sha256(key.encode()).hexdigest() for key in concurrency_keys if key}
        counters = [slot_counter(job_id), *(slot_counter(job_id, digest) for digest in sorted(hashes))]
        job, items = self.jobs.get_with(job_id, [(counter, "SLOTS") for counter in counters[:100]])
        if job is None or not can_see(principal, job.project_id):
            raise NotFound("job not found")
        active = {
            counter: int(items.get((counter, "SLOTS"), {}).get("active", 0)) for counter in counters[:100]
        }
        return job, active

    def resolve_id(self, principal: Principal, job_ref: str, project_id: str) -> str | None:
        """The id of the job `job_ref` (an id or a slug) names in the project, or None when the
        project has no such job (a list filtered on it is then rightly empty)."""
        try:
            job = self.get(principal, job_ref, project_id)
        except NotFound:
            return None
        return job.id if job.project_id == project_id else None

    def list_jobs(self, project_id: str, limit: int, after: str | None) -> tuple[list[Job], str | None]:
        return self.jobs.list_jobs(project_id, limit, after)

    def update(self, principal: Principal, job_ref: str, command: UpdateJob, project_id: str | None) -> Job:
        """Applies the given fields; the version grows by one. Un-pausing or enabling the job
        re-enqueues its parked runs. Raises NotFound, Conflict, ValidationFailed."""
        job = self.get(principal, job_ref, project_id)
        changes = command.model_dump(exclude_unset=True)
        if "endpoint_url" in changes:
            self._check_url(changes["endpoint_url"])
        for required in ("slug", "name", "endpoint_url", "enabled", "paused"):
            if required in changes and changes[required] is None:
                raise ValidationFailed(f"{required} cannot be null", [{"field": required, "error": "null"}])
        defaults = Job.model_fields
        for name in list(changes):
            if (
                changes[name] is None
                and defaults[name].default is not None
                and not defaults[name].is_required()
            ):
                changes[name] = defaults[name].default
        now = self.clock.now()
        if "indexed_payload_paths" in changes:
            changes["indexed_payload_paths"] = tuple(changes["indexed_payload_paths"] or ())
            if changes["indexed_payload_paths"] != job.indexed_payload_paths:
                # Runs created before now are not indexed by the new paths: reads check them.
                changes["indexed_payload_since"] = now if changes["indexed_payload_paths"] else None
        updated = job.model_copy(
            update={
                **changes,
                "version": job.version + 1,
                "version_id": self.ids.new(IdKind.VERSION),
                "updated_at": now,
            }
        )
        updated = Job.model_validate(updated.model_dump())
        try:
            self.jobs.replace(job, updated)
        except SlugTaken as exc:
            raise Conflict(f"a job with slug '{updated.slug}' already exists in this project") from exc
        except StaleJob as exc:
            raise Conflict("the job changed concurrently; read it again") from exc
        if (job.paused or not job.enabled) and not updated.paused and updated.enabled:
            self.release_parked(updated)
        if updated.max_concurrency != job.max_concurrency or self._resumed(job, updated):
            # Runs waiting for a slot may move on now (a wider limit, or the job running again).
            self.concurrency.drain(keys.concurrency_queue(updated.id))
        return updated

    @staticmethod
    def _resumed(before: Job, after: Job) -> bool:
        return (before.paused or not before.enabled) and not after.paused and after.enabled

    def release_parked(self, job: Job) -> int:
        """Re-enqueues the runs parked while the job was paused or disabled."""
        released = 0
        while run_ids := self.runs.parked_run_ids(job.id, _UNPARK_BATCH):
            runs = self.runs.get_many(run_ids)
            now = self.clock.now()
            messages = []
            for run in runs.values():
                # The wake-up comes back first: if a message below is lost, the scheduler
                # re-enqueues the run (spec 4.2: never lost).
                self.engine.set_wake(run, next_wake(run, now, self.policy))
                self.engine.unparked(run)
                if run.status == RunStatus.QUEUED and run.slot_queue is None:
                    messages.append(run_message(run))
            self.queue.send(messages)
            self.runs.unpark(run_ids)
            released += len(messages)
        return released

    def delete(self, principal: Principal, job_ref: str, project_id: str | None) -> None:
        """Deletes the job and cancels its non-terminal runs (the first 1,000 at once; any left
        end `system_failed` when dispatched, since the job is gone)."""
        job = self.get(principal, job_ref, project_id)
        self.jobs.delete(job)
        page = self.runs.list_runs(
            RunFilter(project_id=job.project_id, job_id=job.id),
            limit=_DELETE_CANCEL_MAX,
            before=None,
            budget=_DELETE_CANCEL_MAX,
        )
        now = self.clock.now()
        for run in page.runs:
            if is_terminal(run.status):
                continue
            try:
                self.state.apply(run, transitions.canceled(now, "job deleted"))
            except Conflict:
                continue  # it moved on concurrently; its new owner settles it

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        allowed = ("https", "http") if self.allow_plain_http else ("https",)
        if parts.scheme not in allowed or not parts.hostname:
            expected = "an http(s)" if self.allow_plain_http else "an https"
            raise ValidationFailed(
                f"endpoint_url must be {expected} URL with a host",
                [{"field": "endpoint_url", "error": "invalid URL"}],
            )
        if len(url) > 2048:
            raise ValidationFailed("endpoint_url is too long", [{"field": "endpoint_url"}])
