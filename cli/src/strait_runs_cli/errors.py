"""The failures the command line reports: each is one message on stderr and an exit code, never a
traceback. Click prints them (`Error: ...`) and exits with their `exit_code`."""

from typing import Any

import click
import httpx
import simplejson

from strait_runs_cli.outcomes import ExitCode
from strait_runs_cli.safe_text import one_line

_BODY_EXCERPT_CHARS = 200


class ApiError(click.ClickException):
    """The API answered with an error: its message, status, code and request id (exit 1)."""

    exit_code = ExitCode.API_ERROR

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        request_id: str | None = None,
        details: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.details = details or []

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ApiError":
        """The error a response carries: the envelope's message (spec 1.2), else an excerpt of the
        body, else the status's reason phrase."""
        body = _json_or_none(response)
        request_id = response.headers.get("x-request-id")
        if isinstance(body, dict) and isinstance(body.get("error") or body.get("message"), str):
            details = body.get("details")
            return cls(
                response.status_code,
                str(body.get("error") or body.get("message")),
                body.get("code") if isinstance(body.get("code"), str) else None,
                body.get("request_id") if isinstance(body.get("request_id"), str) else request_id,
                details if isinstance(details, list) else None,
            )
        excerpt = response.text.strip()[:_BODY_EXCERPT_CHARS]
        return cls(response.status_code, excerpt or response.reason_phrase or "no message", None, request_id)

    def format_message(self) -> str:
        where = f"HTTP {self.status}" + (f" {self.code}" if self.code else "")
        if self.request_id:
            where += f", request id {self.request_id}"
        lines = [f"{one_line(self.message)} ({one_line(where)})"]
        lines.extend(f"  {_detail_line(detail)}" for detail in self.details)
        return "\n".join(lines)


class NetworkError(click.ClickException):
    """The API could not be reached or the connection failed (exit 1); one line."""

    exit_code = ExitCode.API_ERROR

    @classmethod
    def from_exception(cls, api_url: str, error: Exception) -> "NetworkError":
        reason = str(error) or type(error).__name__
        if isinstance(error, httpx.TimeoutException):
            reason = f"timed out ({reason})" if str(error) else "timed out"
        return cls(f"cannot reach the API at {api_url}: {reason}")

    def format_message(self) -> str:
        return one_line(self.message)


class UnexpectedResponse(ApiError):
    """A successful status whose body is not what the API promises (for example not JSON)."""


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return simplejson.loads(response.text)
    except (ValueError, UnicodeDecodeError):
        return None


def _detail_line(detail: Any) -> str:
    if isinstance(detail, dict):
        field, error = detail.get("field"), detail.get("error")
        if field is not None or error is not None:
            return one_line(f"{field}: {error}")
        return one_line(simplejson.dumps(detail))
    return one_line(str(detail))
