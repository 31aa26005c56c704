"""The outbound HTTP call to a job endpoint (spec 4.3, 4.6): no redirects, bounded by the attempt
timeout, the response body read up to the result limit, and the phases of the call timed."""

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from straitruns.domain import limits
from straitruns.domain.endpoint_policy import refusal
from straitruns.domain.outcomes import HttpOutcome

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to ([] when it does not)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EndpointRefused(Exception):
    """The endpoint URL is refused by the address policy (the message says why)."""


@dataclass
class CallTimings:
    connect_ms: int = 0
    ttfb_ms: int = 0
    transfer_ms: int = 0


@dataclass
class CallResult:
    outcome: HttpOutcome
    timings: CallTimings = field(default_factory=CallTimings)


def _ms(seconds: float) -> int:
    """Whole milliseconds; a positive duration under 1 ms counts as 1."""
    if seconds <= 0:
        return 0
    return max(1, round(seconds * 1000))


class _Trace:
    """Collects httpcore's trace events into phase times."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def __call__(self, name: str, _info: dict[str, Any]) -> None:
        self.marks.setdefault(name, time.perf_counter())

    def between(self, start: str, end: str) -> float:
        if start in self.marks and end in self.marks:
            return self.marks[end] - self.marks[start]
        return 0.0

    def connect_seconds(self) -> float:
        end = "connection.start_tls.complete" if "connection.start_tls.complete" in self.marks else None
        return self.between("connection.connect_tcp.started", end or "connection.connect_tcp.complete")


class HttpExecutor:
    """Calls job endpoints. One per process: connections are reused between attempts."""

    def __init__(self, allow_private: bool, resolver: Resolver = resolve) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.client = httpx.Client(follow_redirects=False, headers={"User-Agent": "strait-runs"})
        # The address check_url approved, per dispatching thread, for the call that follows it.
        self._approved = threading.local()

    def check_url(self, url: str) -> None:
        """Raises EndpointRefused when the URL's host resolves to a refused address. Otherwise the
        next `call` of this URL on this thread connects to the address checked here (DNS
        rebinding: the host is resolved once, and never again between the check and the call)."""
        self._approved.pin = (url, self._checked_address(url))

    def _checked_address(self, url: str) -> str | None:
        """The address to connect to (None: let the client resolve, when private endpoints are
        allowed and nothing is refused anyway). Raises EndpointRefused."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EndpointRefused("endpoint URL must be http(s) with a host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = self.resolver(parts.hostname, port)
        reason = refusal(addresses, self.allow_private)
        if reason:
            raise EndpointRefused(reason)
        return None if self.allow_private else addresses[0]

    def _pinned(self, url: str) -> str | None:
        pin = getattr(self._approved, "pin", None)
        self._approved.pin = None
        if pin is not None and pin[0] == url:
            return str(pin[1]) if pin[1] is not None else None
        return self._checked_address(url)

    def call(self, url: str, body: bytes, headers: dict[str, str], timeout_secs: float) -> CallResult:
        """POSTs `body` to `url`. Never raises for the endpoint's behaviour: errors, timeouts and
        oversize bodies are part of the outcome."""
        trace = _Trace()
        deadline = time.monotonic() + timeout_secs
        request_headers = {"Content-Type": "application/json", **headers}
        try:
            address = self._pinned(url)
        except EndpointRefused as exc:
            return CallResult(HttpOutcome(error=f"endpoint refused: {exc}"[:500]))
        target, extensions = _connect_to(url, address)
        if address is not None:
            request_headers.setdefault("Host", urlsplit(url).netloc.rpartition("@")[2])
        try:
            with self.client.stream(
                "POST",
                target,
                content=body,
                headers=request_headers,
                timeout=httpx.Timeout(timeout_secs),
                extensions={"trace": trace, **extensions},
            ) as response:
                first_byte = time.perf_counter()
                content, too_large, timed_out = _read_body(response, deadline)
                read_done = time.perf_counter()
                outcome = HttpOutcome(
                    status=response.status_code,
                    body=content,
                    content_type=response.headers.get("content-type", ""),
                    body_too_large=too_large,
                    timed_out=timed_out,
                    headers=tuple(response.headers.multi_items()),
                )
        except httpx.TimeoutException:
            return CallResult(HttpOutcome(timed_out=True), _timings(trace, None, None))
        except httpx.HTTPError as exc:
            failure = HttpOutcome(error=f"{type(exc).__name__}: {exc}"[:500])
            return CallResult(failure, _timings(trace, None, None))
        return CallResult(outcome, _timings(trace, first_byte, read_done))


def _connect_to(url: str, address: str | None) -> tuple[str, dict[str, Any]]:
    """The URL to request so the connection goes to `address` (the checked one), and the request
    extensions that keep TLS on the real host name (SNI and certificate check)."""
    if address is None:
        return url, {}
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), extensions


def _read_body(response: httpx.Response, deadline: float) -> tuple[bytes, bool, bool]:
    """The body up to the result limit: (content, too large, timed out)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limits.RESULT_BYTES:
            return b"", True, False
        chunks.append(chunk)
        if time.monotonic() > deadline:
            return b"", False, True
    return b"".join(chunks), False, False


def _timings(trace: _Trace, first_byte: float | None, read_done: float | None) -> CallTimings:
    sent = trace.marks.get("http11.send_request_headers.started") or trace.marks.get(
        "http2.send_request_headers.started"
    )
    ttfb = (first_byte - sent) if first_byte is not None and sent is not None else 0.0
    transfer = (read_done - first_byte) if read_done is not None and first_byte is not None else 0.0
    return CallTimings(connect_ms=_ms(trace.connect_seconds()), ttfb_ms=_ms(ttfb), transfer_ms=_ms(transfer))
