"""Lambda entry points: each function's app.py is one line that calls into here."""

from collections.abc import Callable
from functools import cache
from typing import Any

from straitruns.wiring import Services, build_services


@cache
def shared_services() -> Services:
    """Adapters and use cases, built once per execution environment (not at import time)."""
    from straitruns.settings import get_settings

    return build_services(get_settings())


def http_handler(group: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The API Gateway handler of one endpoint group, through Mangum."""
    from aws_lambda_powertools import Logger
    from mangum import Mangum

    from straitruns.api.app import create_app

    logger = Logger(service="strait-runs")
    adapter = Mangum(create_app(shared_services, [group]), lifespan="off", api_gateway_base_path="/")

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result: dict[str, Any] = adapter(event, context)
        return result

    return handler
