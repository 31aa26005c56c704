"""Outputs checked against their JSON Schema (spec 6), with the maintained `jsonschema` library.

The schema's `$schema` picks the draft (2020-12 when absent). References are resolved only inside the
schema: nothing is fetched from the network.
"""

from typing import Any

from straitruns.domain.errors import ValidationFailed

# An error message quotes the offending value; a long one is cut here (the value is the caller's own).
_MESSAGE_CHARS = 300


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 3] + "..."


def check_output(schema: Any, value: Any) -> None:
    """Returns when `value` matches `schema`. Raises ValidationFailed when the schema is not a valid
    JSON Schema (naming the schema's failing path) or the value does not match it (naming the value's
    failing path, such as `$.items[1]`)."""
    from jsonschema import validators
    from jsonschema.exceptions import SchemaError, best_match
    from referencing.exceptions import Unresolvable

    if not isinstance(schema, dict | bool):
        raise ValidationFailed(
            "schema must be a JSON Schema (an object or a boolean)", [{"field": "schema", "path": "$"}]
        )
    validator_class = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        if isinstance(schema, dict):  # `true` and `false` are valid schemas as they are
            validator_class.check_schema(schema)
    except SchemaError as exc:
        raise ValidationFailed(
            f"schema is not a valid JSON Schema at {exc.json_path}: {_short(exc.message)}",
            [{"field": "schema", "path": exc.json_path, "error": _short(exc.message)}],
        ) from None
    try:
        error = best_match(validator_class(schema).iter_errors(value))
    except Unresolvable as exc:
        raise ValidationFailed(
            f"schema has a reference that cannot be resolved: {_short(str(exc))}",
            [{"field": "schema", "error": "unresolvable reference"}],
        ) from None
    except RecursionError:
        raise ValidationFailed(
            "schema refers to itself without end", [{"field": "schema", "error": "endless reference"}]
        ) from None
    if error is None:
        return
    raise ValidationFailed(
        f"value does not match its schema at {error.json_path}: {_short(error.message)}",
        [{"field": "value", "path": error.json_path, "error": _short(error.message)}],
    )
