"""Request bodies: parsed exactly (no float rounding), then validated strictly (spec 1.2).

The body is read by an async dependency, so route functions stay synchronous and run in the
thread pool: store calls never block the event loop.
"""

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from straitruns.api.errors import validation_details
from straitruns.api.middleware import BODY_TOO_LARGE
from straitruns.domain import limits
from straitruns.domain.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from straitruns.domain.jsonvalue import InvalidJsonValue, MalformedJson, parse_json

_EMPTY = object()
# A value nests up to JSON_MAX_DEPTH levels inside the body object, an item list and an item (bulk
# trigger); each value field checks its own depth exactly (commands.JsonValue).
_ENVELOPE_LEVELS = 3


def _declared(media_type: str) -> str:
    if not media_type:
        return "no Content-Type was sent"
    if media_type.isascii() and media_type.isprintable() and len(media_type) <= 100:
        return f"it was {media_type}"
    return "it was another type"


def _check_declared_json(content_type: str | None, content_encoding: str | None) -> None:
    """A body is read only when declared JSON (`application/json` or `application/<x>+json`, any
    parameters) and not encoded (no `Content-Encoding` but `identity`). Raises UnsupportedMediaType."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"the body must be sent as Content-Type: application/json ({_declared(media_type)})"
        )
    encoding = (content_encoding or "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedMediaType("Content-Encoding is not supported: send the JSON body unencoded")


async def _read_json(request: Request) -> Any:
    """The body as a JSON value (`_EMPTY` when there is none).

    Raises PayloadTooLarge (over 1 MiB), UnsupportedMediaType (not declared JSON), BadRequest
    (malformed) or ValidationFailed.
    """
    body = await request.body()
    if request.scope.get(BODY_TOO_LARGE) or len(body) > limits.REQUEST_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {limits.REQUEST_BODY_BYTES} bytes")
    if not body.strip():
        return _EMPTY
    _check_declared_json(request.headers.get("content-type"), request.headers.get("content-encoding"))
    try:
        return parse_json(body, max_depth=limits.JSON_MAX_DEPTH + _ENVELOPE_LEVELS)
    except MalformedJson as exc:
        raise BadRequest(str(exc)) from exc
    except InvalidJsonValue as exc:
        raise ValidationFailed(str(exc), [{"field": "body", "error": str(exc)}]) from exc


JsonBody = Annotated[Any, Depends(_read_json)]


def to_model[M: BaseModel](body: Any, model: type[M], *, empty_ok: bool = False) -> M:
    """The body validated as `model` (strict types, unknown fields refused: 422 with details).
    An absent body counts as `{}` when `empty_ok` (every field optional)."""
    if body is _EMPTY:
        if not empty_ok:
            raise ValidationFailed("a JSON body is required", [{"field": "body", "error": "missing"}])
        body = {}
    if not isinstance(body, dict):
        raise ValidationFailed(
            "the body must be a JSON object", [{"field": "body", "error": "not an object"}]
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed("request body failed validation", validation_details(exc)) from exc


def body_schema(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """OpenAPI `requestBody` for a route that validates its body with `to_model`."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }
