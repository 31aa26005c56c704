"""`GET /healthz`: no authentication; 200 when the table and the run queue answer, else 503."""

from fastapi import APIRouter, Response

from straitruns.api.deps import ServicesDep
from straitruns.api.responses import JsonTextResponse
from straitruns.api.schemas import ERRORS, HealthOut
from straitruns.domain.errors import Unavailable
from straitruns.services.health import HealthCheck

router = APIRouter(tags=["health"], responses=ERRORS)


@router.get(
    "/healthz",
    response_model=HealthOut,
    summary="Health: reads the table and reaches the run queue (no key needed); 503 names what failed",
)
def healthz(services: ServicesDep) -> Response:
    report = HealthCheck.of(services.table, services.queue).run()
    if not report.healthy:
        details = [{"check": name, "error": report.checks[name]} for name in report.failed]
        raise Unavailable(f"unhealthy: {', '.join(report.failed)}", details)
    return JsonTextResponse({"status": "ok", "checks": report.checks})
