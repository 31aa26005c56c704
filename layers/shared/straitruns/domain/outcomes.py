"""What an attempt's outcome means for the run (spec 4.3, 4.4)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from straitruns.domain import limits
from straitruns.domain.backoff import retry_delay_secs
from straitruns.domain.models import ErrorClass, Job, RetryBackoff, Run
from straitruns.domain.statuses import RunStatus

ERROR_MARKER = " [truncated]"


@dataclass(frozen=True)
class HttpOutcome:
    """How an attempt's HTTP call ended: a status and body, or an error before a response."""

    status: int | None = None
    body: bytes = b""
    content_type: str = ""
    error: str | None = None  # connection, TLS or protocol error text
    timed_out: bool = False
    body_too_large: bool = False
    headers: tuple[tuple[str, str], ...] = ()  # the response's headers (debug mode records them)


@dataclass(frozen=True)
class Verdict:
    """`completed`, `accepted` (202: finishes through the SDK), `failed` (no retry) or `retryable`."""

    kind: str
    error: str | None = None
    error_class: ErrorClass | None = None
    fingerprint: str | None = None


def judge(outcome: HttpOutcome) -> Verdict:
    if outcome.timed_out:
        return Verdict("retryable", "attempt timed out", ErrorClass.TIMEOUT, "timeout")
    if outcome.status is None:
        text = outcome.error or "connection failed"
        return Verdict("retryable", text, ErrorClass.CONNECTION, f"connection:{text}")
    status = outcome.status
    if status == 202:
        return Verdict("accepted")
    if 200 <= status < 300:
        if outcome.body_too_large:
            return Verdict("failed", "result too large", ErrorClass.CLIENT, "result too large")
        return Verdict("completed")
    if 300 <= status < 400:
        return Verdict("failed", f"HTTP {status}: redirect not followed", ErrorClass.CLIENT, str(status))
    if status in (401, 403):
        return Verdict("failed", f"HTTP {status} from the endpoint", ErrorClass.AUTH, str(status))
    if status == 429:
        return Verdict("retryable", "HTTP 429 from the endpoint", ErrorClass.RATE_LIMITED, "429")
    if status == 408 or status >= 500:
        return Verdict("retryable", f"HTTP {status} from the endpoint", ErrorClass.SERVER, str(status))
    if 400 <= status < 500:
        return Verdict("failed", f"HTTP {status} from the endpoint", ErrorClass.CLIENT, str(status))
    return Verdict("retryable", f"HTTP {status} from the endpoint", ErrorClass.SERVER, str(status))


def engine_error(text: str) -> str:
    """An engine error cut to the stored limit, with a marker when cut."""
    encoded = text.encode()
    if len(encoded) <= limits.ERROR_BYTES:
        return text
    room = limits.ERROR_BYTES - len(ERROR_MARKER.encode())
    return encoded[:room].decode("utf-8", errors="ignore") + ERROR_MARKER


@dataclass(frozen=True)
class AfterFailure:
    """The status a retryable failure leads to, and when the retry is due (None: no retry)."""

    status: RunStatus
    next_retry_at: datetime | None
    streak: int


def after_retryable_failure(
    run: Run, job: Job, error_class: ErrorClass, fingerprint: str, now: datetime, delay_draw: float
) -> AfterFailure:
    """Retry when attempts remain and the poison pill has not fired; otherwise the terminal status
    that fits the failure. `delay_draw` is the jitter factor's random draw in [-1, 1]."""
    streak = run.fingerprint_streak + 1 if run.error_fingerprint == fingerprint else 1
    if job.poison_pill_threshold > 0 and streak >= job.poison_pill_threshold:
        return AfterFailure(RunStatus.DEAD_LETTER, None, streak)
    max_attempts = run.max_attempts_override or job.max_attempts
    if run.attempt < max_attempts:
        initial = run.retry_initial_delay_secs
        maximum = run.retry_max_delay_secs
        delay = retry_delay_secs(
            run.retry_backoff or job.retry_backoff or RetryBackoff.EXPONENTIAL,
            run.attempt,
            initial if initial is not None else job.retry_initial_delay_secs,
            maximum if maximum is not None else job.retry_max_delay_secs,
            uniform=lambda low, high: low + (high - low) * (delay_draw + 1) / 2,
        )
        return AfterFailure(RunStatus.QUEUED, now + timedelta(seconds=delay), streak)
    if error_class == ErrorClass.TIMEOUT:
        return AfterFailure(RunStatus.TIMED_OUT, None, streak)
    if error_class == ErrorClass.HEARTBEAT:
        return AfterFailure(RunStatus.CRASHED, None, streak)
    return AfterFailure(RunStatus.DEAD_LETTER, None, streak)
