"""Reading what runs recorded (spec 5 items 13-18, 28): events, checkpoints, usage, tool calls,
outputs, state, and the debug bundle. Each list is a Query of the run's item collection, oldest first
(events and checkpoints by sequence, usage and tool calls by id, outputs by `created_at`, state by
key), paged by services/sub_lists.py."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from straitruns.adapters.store.telemetry import TelemetryStore
from straitruns.domain import limits
from straitruns.domain.auth import Principal
from straitruns.domain.in_run import stored_level
from straitruns.domain.models import Checkpoint, Event, Output, Run, StateEntry, ToolCall, UsageRecord
from straitruns.services.event_log import EventLog
from straitruns.services.run_queries import RunQueries
from straitruns.services.sub_lists import SubCursor, SubPage, collect, decode_sub_cursor, sequence_after

Fits = Callable[[Any], bool]
_MAX_QUERY_PAGE = 1000
_BUNDLE_PAGE = 1000


class Dated(Protocol):
    @property
    def created_at(self) -> datetime: ...


def _always(_: Any) -> bool:
    return True


@dataclass(frozen=True)
class DebugBundle:
    run: Run
    events: list[Event]
    checkpoints: list[Checkpoint]
    usage: list[UsageRecord]
    tool_calls: list[ToolCall]
    outputs: list[Output]
    truncated: bool  # a list passed 10,000 items, or the whole would have passed 5 MB


class RunTelemetry:
    def __init__(self, queries: RunQueries, store: TelemetryStore, log: EventLog, read_budget: int) -> None:
        """`read_budget` is the number of records one list request may examine
        (STRAIT_LIST_READ_BUDGET)."""
        self.queries = queries
        self.store = store
        self.log = log
        self.read_budget = read_budget

    def events(
        self,
        principal: Principal,
        run_id: str,
        *,
        level: str | None,
        event_type: str | None,
        limit: int,
        cursor: str | None,
        fits: Fits = _always,
    ) -> SubPage[Event]:
        """The run's events by sequence, of one `level` and `event_type` when given. Raises NotFound
        (also another project's run), BadRequest (cursor), ValidationFailed (unknown level)."""
        run = self.queries.get(principal, run_id)
        wanted_level = stored_level(level) if level is not None else None
        position = decode_sub_cursor(cursor, "events")

        def keep(event: Event) -> bool:
            return (wanted_level is None or event.level == wanted_level) and (
                event_type is None or event.type == event_type
            )

        filtered = wanted_level is not None or event_type is not None
        page = self._query_size(limit, filtered=filtered or position.since is not None)
        records = self.log.iter_events(run.id, sequence_after(position), page)
        return self._page(records, "events", lambda e: str(e.sequence), position, limit, keep, fits)

    def checkpoints(
        self, principal: Principal, run_id: str, *, limit: int, cursor: str | None, fits: Fits = _always
    ) -> SubPage[Checkpoint]:
        """The run's checkpoints by sequence. Raises NotFound, BadRequest."""
        run = self.queries.get(principal, run_id)
        position = decode_sub_cursor(cursor, "checkpoints")
        records = self.store.iter_checkpoints(run.id, sequence_after(position), self._query_size(limit))
        return self._page(records, "checkpoints", lambda c: str(c.sequence), position, limit, None, fits)

    def usage(
        self, principal: Principal, run_id: str, *, limit: int, cursor: str | None, fits: Fits = _always
    ) -> SubPage[UsageRecord]:
        """The run's usage records, oldest first. Raises NotFound, BadRequest."""
        run = self.queries.get(principal, run_id)
        position = decode_sub_cursor(cursor, "usage")
        records = self.store.iter_usage(run.id, position.after, self._query_size(limit))
        return self._page(records, "usage", lambda u: u.id, position, limit, None, fits)

    def tool_calls(
        self, principal: Principal, run_id: str, *, limit: int, cursor: str | None, fits: Fits = _always
    ) -> SubPage[ToolCall]:
        """The run's tool calls, oldest first. Raises NotFound, BadRequest."""
        run = self.queries.get(principal, run_id)
        position = decode_sub_cursor(cursor, "tool-calls")
        records = self.store.iter_tool_calls(run.id, position.after, self._query_size(limit))
        return self._page(records, "tool-calls", lambda t: t.id, position, limit, None, fits)

    def outputs(
        self, principal: Principal, run_id: str, *, limit: int, cursor: str | None, fits: Fits = _always
    ) -> SubPage[Output]:
        """The run's outputs by `created_at` (their key's first write), then id. Raises NotFound,
        BadRequest."""
        run = self.queries.get(principal, run_id)
        return self.output_page(run.id, limit, decode_sub_cursor(cursor, "outputs"), fits)

    def state(
        self, principal: Principal, run_id: str, *, limit: int, cursor: str | None, fits: Fits = _always
    ) -> SubPage[StateEntry]:
        """The run's state entries ordered by key. Raises NotFound, BadRequest."""
        run = self.queries.get(principal, run_id)
        return self.state_page(run.id, limit, decode_sub_cursor(cursor, "state"), fits)

    def state_page(
        self, run_id: str, limit: int, position: SubCursor, fits: Fits = _always
    ) -> SubPage[StateEntry]:
        """A page of a run's state entries (also read by the in-run plane)."""
        records = self.store.iter_state(run_id, position.after, self._query_size(limit))
        return collect(
            records,
            kind="state",
            position=lambda entry: entry.key,
            moment=lambda entry: entry.updated_at,
            cursor=position,
            limit=limit,
            budget=self.read_budget,
            fits=fits,
        )

    def output_page(
        self, run_id: str, limit: int, position: SubCursor, fits: Fits = _always
    ) -> SubPage[Output]:
        records = self.store.iter_outputs(run_id, position.after, self._query_size(limit))
        page = collect(
            records,
            kind="outputs",
            position=lambda pair: pair[0],
            moment=lambda pair: pair[1].created_at,
            cursor=position,
            limit=limit,
            budget=self.read_budget,
            fits=lambda pair: fits(pair[1]),
        )
        return SubPage([output for _, output in page.items], page.next_cursor, page.complete)

    def debug_bundle(self, principal: Principal, run_id: str, fits: Fits = _always) -> DebugBundle:
        """The run and everything it recorded, each list complete up to 10,000 items, the whole
        within what `fits` accepts (5 MB): lists are filled in the order of the bundle, and
        `truncated` says whether one stopped early. Raises NotFound."""
        run = self.queries.get(principal, run_id)
        fits(run)
        whole = SubCursor()
        cap = limits.DEBUG_BUNDLE_LIST_ITEMS

        def full[T](records: Iterator[T], position: Callable[[T], str]) -> SubPage[T]:
            return collect(
                records,
                kind="bundle",
                position=position,
                moment=lambda _: run.created_at,
                cursor=whole,
                limit=cap,
                budget=cap,
                fits=fits,
            )

        events = full(self.log.iter_events(run.id, 0, _BUNDLE_PAGE), lambda e: str(e.sequence))
        checkpoints = full(self.store.iter_checkpoints(run.id, 0, _BUNDLE_PAGE), lambda c: str(c.sequence))
        usage = full(self.store.iter_usage(run.id, None, _BUNDLE_PAGE), lambda u: u.id)
        tool_calls = full(self.store.iter_tool_calls(run.id, None, _BUNDLE_PAGE), lambda t: t.id)
        outputs = collect(
            self.store.iter_outputs(run.id, None, _BUNDLE_PAGE),
            kind="bundle",
            position=lambda pair: pair[0],
            moment=lambda _: run.created_at,
            cursor=whole,
            limit=cap,
            budget=cap,
            fits=lambda pair: fits(pair[1]),
        )
        pages: list[SubPage[Any]] = [events, checkpoints, usage, tool_calls, outputs]
        return DebugBundle(
            run=run,
            events=events.items,
            checkpoints=checkpoints.items,
            usage=usage.items,
            tool_calls=tool_calls.items,
            outputs=[output for _, output in outputs.items],
            truncated=not all(page.complete for page in pages),
        )

    def _query_size(self, limit: int, *, filtered: bool = False) -> int:
        """Items to ask of one Query: the page and one more (is there a next page?), or the whole
        read budget when a filter may skip records."""
        wanted = self.read_budget if filtered else limit + 1
        return max(1, min(wanted, self.read_budget, _MAX_QUERY_PAGE))

    def _page[T: Dated](
        self,
        records: Iterator[T],
        kind: str,
        position: Callable[[T], str],
        cursor: SubCursor,
        limit: int,
        keep: Callable[[T], bool] | None,
        fits: Fits,
    ) -> SubPage[T]:
        return collect(
            records,
            kind=kind,
            position=position,
            moment=lambda record: record.created_at,
            cursor=cursor,
            limit=limit,
            budget=self.read_budget,
            keep=keep or _always,
            fits=fits,
        )
