"""Arbitrary JSON values (payload, result, state, ...): parsed without float rounding, checked,
stored and returned as JSON text.

Numbers that are not integers are parsed as `JsonNumber` (a Decimal that writes back the text it
was given), so every digit survives; integers stay `int`. `NaN`, `Infinity`, numbers a binary float
cannot hold (`1e400`), numbers of more than 1,000 digits and nesting deeper than 64 levels are
refused.
"""

import decimal
import hashlib
import sys
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


# Stored values written before the digit bound may hold integers of more than 4,300 digits, which
# Python's int() refuses: reading them back keeps them exact as Decimal.
_INT_DIGITS_MAX = 4000
# Canonical numbers (index keys) keep every digit and any exponent the parser accepted.
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
# A number with a fraction or an exponent beyond this magnitude is read as infinity by every JSON
# parser that uses binary floats (Python's json, JavaScript), so it is refused.
_FLOAT_MAX = Decimal(sys.float_info.max)


class JsonNumber(Decimal):
    """A JSON number with a fraction or an exponent: exact as a Decimal, and written back as the
    text it was given (`1e5` stays `1e5`, never `1E+5`)."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> "JsonNumber":
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"JsonNumber({self.text!r})"


def _digit_count(text: str) -> int:
    return sum(char.isdigit() for char in text)


def _too_many_digits() -> InvalidJsonValue:
    return InvalidJsonValue(f"a number has more than {limits.JSON_NUMBER_DIGITS} digits")


def _parse_int(text: str) -> int:
    if _digit_count(text) > limits.JSON_NUMBER_DIGITS:
        raise _too_many_digits()
    return int(text)


def _parse_fraction(text: str) -> JsonNumber:
    if _digit_count(text) > limits.JSON_NUMBER_DIGITS:
        raise _too_many_digits()
    number = JsonNumber(text)
    if number.is_finite() and number.copy_abs() > _FLOAT_MAX:
        raise InvalidJsonValue(f"the number {text} is out of range: JSON parsers read it as infinity")
    return number


def _load_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS_MAX else Decimal(text)


def parse_json(text: str | bytes, max_depth: int = limits.JSON_MAX_DEPTH) -> Any:
    """Parses JSON text exactly (JsonNumber for fractions and exponents, int for integers).

    Raises MalformedJson for text that is not JSON and InvalidJsonValue for non-finite or
    out-of-range numbers (beyond a binary float's range, or more than `limits.JSON_NUMBER_DIGITS`
    digits), unpaired surrogates, or nesting deeper than `max_depth`.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJson("body is not UTF-8") from exc
    try:
        value = simplejson.loads(
            text, parse_float=_parse_fraction, parse_int=_parse_int, parse_constant=_refuse_constant
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
    """Parses stored JSON text back into a value (JsonNumber for fractions, as stored)."""
    return simplejson.loads(text, parse_float=JsonNumber, parse_int=_load_int)


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
