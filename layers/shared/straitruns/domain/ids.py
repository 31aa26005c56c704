"""Resource ids: `<prefix>_<ULID>`; ULIDs sort by creation time."""

import re
from enum import StrEnum
from typing import Protocol

from straitruns.domain import limits

_ULID = "[0-9A-HJKMNP-TV-Z]{26}"


class IdKind(StrEnum):
    RUN = "run"
    JOB = "job"
    BATCH = "batch"
    PROJECT = "proj"
    API_KEY = "key"
    EVENT = "evt"
    DEPENDENCY = "dep"
    CHECKPOINT = "ckpt"
    USAGE = "usage"
    TOOL_CALL = "tc"
    OUTPUT = "out"
    VERSION = "jver"


_PATTERNS = {kind: re.compile(rf"^{kind.value}_{_ULID}$") for kind in IdKind}


def is_valid_id(kind: IdKind, value: str) -> bool:
    """True when `value` has the form `<prefix>_<ULID>` for `kind`."""
    return bool(_PATTERNS[kind].fullmatch(value))


_SLUG = re.compile(limits.SLUG_PATTERN)


def is_valid_slug(value: str) -> bool:
    """True when `value` can be a job slug (1..64 of `[a-z0-9-]`): anything else names no job, and
    never reaches the store (a key over DynamoDB's size limit would fail there)."""
    return bool(_SLUG.fullmatch(value))


class IdFactory(Protocol):
    """Makes new ids; tests pass a deterministic one."""

    def new(self, kind: IdKind) -> str: ...
