"""Resource ids: `<prefix>_<ULID>`; ULIDs sort by creation time."""

import re
from enum import StrEnum
from typing import Protocol

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
    return bool(_PATTERNS[kind].match(value))


class IdFactory(Protocol):
    """Makes new ids; tests pass a deterministic one."""

    def new(self, kind: IdKind) -> str: ...
