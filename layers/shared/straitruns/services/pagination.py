"""Cursors (spec 1.3): an opaque URL-safe string, or an RFC 3339 date-time."""

import base64
import binascii
from dataclasses import dataclass

from straitruns.domain.digits import bounded_int, is_ascii_digits
from straitruns.domain.errors import BadRequest
from straitruns.domain.timefmt import format_ts, parse_ts


@dataclass(frozen=True)
class Cursor:
    """A position in a list ordered by (created_at, id): continue strictly past `sort_key`."""

    sort_key: str
    is_time: bool = False

    def bound(self, ascending: bool) -> str:
        """The exclusive bound to read from: a time cursor excludes everything at that time in
        the direction of reading only when reading newest first."""
        if self.is_time and ascending:
            return self.sort_key + "$"  # past every `time#id` of that instant
        return self.sort_key


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> Cursor | None:
    """Parses a cursor. Raises BadRequest for one that is neither ours nor a date-time."""
    if text is None:
        return None
    try:
        return Cursor(format_ts(parse_ts(text)), is_time=True)
    except ValueError:
        pass
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("invalid cursor") from exc
    time_part, _, item_id = raw.partition("#")
    try:
        parse_ts(time_part)
    except ValueError as exc:
        raise BadRequest("invalid cursor") from exc
    if not item_id or "_" not in item_id:
        raise BadRequest("invalid cursor")
    return Cursor(raw)


def parse_limit(text: str | None, default: int, maximum: int) -> int:
    """`limit`: a positive integer, clamped to `maximum`. Raises BadRequest otherwise."""
    if text is None:
        return default
    if not is_ascii_digits(text) or not text.strip("0"):
        raise BadRequest("limit must be a positive integer (ASCII digits)")
    value = bounded_int(text)
    return maximum if value is None else min(value, maximum)  # more digits than any maximum: clamped
