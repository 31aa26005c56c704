"""JSON in and out without losing digits: numbers with a fraction or exponent are read as Decimal
and written back as they were (spec 1.4: payloads and results keep every digit)."""

from typing import Any

import simplejson


def parse(text: str) -> Any:
    """The JSON value of `text`; raises ValueError when it is not JSON (NaN and Infinity included)."""
    return simplejson.loads(text, use_decimal=True, parse_constant=_refuse_constant)


def compact(value: Any) -> str:
    """One line of JSON, non-ASCII kept."""
    return simplejson.dumps(value, use_decimal=True, ensure_ascii=False, separators=(",", ":"))


def pretty(value: Any) -> str:
    """Indented JSON for people, non-ASCII kept."""
    return simplejson.dumps(value, use_decimal=True, ensure_ascii=False, indent=2)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
