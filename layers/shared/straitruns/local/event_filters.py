"""Lambda's event filtering (an event source mapping's `FilterCriteria`), as the local event sources
play it.

A filter pattern is a JSON object shaped like the record it filters: each key names a field of the
record, and maps either to a nested pattern (for a nested field) or to a list of matchers, any one of
which must match the field's value. Every key of a pattern must match (AND); a record passes the
criteria when any of its patterns matches (OR), or when there are none.

The matchers are the ones Lambda documents for DynamoDB Streams records:

| matcher | matches a field that ... |
|---|---|
| `"x"`, `5`, `true`, `null`, `""` | equals the value (strings, numbers and booleans are told apart) |
| `{"exists": true}` / `{"exists": false}` | is present (a leaf, not an object) / is absent |
| `{"prefix": "x"}`, `{"suffix": "x"}` | is a string that starts / ends with "x" |
| `{"equals-ignore-case": "x"}` | is a string equal to "x" in any case |
| `{"anything-but": "x"}`, `{"anything-but": ["x", 5]}` | is present and none of these values |
| `{"anything-but": {"prefix": "x"}}` (or `suffix`) | is a string that does not start (end) with "x" |
| `{"numeric": [">", 0, "<=", 5]}` | is a number, or a DynamoDB `N` string, in the range (`=` too) |

A field holding a list matches when any of its elements does. Any other shape of pattern is refused
with a FilterPatternError, as CreateEventSourceMapping refuses it.
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

_ABSENT = object()
_LOWER_BOUNDS = frozenset({">", ">="})
_UPPER_BOUNDS = frozenset({"<", "<="})
_STRING_MATCHERS = frozenset({"prefix", "suffix", "equals-ignore-case"})


class FilterPatternError(ValueError):
    """A filter pattern that is not JSON, or not a shape Lambda's event filtering accepts."""


@dataclass(frozen=True, slots=True)
class FilterPattern:
    """One parsed, validated pattern of a FilterCriteria."""

    pattern: Mapping[str, Any]

    def matches(self, record: Mapping[str, Any]) -> bool:
        return _object_matches(self.pattern, record)


def parse_pattern(text: str) -> FilterPattern:
    """The pattern of one `FilterCriteria.Filters[].Pattern` string. Raises FilterPatternError if it
    is not a JSON object or holds a matcher this module does not know."""
    try:
        pattern = json.loads(text)
    except json.JSONDecodeError as error:
        raise FilterPatternError(f"the filter pattern is not JSON: {error}") from error
    _check_object(pattern, "pattern")
    return FilterPattern(pattern)


def passes(patterns: Sequence[FilterPattern], record: Mapping[str, Any]) -> bool:
    """Whether `record` reaches the function: no patterns, or at least one that matches."""
    return not patterns or any(pattern.matches(record) for pattern in patterns)


# --- validation ------------------------------------------------------------------------------------


def _check_object(pattern: object, where: str) -> None:
    if not isinstance(pattern, dict) or not pattern:
        raise FilterPatternError(f"{where} must be a non-empty JSON object, got {pattern!r}")
    for key, value in pattern.items():
        if isinstance(value, dict):
            _check_object(value, f"{where}.{key}")
        elif isinstance(value, list) and value:
            for matcher in value:
                _check_matcher(matcher, f"{where}.{key}")
        else:
            raise FilterPatternError(
                f"{where}.{key} must be a nested object or a non-empty list of matchers, got {value!r}"
            )


def _check_matcher(matcher: object, where: str) -> None:
    if matcher is None or isinstance(matcher, str | bool | int | float):
        return
    if not isinstance(matcher, dict) or len(matcher) != 1:
        raise FilterPatternError(f"{where}: a matcher is a value or a one-key object, got {matcher!r}")
    [(name, operand)] = matcher.items()
    if name == "exists":
        if not isinstance(operand, bool):
            raise FilterPatternError(f"{where}: exists takes true or false, got {operand!r}")
    elif name in _STRING_MATCHERS:
        if not isinstance(operand, str):
            raise FilterPatternError(f"{where}: {name} takes a string, got {operand!r}")
    elif name == "anything-but":
        _check_anything_but(operand, where)
    elif name == "numeric":
        _numeric_bounds(operand, where)
    else:
        raise FilterPatternError(f"{where}: unknown matcher {name!r}")


def _check_anything_but(operand: object, where: str) -> None:
    if isinstance(operand, dict):
        if len(operand) != 1 or next(iter(operand)) not in ("prefix", "suffix"):
            raise FilterPatternError(
                f"{where}: anything-but takes a prefix or suffix object, got {operand!r}"
            )
        if not isinstance(next(iter(operand.values())), str):
            raise FilterPatternError(f"{where}: anything-but's {next(iter(operand))} takes a string")
        return
    values = operand if isinstance(operand, list) else [operand]
    if not values or not all(
        value is None or isinstance(value, str | bool | int | float) for value in values
    ):
        raise FilterPatternError(f"{where}: anything-but takes a value or a list of values, got {operand!r}")


def _numeric_bounds(operand: object, where: str) -> list[tuple[str, float]]:
    """The (operator, number) pairs of a numeric matcher: one `=`, or at most one lower and one upper
    bound, the lower first."""
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise FilterPatternError(f"{where}: numeric takes [op, n] or [op, n, op, n], got {operand!r}")
    bounds: list[tuple[str, float]] = []
    for operator, number in zip(operand[::2], operand[1::2], strict=True):
        if operator not in {"=", *_LOWER_BOUNDS, *_UPPER_BOUNDS}:
            raise FilterPatternError(f"{where}: unknown numeric operator {operator!r}")
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise FilterPatternError(f"{where}: numeric compares with a number, got {number!r}")
        bounds.append((operator, float(number)))
    if len(bounds) == 2 and not (bounds[0][0] in _LOWER_BOUNDS and bounds[1][0] in _UPPER_BOUNDS):
        raise FilterPatternError(f"{where}: a numeric range is a lower bound then an upper bound")
    return bounds


# --- matching --------------------------------------------------------------------------------------


def _object_matches(pattern: Mapping[str, Any], value: object) -> bool:
    fields = value if isinstance(value, Mapping) else {}
    for key, expected in pattern.items():
        field = fields.get(key, _ABSENT)
        if isinstance(expected, dict):
            # An absent or leaf field has no children: only `exists: false` below it can match.
            if not _object_matches(expected, field):
                return False
        elif not any(_leaf_matches(matcher, field) for matcher in expected):
            return False
    return True


def _leaf_matches(matcher: object, field: object) -> bool:
    if isinstance(matcher, dict) and "exists" in matcher:
        present = field is not _ABSENT and not isinstance(field, Mapping)
        return present is matcher["exists"]
    if field is _ABSENT:
        return False
    if isinstance(field, list):
        return any(_value_matches(matcher, element) for element in field)
    return _value_matches(matcher, field)


def _value_matches(matcher: object, value: object) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, value)
    [(name, operand)] = matcher.items()
    if name == "numeric":
        number = _number(value)
        return number is not None and all(
            _compare(number, operator, bound) for operator, bound in _numeric_bounds(operand, "")
        )
    if name == "anything-but":
        return _anything_but(operand, value)
    if not isinstance(value, str):
        return False
    if name == "prefix":
        return value.startswith(operand)
    if name == "suffix":
        return value.endswith(operand)
    return value.casefold() == str(operand).casefold()  # equals-ignore-case


def _anything_but(operand: object, value: object) -> bool:
    if isinstance(operand, dict):
        [(name, affix)] = operand.items()
        if not isinstance(value, str):
            return False
        return not (value.startswith(affix) if name == "prefix" else value.endswith(affix))
    values = operand if isinstance(operand, list) else [operand]
    return not any(_equal(excluded, value) for excluded in values)


def _equal(expected: object, value: object) -> bool:
    # JSON keeps true and 1 apart, as Lambda does; Python would not.
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected is value
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


def _number(value: object) -> float | None:
    """A number, or a DynamoDB `N` string, as a float; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(Decimal(value))
        except InvalidOperation:
            return None
        return number if math.isfinite(number) else None
    return None


def _compare(number: float, operator: str, bound: float) -> bool:
    if operator == "=":
        return number == bound
    if operator == ">":
        return number > bound
    if operator == ">=":
        return number >= bound
    if operator == "<":
        return number < bound
    return number <= bound
