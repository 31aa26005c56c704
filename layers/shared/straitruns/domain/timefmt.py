"""Timestamps: RFC 3339 UTC with microseconds (`2026-11-28T14:15:22.123456Z`)."""

import re
from datetime import UTC, datetime, timedelta

# ASCII digits only; an offset is -23:59..+23:59 (RFC 3339 time-numoffset).
_RFC3339 = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"([Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)


def format_ts(moment: datetime) -> str:
    """Formats an aware datetime as UTC with exactly six fraction digits and `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Parses an RFC 3339 date-time (offset required) into an aware UTC datetime.

    Raises ValueError when the text is not an RFC 3339 date-time.
    """
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError("expected an RFC 3339 date-time such as 2026-11-28T14:15:22Z")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    if offset in ("Z", "z"):
        tz_delta = timedelta(0)
    else:
        sign = 1 if offset[0] == "+" else -1
        tz_delta = sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros)
    try:
        return (naive - tz_delta).replace(tzinfo=UTC)
    except OverflowError as exc:  # year 1 or 9999 shifted past the representable range
        raise ValueError("date-time out of range") from exc


def normalize_ts(text: str) -> str:
    """Parses and re-formats a timestamp into the canonical form (raises ValueError)."""
    return format_ts(parse_ts(text))
