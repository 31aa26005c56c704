"""The HTTP client of the Strait Runs API: authentication, the acting project, error mapping,
paging through `X-Next-Cursor`, and opening SSE streams. Every failure becomes an ApiError or a
NetworkError (never a traceback)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import click
import httpx

from strait_runs_cli import __version__, json_text
from strait_runs_cli.errors import ApiError, NetworkError, UnexpectedResponse
from strait_runs_cli.settings import Settings

DEFAULT_TIMEOUT_SECS = 30.0
# A stream sends `: keepalive` at least every 15 s; three missed keepalives mean the connection is gone.
STREAM_READ_TIMEOUT_SECS = 45.0
Params = Mapping[str, str | int | None]


def api_path(template: str, *segments: str) -> str:
    """`template` with each `{}` replaced by a URL-quoted segment, so an id can never leave its place
    in the path (`../jobs` stays one segment)."""
    return template.format(*(quote(segment, safe="") for segment in segments))


class ApiClient:
    """One credential against one API. Closes its connections with `close()`."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECS,
    ) -> None:
        if not settings.api_key:
            raise click.UsageError(
                "no API key: pass --api-key, set STRAIT_API_KEY, or run `strait-runs config set api-key KEY`"
            )
        self.settings = settings
        headers = {
            "Authorization": f"Bearer {settings.api_key}",
            "Accept": "application/json",
            "User-Agent": f"strait-runs-cli/{__version__}",
        }
        if settings.project:
            headers["X-Project-Id"] = settings.project
        self._http = httpx.Client(
            base_url=settings.api_url, headers=headers, timeout=timeout, transport=transport
        )
        self._me: dict[str, Any] | None = None

    def close(self) -> None:
        self._http.close()

    # -- requests -----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """The response to one request; ApiError when its status is not in `ok`, NetworkError
        when the API cannot be reached."""
        content = None if body is None else json_text.compact(body).encode()
        headers = {} if body is None else {"Content-Type": "application/json"}
        try:
            response = self._http.request(
                method, path, params=_params(params), content=content, headers=headers
            )
        except httpx.HTTPError as error:
            raise NetworkError.from_exception(self.settings.api_url, error) from None
        except httpx.InvalidURL as error:
            raise click.UsageError(f"invalid request URL: {error}") from None
        if response.status_code not in ok:
            raise ApiError.from_response(response)
        return response

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> Any:
        """The JSON body of a successful call."""
        return decode(self.call(method, path, params=params, body=body, ok=ok))

    def get(self, path: str, params: Params | None = None) -> Any:
        return self.json("GET", path, params=params)

    def pages(
        self,
        path: str,
        params: Params | None = None,
        *,
        page_size: int,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Pager:
        """The items of a list, page by page, following `X-Next-Cursor` until the list ends or
        `limit` items were read."""
        return Pager(self, path, dict(params or {}), page_size, limit, cursor)

    # -- the acting project -------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """GET /v1/me: who this credential is (kind, project_id, key_id, name, scopes)."""
        if self._me is None:
            found = self.json("GET", "/v1/me")
            if not isinstance(found, dict):
                raise UnexpectedResponse(200, "GET /v1/me did not answer with an object")
            self._me = found
        return self._me

    def project_id(self) -> str:
        """The project lists act on: --project / STRAIT_PROJECT_ID / the profile's, else the
        key's own project from GET /v1/me. The admin secret must name one (click.UsageError)."""
        if self.settings.project:
            return self.settings.project
        if self.settings.is_admin:
            raise click.UsageError(
                "the admin secret acts on a project: pass --project or set STRAIT_PROJECT_ID"
            )
        try:
            project = self.me().get("project_id")
        except ApiError as error:
            if error.status != 404:
                raise
            raise click.UsageError(
                "this API cannot tell a key's project (it has no GET /v1/me): "
                "pass --project or set STRAIT_PROJECT_ID"
            ) from None
        if not isinstance(project, str) or not project:
            raise UnexpectedResponse(200, "GET /v1/me named no project_id")
        return project

    def job_id(self, job: str) -> str:
        """A job id from an id or a slug (a slug is looked up with GET /v1/jobs/{slug})."""
        if job.startswith("job_"):
            return job
        found = self.get(api_path("/v1/jobs/{}", job))
        if not isinstance(found, dict) or not isinstance(found.get("id"), str):
            raise UnexpectedResponse(200, f"GET /v1/jobs/{job} did not answer with a job")
        return str(found["id"])

    # -- streams ------------------------------------------------------------------------------

    @contextmanager
    def open_stream(
        self, path: str, params: Params | None, last_event_id: str | None
    ) -> Iterator[httpx.Response]:
        """The open response of an SSE route, whatever its status (the caller decides what a 204,
        503 or 4xx means). httpx errors propagate: the caller resumes after them."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(DEFAULT_TIMEOUT_SECS, read=STREAM_READ_TIMEOUT_SECS)
        with self._http.stream(
            "GET", path, params=_params(params), headers=headers, timeout=timeout
        ) as response:
            yield response


class Pager:
    """Iterates the pages of one list; afterwards `next_cursor` is the cursor of what was left
    unread (None when the list was read to its end)."""

    def __init__(
        self,
        client: ApiClient,
        path: str,
        params: dict[str, str | int | None],
        page_size: int,
        limit: int | None,
        cursor: str | None,
    ) -> None:
        self._client = client
        self._path = path
        self._params = params
        self._page_size = page_size
        self._limit = limit
        self.next_cursor = cursor

    def __iter__(self) -> Iterator[list[Any]]:
        remaining = self._limit
        seen: set[str] = set()
        while remaining is None or remaining > 0:
            size = self._page_size if remaining is None else min(self._page_size, remaining)
            params = {**self._params, "limit": size, "cursor": self.next_cursor}
            response = self._client.call("GET", self._path, params=params)
            items = decode(response)
            if not isinstance(items, list):
                raise UnexpectedResponse(response.status_code, f"GET {self._path} did not answer with a list")
            if remaining is not None:
                items = items[:remaining]
                remaining -= len(items)
            self.next_cursor = response.headers.get("x-next-cursor") or None
            yield items
            if self.next_cursor is None or self.next_cursor in seen:
                self.next_cursor = None
                return
            seen.add(self.next_cursor)

    def items(self) -> Iterator[Any]:
        for page in self:
            yield from page


def decode(response: httpx.Response) -> Any:
    """The JSON body of `response` (UnexpectedResponse when it is not JSON)."""
    try:
        return json_text.parse(response.text)
    except ValueError:
        excerpt = response.text.strip()[:200] or "an empty body"
        raise UnexpectedResponse(
            response.status_code,
            f"the API answered {response.request.method} {response.request.url.path} "
            f"with something that is not JSON: {excerpt}",
            request_id=response.headers.get("x-request-id"),
        ) from None


def _params(params: Params | None) -> dict[str, str | int] | None:
    if params is None:
        return None
    return {key: value for key, value in params.items() if value is not None}
