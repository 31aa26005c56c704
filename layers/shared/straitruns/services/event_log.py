"""Reading a run's numbered records (events, stream chunks) in sequence order, never passing over a
number that is still being written (spec 2.3).

SDK events and chunks take their number with an atomic add and are written right after
(ARCHITECTURE.md), so a reader may find number n + 1 stored while n is not yet. This reader then
waits for n, a bounded time: until the record after the gap is `gap_wait_secs` old (a writer that
took n before n + 1 was written has had that long), and at most `gap_wait_secs` per read in all.
A number still missing then belongs to a writer that failed, and is skipped.

The management lists (services/run_telemetry.py), the debug bundle and the streams read through it.
"""

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import islice
from typing import Protocol

from straitruns.adapters.store.telemetry import TelemetryStore
from straitruns.domain import limits
from straitruns.domain.clock import Clock
from straitruns.domain.models import Event, StreamChunk

_POLL_SECS = 0.05
_MAX_PAGE = 1000


class Numbered(Protocol):
    @property
    def sequence(self) -> int: ...

    @property
    def created_at(self) -> datetime: ...


class EventLog:
    def __init__(
        self,
        store: TelemetryStore,
        clock: Clock,
        gap_wait_secs: float = limits.SEQUENCE_GAP_WAIT_SECS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self.gap_wait_secs = gap_wait_secs
        self.sleep = sleep
        self.monotonic = monotonic

    def iter_events(self, run_id: str, after_sequence: int = 0, page: int = 100) -> Iterator[Event]:
        """The run's events after `after_sequence`, in strictly increasing sequence order, each
        once; read lazily as consumed, `page` at a time."""
        stored = self.store.iter_events(run_id, after_sequence, page)
        return self._contiguous(
            stored, after_sequence, lambda lo, hi: self.store.events_between(run_id, lo, hi)
        )

    def events_after(self, run_id: str, after_sequence: int, limit: int) -> list[Event]:
        """Up to `limit` events after `after_sequence` (see iter_events)."""
        return list(islice(self.iter_events(run_id, after_sequence, min(limit, _MAX_PAGE)), limit))

    def iter_chunks(self, run_id: str, after_sequence: int = 0) -> Iterator[StreamChunk]:
        """The run's unexpired stream chunks (every stream) after `after_sequence`, in order."""
        now = self.clock.now()
        stored = self.store.iter_chunks(run_id, after_sequence, now)
        return self._contiguous(
            stored, after_sequence, lambda lo, hi: self.store.chunks_between(run_id, lo, hi, now)
        )

    def chunks_after(
        self, run_id: str, after_sequence: int, stream_id: str | None, limit: int
    ) -> list[StreamChunk]:
        """Up to `limit` chunks after `after_sequence`, of one stream when `stream_id` is given.
        Gaps are judged over every stream, so a chunk of another stream is not mistaken for one."""
        chunks = self.iter_chunks(run_id, after_sequence)
        return list(islice((c for c in chunks if stream_id is None or c.stream_id == stream_id), limit))

    def _contiguous[T: Numbered](
        self, stored: Iterator[T], after: int, fetch: Callable[[int, int], list[T]]
    ) -> Iterator[T]:
        expected = after + 1
        overall: float | None = None
        for item in stored:
            if item.sequence > expected:
                if overall is None:
                    overall = self.monotonic() + self.gap_wait_secs
                age = (self.clock.now() - item.created_at).total_seconds()
                deadline = min(overall, self.monotonic() + max(0.0, self.gap_wait_secs - age))
                yield from self._fill(expected, item.sequence - 1, fetch, deadline)
            yield item
            expected = item.sequence + 1

    def _fill[T: Numbered](
        self, first: int, last: int, fetch: Callable[[int, int], list[T]], deadline: float
    ) -> list[T]:
        """The records `first`..`last` that got written before `deadline`, in order."""
        while True:
            found = fetch(first, last)
            if len(found) == last - first + 1 or self.monotonic() >= deadline:
                return found
            self.sleep(_POLL_SECS)
