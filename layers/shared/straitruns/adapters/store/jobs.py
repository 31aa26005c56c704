"""Jobs and batches in the store. A job's slug is unique in its project through a guard item."""

from typing import Any

import simplejson

from straitruns.adapters.store import keys
from straitruns.adapters.store.table import ConditionFailed, DynamoTable, Item
from straitruns.domain.ids import IdKind, is_valid_id, is_valid_slug
from straitruns.domain.models import Batch, Job
from straitruns.domain.timefmt import format_ts, parse_ts


class SlugTaken(Exception):
    """Another job of the project already has this slug."""


class StaleJob(Exception):
    """The job changed (or vanished) since it was read."""


def _job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def job_key(job_id: str) -> tuple[str, str]:
    """The key of a job's item (to read it with other items in one request)."""
    return _job_pk(job_id), "JOB"


# Attributes of a job item kept by the dependency store, never written from a job read earlier.
_COUNTERS = ("upstream_count", "downstream_count")


def _slug_pk(project_id: str, slug: str) -> str:
    return f"SLUG#{project_id}#{slug}"


def _batch_pk(batch_id: str) -> str:
    return f"BATCH#{batch_id}"


class JobStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def create(self, job: Job) -> None:
        """Stores a new job and claims its slug. Raises SlugTaken."""
        try:
            self.table.transact(
                [
                    self.table.put_action(_job_item(job), condition="attribute_not_exists(pk)"),
                    self.table.put_action(_slug_item(job), condition="attribute_not_exists(pk)"),
                ]
            )
        except ConditionFailed as exc:
            raise SlugTaken(job.slug) from exc

    def replace(self, old: Job, new: Job) -> None:
        """Writes `new` over `old` if the job is still at `old.version` (moving the slug guard when
        the slug changes); the dependency counters are left as they are. Raises StaleJob or
        SlugTaken."""
        item = {name: value for name, value in _job_item(new).items() if name not in ("pk", "sk", *_COUNTERS)}
        names = {f"#a{n}": name for n, name in enumerate(item)}
        values: dict[str, Any] = {
            f":a{n}": value for n, value in enumerate(item.values()) if value is not None
        }
        sets = [f"#a{n} = :a{n}" for n, value in enumerate(item.values()) if value is not None]
        removes = [f"#a{n}" for n, value in enumerate(item.values()) if value is None]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        values[":v"] = old.version
        actions = [
            self.table.update_action(
                _job_pk(new.id),
                "JOB",
                update,
                condition="attribute_exists(pk) AND version = :v",
                values=values,
                names=names,
            )
        ]
        if new.slug != old.slug:
            actions.append(self.table.put_action(_slug_item(new), condition="attribute_not_exists(pk)"))
            actions.append(self.table.delete_action(_slug_pk(old.project_id, old.slug), "SLUG"))
        try:
            self.table.transact(actions)
        except ConditionFailed as exc:
            if exc.failed_at(1):
                raise SlugTaken(new.slug) from exc
            raise StaleJob(old.id) from exc

    def delete(self, job: Job) -> None:
        self.table.transact(
            [
                self.table.delete_action(_job_pk(job.id), "JOB"),
                self.table.delete_action(_slug_pk(job.project_id, job.slug), "SLUG"),
            ]
        )

    def get(self, job_id: str) -> Job | None:
        item = self.table.get(_job_pk(job_id), "JOB")
        return job_from_item(item) if item else None

    def get_with(
        self, job_id: str, extra: list[tuple[str, str]]
    ) -> tuple[Job | None, dict[tuple[str, str], Item]]:
        """The job and `extra` items (its concurrency counters), in one strongly consistent read."""
        found = self.table.batch_get([job_key(job_id), *extra])
        item = found.pop(job_key(job_id), None)
        return (job_from_item(item) if item else None), found

    def slug_job_id(self, project_id: str, slug: str) -> str | None:
        """The id of the job of a slug; None, without a read, for a text that cannot be a slug or
        project id."""
        if not is_valid_slug(slug) or not is_valid_id(IdKind.PROJECT, project_id):
            return None
        guard = self.table.get(_slug_pk(project_id, slug), "SLUG")
        return str(guard["job_id"]) if guard else None

    def get_by_slug(self, project_id: str, slug: str) -> Job | None:
        """The job of a slug; None, without a read, for a text that cannot be a slug or project id."""
        if not is_valid_slug(slug) or not is_valid_id(IdKind.PROJECT, project_id):
            return None
        guard = self.table.get(_slug_pk(project_id, slug), "SLUG")
        return self.get(guard["job_id"]) if guard else None

    def list_jobs(self, project_id: str, limit: int, after: str | None) -> tuple[list[Job], str | None]:
        """Jobs of a project, oldest first; returns the page and the `csk` to continue after."""
        condition = "project_pk = :p" + (" AND csk > :after" if after else "")
        values: dict[str, Any] = {":p": keys.project_jobs(project_id)}
        if after:
            values[":after"] = after
        items, more = self.table.query(
            index=keys.BY_PROJECT, key_condition=condition, values=values, limit=limit, ascending=True
        )
        jobs = [job for job in (self.get(item["pk"].removeprefix("JOB#")) for item in items) if job]
        last = items[-1][keys.SORT_ATTRIBUTE] if items and more else None
        return jobs, last

    def put_batch(self, batch: Batch) -> None:
        self.table.batch_write(
            [
                {
                    "pk": _batch_pk(batch.id),
                    "sk": "BATCH",
                    "id": batch.id,
                    "project_id": batch.project_id,
                    "job_id": batch.job_id,
                    "item_count": batch.item_count,
                    "created_count": batch.created_count,
                    "created_at": format_ts(batch.created_at),
                }
            ]
        )

    def get_batch(self, batch_id: str) -> Batch | None:
        item = self.table.get(_batch_pk(batch_id), "BATCH")
        if item is None:
            return None
        return Batch(
            id=item["id"],
            project_id=item["project_id"],
            job_id=item["job_id"],
            item_count=item["item_count"],
            created_count=item["created_count"],
            created_at=parse_ts(item["created_at"]),
        )

    def batch_status_counts(self, batch_id: str) -> dict[str, int]:
        """Runs of a batch by status (from the batch index; eventually consistent on AWS)."""
        counts: dict[str, int] = {}
        start: dict[str, Any] | None = None
        while True:
            items, start = self.table.query(
                index=keys.BY_BATCH,
                key_condition="batch_pk = :b",
                values={":b": keys.batch_runs(batch_id)},
                start_key=start,
            )
            for item in items:
                counts[item["status"]] = counts.get(item["status"], 0) + 1
            if start is None:
                return counts


def _slug_item(job: Job) -> Item:
    return {"pk": _slug_pk(job.project_id, job.slug), "sk": "SLUG", "job_id": job.id}


def _job_item(job: Job) -> Item:
    data = job.model_dump()
    item: Item = {
        "pk": _job_pk(job.id),
        "sk": "JOB",
        "project_pk": keys.project_jobs(job.project_id),
        keys.SORT_ATTRIBUTE: keys.created_sort_key(job.created_at, job.id),
    }
    for name, value in data.items():
        if name in ("tags", "default_run_metadata"):
            item[name] = simplejson.dumps(value, separators=(",", ":"))
        elif name in ("created_at", "updated_at", "indexed_payload_since"):
            item[name] = format_ts(value) if value else None
        elif name == "indexed_payload_paths":
            item[name] = list(value) or None
        else:
            item[name] = value
    return item


def job_from_item(item: Item) -> Job:
    data = {name: item.get(name) for name in Job.model_fields if name in item}
    data["tags"] = simplejson.loads(item.get("tags") or "{}")
    data["default_run_metadata"] = simplejson.loads(item.get("default_run_metadata") or "{}")
    data["indexed_payload_paths"] = tuple(item.get("indexed_payload_paths") or ())
    data["created_at"] = parse_ts(item["created_at"])
    data["updated_at"] = parse_ts(item["updated_at"])
    if item.get("indexed_payload_since"):
        data["indexed_payload_since"] = parse_ts(item["indexed_payload_since"])
    return Job.model_validate(data)
