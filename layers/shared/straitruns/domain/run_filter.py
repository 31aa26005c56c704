"""Run list filters (spec 5 item 1) and the hashed values a run is indexed under for them."""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from straitruns.domain import limits
from straitruns.domain.jsonvalue import contains, leaf_hash, leaves, load_json
from straitruns.domain.models import Run
from straitruns.domain.statuses import RunStatus

METADATA_KEY = "mk"
METADATA_PAIR = "mkv"
TAG_KEY = "tk"
TAG_PAIR = "tkv"
PAYLOAD_LEAF = "pl"
# Marks a run whose payload has more leaves than are indexed: payload queries always check it.
PAYLOAD_OVERFLOW = "plx"
OVERFLOW_DIGEST = "all"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class IndexValue:
    kind: str
    digest: str


def metadata_key_value(key: str) -> IndexValue:
    return IndexValue(METADATA_KEY, _digest(key))


def metadata_pair_value(key: str, value: str) -> IndexValue:
    return IndexValue(METADATA_PAIR, _digest(key, value))


def tag_key_value(key: str) -> IndexValue:
    return IndexValue(TAG_KEY, _digest(key))


def tag_pair_value(key: str, value: str) -> IndexValue:
    return IndexValue(TAG_PAIR, _digest(key, value))


def payload_leaf_value(job_id: str, path: str, scalar: str) -> IndexValue:
    """A payload leaf of one job's runs (a job names the paths it indexes)."""
    return IndexValue(PAYLOAD_LEAF, leaf_hash(f"{job_id}\x00{path}", scalar))


def payload_overflow(job_id: str) -> IndexValue:
    """Marks the job's runs with more indexed leaves than are indexed: payload queries read them too."""
    return IndexValue(PAYLOAD_OVERFLOW, _digest(job_id, OVERFLOW_DIGEST))


@dataclass(frozen=True)
class PayloadIndex:
    """What a job's runs are indexed by for `payload_contains`: the leaves of `paths` of every run
    created at or after `since` (a change of the paths starts a new `since`; older runs are read
    from the job's partition and checked instead)."""

    paths: tuple[str, ...]
    since: datetime

    def covers(self, path: str) -> bool:
        return path in self.paths


def run_index_values(run: Run, payload_paths: tuple[str, ...] = ()) -> set[IndexValue]:
    """Every hashed value the run must be findable by: metadata and tag keys and pairs, and the
    first PAYLOAD_INDEXED_LEAVES distinct payload leaves on `payload_paths`, its job's indexed paths
    (plus the overflow mark beyond that)."""
    values: set[IndexValue] = set()
    for key, value in run.metadata.items():
        values |= {metadata_key_value(key), metadata_pair_value(key, value)}
    for key, value in run.tags.items():
        values |= {tag_key_value(key), tag_pair_value(key, value)}
    if not payload_paths:
        return values
    wanted = set(payload_paths)
    distinct = [leaf for leaf in dict.fromkeys(leaves(load_json(run.payload))) if leaf[0] in wanted]
    for path, scalar in distinct[: limits.PAYLOAD_INDEXED_LEAVES]:
        values.add(payload_leaf_value(run.job_id, path, scalar))
    if len(distinct) > limits.PAYLOAD_INDEXED_LEAVES:
        values.add(payload_overflow(run.job_id))
    return values


@dataclass(frozen=True)
class RunFilter:
    """Filters of a run list; they combine with AND. `matches` is the check made on every run
    read, whichever index found it."""

    project_id: str
    status: RunStatus | None = None
    metadata_key: str | None = None
    metadata_value: str | None = None
    triggered_by: str | None = None
    batch_id: str | None = None
    payload_contains: Any = None
    job_id: str | None = None
    tag_key: str | None = None
    tag_value: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    parent_run_id: str | None = None

    def matches(self, run: Run) -> bool:
        checks = (
            run.project_id == self.project_id,
            self.status is None or run.status == self.status,
            self.triggered_by is None or run.triggered_by == self.triggered_by,
            self.batch_id is None or run.batch_id == self.batch_id,
            self.job_id is None or run.job_id == self.job_id,
            self.parent_run_id is None or run.parent_run_id == self.parent_run_id,
            self.created_after is None or run.created_at > self.created_after,
            self.created_before is None or run.created_at < self.created_before,
            _map_matches(run.metadata, self.metadata_key, self.metadata_value),
            _map_matches(run.tags, self.tag_key, self.tag_value),
        )
        if not all(checks):
            return False
        return self.payload_contains is None or contains(load_json(run.payload), self.payload_contains)

    def indexed_leaf(self, index: PayloadIndex | None) -> IndexValue | None:
        """A leaf of the containment query that the job's payload index covers (a match must
        have it), or None: then the query reads the job's or the project's runs and checks each."""
        if self.payload_contains is None or self.job_id is None or index is None:
            return None
        for path, scalar in leaves(self.payload_contains):
            if index.covers(path):
                return payload_leaf_value(self.job_id, path, scalar)
        return None


def _map_matches(mapping: dict[str, str], key: str | None, value: str | None) -> bool:
    if key is None:
        return True
    if value is None:
        return key in mapping
    return mapping.get(key) == value
