"""`POST /v1/sse-token` (spec 1.1): a short-lived token a browser passes to the streams as
`?token=`. Served by the runs_query function, beside the other reads."""

from fastapi import APIRouter, Request, Response

from straitruns.api.body import JsonBody, to_model
from straitruns.api.deps import RunsReader, ServicesDep, requested_project
from straitruns.api.responses import JsonTextResponse
from straitruns.api.schemas import ERRORS, SseTokenOut
from straitruns.domain.timefmt import format_ts
from straitruns.services.sse_tokens import CreateSseToken

router = APIRouter(tags=["streams"], responses=ERRORS)


@router.post(
    "/v1/sse-token",
    response_model=SseTokenOut,
    summary="An SSE token for browser streams (`?token=`), valid STRAIT_SSE_TOKEN_TTL_SECS",
)
def create_sse_token(
    request: Request, principal: RunsReader, services: ServicesDep, body: JsonBody
) -> Response:
    to_model(body, CreateSseToken, empty_ok=True)
    token = services.sse_tokens.issue(principal, requested_project(request))
    return JsonTextResponse({"token": token.token, "expires_at": format_ts(token.expires_at)})
