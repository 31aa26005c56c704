"""Pages of a run's sub-resource lists (spec 1.3): oldest first, strictly after a cursor, bounded in
items read and in response size.

A cursor is opaque (base64url of `<list>:<position>`: an event or checkpoint sequence, a usage or
tool-call id, an output's `created_at#id`, a state key) or an RFC 3339 date-time, which keeps the
records created (state: updated) strictly after it. A cursor of another list is refused (400).
"""

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from straitruns.domain.digits import bounded_int
from straitruns.domain.errors import BadRequest
from straitruns.domain.timefmt import parse_ts


@dataclass(frozen=True)
class SubCursor:
    after: str | None = None  # continue strictly after this position
    since: datetime | None = None  # keep records created strictly after this moment


@dataclass(frozen=True)
class SubPage[T]:
    items: list[T]
    next_cursor: str | None  # absent on the last page
    complete: bool = True  # False when the page ended before the list did


def encode_sub_cursor(kind: str, position: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_sub_cursor(text: str | None, kind: str) -> SubCursor:
    """The cursor of list `kind`. Raises BadRequest for one that is neither a date-time nor a
    cursor of this list."""
    if text is None:
        return SubCursor()
    try:
        return SubCursor(since=parse_ts(text))
    except ValueError:
        pass
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("invalid cursor") from exc
    prefix = f"{kind}:"
    if not raw.startswith(prefix) or len(raw) == len(prefix):
        raise BadRequest("invalid cursor")
    return SubCursor(after=raw.removeprefix(prefix))


def sequence_after(cursor: SubCursor) -> int:
    """The sequence an event or checkpoint cursor continues after (0: from the start)."""
    if cursor.after is None:
        return 0
    sequence = bounded_int(cursor.after)
    if sequence is None:
        raise BadRequest("invalid cursor")
    return sequence


def collect[T](
    records: Iterator[T],
    *,
    kind: str,
    position: Callable[[T], str],
    moment: Callable[[T], datetime],
    cursor: SubCursor,
    limit: int,
    budget: int,
    keep: Callable[[T], bool] = lambda _: True,
    fits: Callable[[T], bool] = lambda _: True,
) -> SubPage[T]:
    """A page of at most `limit` records that `keep` accepts, examining at most `budget` records.
    The page ends early, with a cursor, when the budget runs out or when `fits` refuses a record
    (the response would pass its size cap)."""
    taken: list[T] = []
    last = cursor.after
    for examined, record in enumerate(records):
        if len(taken) == limit or examined == budget:
            return _partial(taken, kind, last)
        wanted = keep(record) and (cursor.since is None or moment(record) > cursor.since)
        if wanted and not fits(record):
            return _partial(taken, kind, last)
        if wanted:
            taken.append(record)
        last = position(record)
    return SubPage(taken, None)


def _partial[T](taken: list[T], kind: str, last: str | None) -> SubPage[T]:
    # `last` is None only when a date-time cursor's first record did not fit (a cap smaller than
    # one record): no position can be named then.
    return SubPage(taken, encode_sub_cursor(kind, last) if last is not None else None, complete=False)
