"""JSON responses rendered with simplejson, so stored JSON text is spliced in unchanged."""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import simplejson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response


class JsonTextResponse(Response):
    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, self.media_type, background)

    def render(self, content: Any) -> bytes:
        return simplejson.dumps(content, ensure_ascii=False, separators=(",", ":"), use_decimal=True).encode()


def next_page_headers(request: Request, next_cursor: str | None) -> dict[str, str]:
    """`X-Next-Cursor` and `Link: <...>; rel="next"` when more may follow (spec 1.3), else none."""
    if not next_cursor:
        return {}
    params = {**request.query_params, "cursor": next_cursor}
    path = request.scope.get("root_path", "") + request.url.path
    return {"X-Next-Cursor": next_cursor, "Link": f'<{path}?{urlencode(params)}>; rel="next"'}
