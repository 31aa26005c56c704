"""The run filters shared by `runs list`, `runs watch`, `bulk ...` and `dlq replay`: one set of
options, one RunFilter, turned into GET /v1/runs query parameters or a bulk operation's filter
(the same names, spec 5 item 1)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from strait_runs_cli import json_text
from strait_runs_cli.api import ApiClient
from strait_runs_cli.outcomes import ERROR_CLASSES, RUN_STATUSES

F = TypeVar("F", bound=Callable[..., Any])
_AGO = re.compile(r"^(?P<amount>\d{1,9})(?P<unit>[smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class RunFilter:
    status: str | None = None
    job: str | None = None
    batch: str | None = None
    metadata: tuple[str, str | None] | None = None
    tag: tuple[str, str | None] | None = None
    payload_contains: dict[str, Any] | None = None
    triggered_by: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    run_ids: tuple[str, ...] = ()
    error_class: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, item.name) in (None, ()) for item in fields(self))

    def query(self, client: ApiClient) -> dict[str, str | None]:
        """GET /v1/runs query parameters (a job slug is looked up to its id)."""
        query: dict[str, str | None] = {
            "status": self.status,
            "job_id": client.job_id(self.job) if self.job else None,
            "batch_id": self.batch,
            "triggered_by": self.triggered_by,
            "created_after": self.created_after,
            "created_before": self.created_before,
            "payload_contains": json_text.compact(self.payload_contains) if self.payload_contains else None,
        }
        if self.metadata:
            query["metadata_key"], query["metadata_value"] = self.metadata
        if self.tag:
            query["tag_key"], query["tag_value"] = self.tag
        return query

    def bulk_filter(self, client: ApiClient) -> dict[str, Any]:
        """A bulk operation's filter: the query names, `payload_contains` as an object, plus
        `run_ids` and `error_class`; absent values are left out."""
        body: dict[str, Any] = {key: value for key, value in self.query(client).items() if value is not None}
        if self.payload_contains is not None:
            body["payload_contains"] = self.payload_contains
        if self.run_ids:
            body["run_ids"] = list(self.run_ids)
        if self.error_class:
            body["error_class"] = self.error_class
        return body


def _pair(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, str | None] | None:
    if value is None:
        return None
    key, sep, pair_value = value.partition("=")
    if not key:
        raise click.BadParameter("expected KEY=VALUE, or KEY alone for 'has the key'")
    return key, (pair_value if sep else None)


def parse_json_object(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> Any:
    if value is None:
        return None
    try:
        parsed = json_text.parse(value)
    except ValueError as error:
        raise click.BadParameter(f"not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter('must be a JSON object, such as \'{"order": {"id": 7}}\'')
    return parsed


def parse_time(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> str | None:
    """An RFC 3339 date-time (a naive one is UTC), or an age such as 30m, 2h, 7d meaning that
    long ago; returned as RFC 3339 UTC."""
    if value is None:
        return None
    if match := _AGO.match(value):
        delta = timedelta(**{_UNITS[match["unit"]]: int(match["amount"])})
        moment = datetime.now(UTC) - delta
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is neither an RFC 3339 date-time (2026-11-28T14:15:22Z) nor an age (30m, 2h, 7d)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_duration(
    _ctx: click.Context | None, _param: click.Parameter | None, value: str | None
) -> timedelta | None:
    """A duration such as 90s, 10m, 2h or 1d."""
    if value is None:
        return None
    match = _AGO.match(value)
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration such as 90s, 10m, 2h or 1d")
    return timedelta(**{_UNITS[match["unit"]]: int(match["amount"])})


_FILTER_NAMES = [item.name for item in fields(RunFilter)]


def run_filter_options(*, status: bool = True, bulk: bool = False) -> Callable[[F], F]:
    """Adds the run filter options to a command, which then receives them as one `run_filter`
    argument. `status=False` leaves out --status (the dead-letter commands fix it); `bulk=True`
    adds --run-id and --error-class, which only bulk operations accept."""
    options = [
        click.option(
            "--status",
            type=click.Choice(RUN_STATUSES),
            metavar="STATUS",
            help=f"Only runs in this status: {', '.join(RUN_STATUSES)}.",
        )
        if status
        else None,
        click.option("--job", metavar="JOB", help="Only runs of this job (its id or slug)."),
        click.option("--batch", metavar="BATCH_ID", help="Only runs of this batch."),
        click.option(
            "--metadata",
            metavar="KEY[=VALUE]",
            callback=_pair,
            help="Only runs whose metadata has KEY (with VALUE, when given).",
        ),
        click.option(
            "--tag",
            metavar="KEY[=VALUE]",
            callback=_pair,
            help="Only runs with the tag KEY (=VALUE, when given).",
        ),
        click.option(
            "--payload-contains",
            metavar="JSON",
            callback=parse_json_object,
            help='Only runs whose payload contains this JSON object, e.g. \'{"order": {"id": 7}}\'.',
        ),
        click.option(
            "--triggered-by",
            metavar="SOURCE",
            help="Only runs triggered this way: manual, retry, spawn, ...",
        ),
        click.option(
            "--created-after",
            metavar="TIME",
            callback=parse_time,
            help="Only runs created after TIME: RFC 3339 (UTC when no offset) or an age (30m, 2h, 7d).",
        ),
        click.option(
            "--created-before", metavar="TIME", callback=parse_time, help="Only runs created before TIME."
        ),
    ]
    if bulk:
        options += [
            click.option(
                "--run-id",
                "run_ids",
                multiple=True,
                metavar="RUN_ID",
                help="Only these runs (repeat the option for several).",
            ),
            click.option(
                "--error-class",
                type=click.Choice(ERROR_CLASSES),
                metavar="CLASS",
                help=f"Only runs whose last attempt failed for this reason: {', '.join(ERROR_CLASSES)}.",
            ),
        ]

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def with_filter(*args: Any, **kwargs: Any) -> Any:
            chosen = {name: kwargs.pop(name) for name in _FILTER_NAMES if name in kwargs}
            chosen["run_ids"] = tuple(chosen.get("run_ids") or ())
            return command(*args, run_filter=RunFilter(**chosen), **kwargs)

        decorated: Any = with_filter
        for option in reversed([option for option in options if option is not None]):
            decorated = option(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate
