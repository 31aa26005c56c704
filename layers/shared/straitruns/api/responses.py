"""JSON responses rendered with simplejson, so stored JSON text is spliced in unchanged."""

from collections.abc import Mapping
from typing import Any

import simplejson
from starlette.background import BackgroundTask
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
