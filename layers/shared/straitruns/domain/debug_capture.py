"""What debug mode records of an attempt (spec 5 item 19): the request and the response with secret
headers redacted and bodies cut to fit an event, and the job configuration the attempt ran with."""

import re
from collections.abc import Iterable
from typing import Any

import simplejson

from straitruns.domain import limits
from straitruns.domain.models import Job, Run

REDACTED = "[redacted]"
# Headers that carry credentials, whatever their value looks like.
_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-run-token",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-amz-security-token",
    }
)
# Any other header whose name says it holds a secret.
_SECRET_WORDS = ("token", "secret", "password", "passwd", "api-key", "apikey", "credential", "signature")
# Room kept for everything but the body, so a whole event's data stays within EVENT_DATA_BYTES.
_ENVELOPE_BYTES = 512


def is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_HEADERS or any(word in lowered for word in _SECRET_WORDS)


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers with every secret value replaced by REDACTED (repeated names joined by ", ")."""
    shown: dict[str, str] = {}
    for name, value in headers:
        text = REDACTED if is_secret_header(name) else value
        shown[name] = f"{shown[name]}, {text}" if name in shown else text
    return shown


def job_configuration(job: Job, run: Run) -> dict[str, Any]:
    """The job settings the attempt runs with, the run's overrides applied."""
    return {
        "job_id": job.id,
        "job_version": job.version,
        "endpoint_url": job.endpoint_url,
        "timeout_secs": run.timeout_secs_override or job.timeout_secs,
        "max_attempts": run.max_attempts_override or job.max_attempts,
        "retry_backoff": (run.retry_backoff or job.retry_backoff).value,
        "retry_initial_delay_secs": _first(run.retry_initial_delay_secs, job.retry_initial_delay_secs),
        "retry_max_delay_secs": _first(run.retry_max_delay_secs, job.retry_max_delay_secs),
        "max_concurrency": job.max_concurrency,
        "max_concurrency_per_key": job.max_concurrency_per_key,
        "poison_pill_threshold": job.poison_pill_threshold,
        "machine_preset": run.machine_preset,
    }


def request_record(
    run: Run, job: Job, url: str, headers: Iterable[tuple[str, str]], body: bytes
) -> dict[str, Any]:
    """The data of a `debug.request` event."""
    record: dict[str, Any] = {
        "attempt": run.attempt,
        "method": "POST",
        "url": url,
        "headers": redact_headers(headers),
        "job": job_configuration(job, run),
    }
    return _with_body(record, body)


def response_record(
    attempt: int,
    status: int | None,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    error: str | None = None,
    timed_out: bool = False,
    body_too_large: bool = False,
) -> dict[str, Any]:
    """The data of a `debug.response` event (status None: no response, see `error`/`timed_out`)."""
    record: dict[str, Any] = {
        "attempt": attempt,
        "status": status,
        "headers": redact_headers(headers),
        "error": error,
        "timed_out": timed_out,
        "body_too_large": body_too_large,
    }
    return _with_body(record, body)


def _with_body(record: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The record with the body as text, cut so the whole record fits in one event's data."""
    used = len(simplejson.dumps(record, ensure_ascii=False).encode()) + _ENVELOPE_BYTES
    room = max(0, limits.EVENT_DATA_BYTES - used)
    cut = body[:room]
    text = cut.decode("utf-8", errors="ignore")
    # Escaping can make the JSON text longer than the bytes; cut again until it fits.
    while len(simplejson.dumps(text, ensure_ascii=False).encode()) > room and text:
        text = text[: len(text) * 9 // 10]
    return {**record, "body": text, "body_bytes": len(body), "body_truncated": len(text.encode()) < len(body)}


def _first(*values: int | None) -> int | None:
    return next((value for value in values if value is not None), None)


_SECRET_TEXT = re.compile(r"strait_[0-9a-f]{64}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def body_excerpt(body: bytes, limit: int) -> str:
    """The first `limit` bytes of an answer as text, with API keys and tokens it echoes masked (a
    failing endpoint often returns the request it got)."""
    text = body[:limit].decode("utf-8", errors="ignore")
    return _SECRET_TEXT.sub(REDACTED, text)
