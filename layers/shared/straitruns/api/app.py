"""The FastAPI application: one builder for every Lambda group and for the local stack."""

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from straitruns.api.errors import install_error_handlers
from straitruns.api.middleware import RequestContextMiddleware
from straitruns.domain import limits
from straitruns.domain.models import TriggeredBy
from straitruns.domain.statuses import RunStatus
from straitruns.wiring import Services

# Which routers each Lambda function serves (template.yaml declares the same groups).
GROUPS: dict[str, tuple[str, ...]] = {
    "runs_query": ("runs_query", "run_dependencies", "sse_tokens"),
    "runs_stream": ("runs_stream",),
    "jobs": ("projects", "jobs", "dependencies", "health"),
    "runs_control": ("runs_control",),
    "runs_bulk": ("runs_bulk",),
    "runs_telemetry": ("runs_telemetry",),
    "sdk": ("sdk",),
}


def _router(name: str) -> APIRouter:
    from importlib import import_module

    module = import_module(f"straitruns.api.routers.{name}")
    router: APIRouter = module.router
    return router


def _body_models() -> list[type[BaseModel]]:
    from straitruns.services import bulk, commands, steering
    from straitruns.services.dependencies import CreateDependency
    from straitruns.services.sdk_commands import SDK_BODIES

    return [
        *SDK_BODIES,
        steering.RescheduleRun,
        steering.RestartRun,
        steering.SetDebugMode,
        bulk.BulkRunIds,
        bulk.BulkCancelAll,
        bulk.BulkDlqReplay,
        CreateDependency,
        commands.NoFields,
        commands.CreateProject,
        commands.CreateApiKey,
        commands.CreateJob,
        commands.UpdateJob,
        commands.TriggerRun,
        commands.BulkTrigger,
    ]


def all_router_names() -> list[str]:
    return list(dict.fromkeys(name for names in GROUPS.values() for name in names))


def create_app(services_factory: Callable[[], Services], groups: Sequence[str] | None = None) -> FastAPI:
    """An app serving the routers of `groups` (all of them when None). `/openapi.json` and
    `/docs` always describe every route of every plane."""
    app = FastAPI(
        title="Strait Runs API",
        version="1.0.0",
        description="Job-run management and monitoring. See docs/ in the repository for behaviour.",
    )
    app.state.services_factory = services_factory
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    names = all_router_names() if groups is None else [n for group in groups for n in GROUPS[group]]
    for name in dict.fromkeys(names):
        app.include_router(_router(name))
    _install_openapi(app, full=groups is None)
    return app


def _install_openapi(app: FastAPI, *, full: bool) -> None:
    """The OpenAPI document of the whole API, whichever routers this app serves."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        routes = app.routes
        if not full:
            everything = FastAPI()
            for name in all_router_names():
                everything.include_router(_router(name))
            routes = everything.routes
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in _body_models():
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        _declare_query_rules(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# Query values arrive as text and are parsed by the routes (so a bad one is 400, spec 1.2); the
# document says what they accept, so a client generator and a fuzzer agree with the server.
_REQUIRED_PROJECT = {("get", "/v1/runs"), ("get", "/v1/runs/dlq"), ("post", "/v1/runs/bulk-cancel-all")}


def _limit_maximum(path: str) -> int:
    if path in ("/v1/runs", "/v1/runs/dlq"):
        return limits.RUN_LIST_MAX_LIMIT
    if path.startswith("/v1/runs/{runID}/"):
        return limits.SUB_LIST_MAX_LIMIT
    return 100  # jobs, projects, API keys


def _query_schema(name: str, path: str) -> dict[str, Any] | None:
    digits = {"type": "string", "pattern": "^[0-9]{1,18}$"}
    schemas: dict[str, dict[str, Any]] = {
        "limit": {"type": "integer", "minimum": 1, "maximum": _limit_maximum(path)},
        "status": {"type": "string", "enum": [status.value for status in RunStatus]},
        "triggered_by": {"type": "string", "enum": [value.value for value in TriggeredBy]},
        "last_event_id": digits,
        "from_checkpoint": {"type": "integer", "minimum": 1, "maximum": 10**18 - 1},
        "created_after": {"type": "string", "format": "date-time"},
        "created_before": {"type": "string", "format": "date-time"},
    }
    return schemas.get(name)


def _declare_query_rules(schema: dict[str, Any]) -> None:
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                rule = _query_schema(parameter["name"], path)
                if rule is not None:
                    parameter["schema"] = rule
                if parameter["name"] == "project_id" and (method, path) in _REQUIRED_PROJECT:
                    parameter["required"] = True
                    parameter["schema"] = {"type": "string", "pattern": "^proj_[0-9A-HJKMNP-TV-Z]{26}$"}
