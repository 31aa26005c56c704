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


def payload_leaf_value(path: str, scalar: str) -> IndexValue:
    return IndexValue(PAYLOAD_LEAF, leaf_hash(path, scalar))


OVERFLOW = IndexValue(PAYLOAD_OVERFLOW, OVERFLOW_DIGEST)


def run_index_values(run: Run) -> set[IndexValue]:
    """Every hashed value the run must be findable by: metadata and tag keys and pairs, and the
    first PAYLOAD_INDEXED_LEAVES distinct payload leaves (plus the overflow mark beyond that)."""
    values: set[IndexValue] = set()
    for key, value in run.metadata.items():
        values |= {metadata_key_value(key), metadata_pair_value(key, value)}
    for key, value in run.tags.items():
        values |= {tag_key_value(key), tag_pair_value(key, value)}
    distinct = list(dict.fromkeys(leaves(load_json(run.payload))))
    for path, scalar in distinct[: limits.PAYLOAD_INDEXED_LEAVES]:
        values.add(payload_leaf_value(path, scalar))
    if len(distinct) > limits.PAYLOAD_INDEXED_LEAVES:
        values.add(OVERFLOW)
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

    def payload_index_values(self) -> list[IndexValue]:
        """Leaf values of the containment query; any one of them must be indexed for a match
        (runs whose payload overflowed the index are found through OVERFLOW instead)."""
        if self.payload_contains is None:
            return []
        return [payload_leaf_value(path, scalar) for path, scalar in leaves(self.payload_contains)]


def _map_matches(mapping: dict[str, str], key: str | None, value: str | None) -> bool:
    if key is None:
        return True
    if value is None:
        return key in mapping
    return mapping.get(key) == value
