"""Arbitrary JSON values (payload, result, state, ...): parsed without float rounding, checked,
stored and returned as JSON text.

Numbers that are not integers are parsed as `Decimal`, so every digit survives; integers stay `int`
(Python ints are unbounded). `NaN` and `Infinity` are refused, as is nesting deeper than 64 levels.
"""

import decimal
import hashlib
from decimal import Decimal
from typing import Any

import simplejson

from straitruns.domain import limits

JsonText = str  # canonical compact JSON text of one value


class MalformedJson(ValueError):
    """The text is not JSON."""


class InvalidJsonValue(ValueError):
    """Well-formed JSON that the service does not accept (non-finite number, too deep)."""


def _refuse_constant(name: str) -> Any:
    raise InvalidJsonValue(f"non-finite number {name} is not allowed")


# Python refuses int() of more than 4,300 digits (and cannot print such an int back); Decimal keeps
# those integers exact.
_INT_DIGITS_MAX = 4000
# Canonical numbers (index keys) keep every digit and any exponent the parser accepted.
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _parse_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS_MAX else Decimal(text)


def parse_json(text: str | bytes, max_depth: int = limits.JSON_MAX_DEPTH) -> Any:
    """Parses JSON text exactly (Decimal for fractions, int for integers).

    Raises MalformedJson for text that is not JSON and InvalidJsonValue for non-finite or
    out-of-range numbers, unpaired surrogates, or nesting deeper than `max_depth`.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJson("body is not UTF-8") from exc
    try:
        value = simplejson.loads(
            text, use_decimal=True, parse_int=_parse_int, parse_constant=_refuse_constant
        )
    except InvalidJsonValue:
        raise
    except RecursionError as exc:
        raise InvalidJsonValue(f"a JSON value nests deeper than {limits.JSON_MAX_DEPTH} levels") from exc
    except decimal.InvalidOperation as exc:  # an exponent beyond what Decimal represents
        raise InvalidJsonValue("a number is out of range") from exc
    except simplejson.JSONDecodeError as exc:
        raise MalformedJson(f"malformed JSON: {exc}") from exc
    check_value(value, max_depth)
    return value


def check_value(value: Any, max_depth: int = limits.JSON_MAX_DEPTH) -> None:
    """Raises InvalidJsonValue when `value` nests deeper than `max_depth`, holds a non-finite number
    or a string (or member name) with an unpaired surrogate, which no UTF-8 text can carry."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                # Deeper bounds only make room for a body around values: name the value limit.
                raise InvalidJsonValue(f"a JSON value nests deeper than {limits.JSON_MAX_DEPTH} levels")
            if isinstance(item, dict):
                for name in item:
                    _check_text(name)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float | Decimal) and not Decimal(item).is_finite():
            raise InvalidJsonValue("non-finite numbers are not allowed")


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidJsonValue("a string holds an unpaired surrogate escape") from exc


def dump_json(value: Any) -> JsonText:
    """Compact JSON text of a parsed value, keeping every digit of every number."""
    return simplejson.dumps(value, use_decimal=True, separators=(",", ":"), ensure_ascii=False)


def load_json(text: JsonText) -> Any:
    """Parses stored JSON text back into a value (Decimal for fractions)."""
    return simplejson.loads(text, use_decimal=True, parse_int=_parse_int)


def json_size(text: JsonText) -> int:
    """Size in bytes of serialized JSON, as the limits count it."""
    return len(text.encode("utf-8"))


def _scalar_key(value: Any) -> str:
    # 1, 1.0 and 1E+0 are the same JSON number; booleans are not numbers.
    if isinstance(value, bool) or value is None:
        return simplejson.dumps(value)
    if isinstance(value, int | Decimal | float):
        return "n:" + str(Decimal(value).normalize(_EXACT))
    return "s:" + simplejson.dumps(value, ensure_ascii=False)


def leaves(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """The scalar leaves of a value as (path, canonical scalar) in document order.

    Object members extend the path with `.key`, array elements with `[]` (position does not
    matter for containment), so `{"order": {"id": 7}}` has the leaf `("order.id", "n:7")`.
    """
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(prefix, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            stack.extend(
                (f"{path}.{key}" if path else str(key), child) for key, child in reversed(item.items())
            )
        elif isinstance(item, list):
            stack.extend((f"{path}[]", child) for child in reversed(item))
        else:
            found.append((path, _scalar_key(item)))
    return found


def leaf_hash(path: str, scalar: str) -> str:
    """Stable hash of one leaf, used as an index key (user values can exceed key sizes)."""
    return hashlib.sha256(f"{path}\x00{scalar}".encode()).hexdigest()


def contains(document: Any, query: Any) -> bool:
    """JSON containment: every member of an object query is present with a contained value,
    every element of an array query is contained in some element of the array, scalars are equal."""
    if isinstance(query, dict):
        return isinstance(document, dict) and all(
            key in document and contains(document[key], sub) for key, sub in query.items()
        )
    if isinstance(query, list):
        return isinstance(document, list) and all(
            any(contains(element, sub) for element in document) for sub in query
        )
    if isinstance(query, bool) or isinstance(document, bool):
        return isinstance(query, bool) and isinstance(document, bool) and query == document
    if isinstance(query, int | Decimal) and isinstance(document, int | Decimal):
        return Decimal(query) == Decimal(document)
    return type(query) is type(document) and bool(query == document)
