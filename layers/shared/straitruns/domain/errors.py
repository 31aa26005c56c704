"""Typed domain errors. The api layer maps each to one HTTP status, in one place."""

from typing import Any


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(DomainError):
    """400: malformed input that is not a body-shape problem."""


class Unauthenticated(DomainError):
    """401."""


class Forbidden(DomainError):
    """403."""


class NotFound(DomainError):
    """404: missing, or belonging to another project."""


class Conflict(DomainError):
    """409: the resource's state does not allow the operation."""


class Gone(DomainError):
    """410: the run is terminal."""


class PayloadTooLarge(DomainError):
    """413: a field (named in the message) is over its byte limit."""


class UnsupportedMediaType(DomainError):
    """415: a body that is not declared as JSON, or declared in an encoding the service does not read."""


class ValidationFailed(DomainError):
    """422: well-formed input of the wrong shape or out of range."""


class Unavailable(DomainError):
    """503: a dependency is throttled or down, or a capacity is reached; safe to retry after
    `retry_after_secs` (the Retry-After header)."""

    retry_after_secs = 1


class TransitionRefused(Exception):
    """A store write conditioned on a run's status and generation found the run moved on (another
    actor won). `current_status` is the status found, when the store returned it."""

    def __init__(self, run_id: str, current: dict[str, Any] | None = None) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.current_status = current.get("status") if current else None


class RecordsExpired(Exception):
    """The table's stream no longer holds the records asked for (it keeps them 24 hours), or
    their shard is gone."""
