"""The error envelope (spec 1.2) and the one place where errors become HTTP statuses."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from straitruns.api.responses import JsonTextResponse
from straitruns.domain import errors

logger = logging.getLogger("straitruns.api")

CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}

STATUS_OF: dict[type[errors.DomainError], int] = {
    errors.BadRequest: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.Unavailable: 503,
}


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or request.scope.get("strait.request_id", ""))


def error_response(
    request: Request,
    status: int,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonTextResponse:
    body: dict[str, Any] = {
        "error": message,
        "message": message,
        "code": CODES.get(status, "bad_request" if status < 500 else "internal_error"),
        "request_id": request_id_of(request),
    }
    if details:
        body["details"] = details
    all_headers = {"X-Request-Id": body["request_id"], **(headers or {})}
    if status == 401:
        all_headers["WWW-Authenticate"] = "Bearer"
    return JsonTextResponse(body, status_code=status, headers=all_headers)


def validation_details(exc: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    """Per-field problems, without echoing the (possibly huge) input back."""
    details = []
    for problem in exc.errors():
        location = [str(part) for part in problem.get("loc", ()) if part != "body"]
        details.append({"field": ".".join(location) or "body", "error": problem.get("msg", "invalid")})
    return details


def allowed_methods(request: Request) -> str:
    """Every method some route serves at the request's path (HEAD wherever GET is served)."""
    methods: set[str] = set()
    routes = list(request.app.router.routes)
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)  # FastAPI wraps included routers (no prefix here)
        if included is not None:
            routes.extend(included.routes)
            continue
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.DomainError)
    async def domain_error(request: Request, exc: errors.DomainError) -> JsonTextResponse:
        status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 500)
        retry_after = exc.retry_after_secs if isinstance(exc, errors.Unavailable) else 1
        headers = {"Retry-After": str(retry_after)} if status == 503 else None
        return error_response(request, status, exc.message, exc.details, headers)

    @app.exception_handler(ValidationError)
    async def model_error(request: Request, exc: ValidationError) -> JsonTextResponse:
        return error_response(request, 422, "request body failed validation", validation_details(exc))

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JsonTextResponse:
        return error_response(request, 422, "request failed validation", validation_details(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JsonTextResponse:
        messages = {404: "route not found", 405: "method not allowed"}
        message = messages.get(exc.status_code) or str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return error_response(request, exc.status_code, message, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, _exc: Exception) -> JsonTextResponse:
        logger.exception("unhandled error", extra={"request_id": request_id_of(request)})
        return error_response(request, 500, "internal error")
