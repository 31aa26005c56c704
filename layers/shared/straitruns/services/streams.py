"""Live streams (spec 7): the SSE frames of `GET /v1/runs/{id}/stream` (the run's event log) and
`GET /v1/runs/{id}/stream/chunks` (its stream chunks), read from the store and nothing else, so no
frame is lost across reconnects, cold starts or instances (docs/streams.md).

A stream polls the run's item collection for numbers after the last one it sent: every
`poll_min_secs` while frames flow, backing off to `poll_max_secs` while idle. It never passes over a
number that is still being written: it waits up to `gap_wait_secs` for it, then passes over (its
writer failed). It sends `: keepalive` when it has been quiet for `keepalive_secs`, `event: end` once
the run is terminal and every number taken before has been sent, and `retry: 1000` when the
connection reaches `max_connection_secs`. Store calls run in worker threads, never on the event loop.
"""

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Protocol, Self

import anyio

from straitruns.adapters.store.stream_reads import RunSnapshot, StreamReads
from straitruns.adapters.store.stream_slots import TOTAL_SCOPE, SlotLimit, StreamSlotStore
from straitruns.domain.auth import Principal
from straitruns.domain.clock import Clock
from straitruns.domain.digits import bounded_int
from straitruns.domain.errors import NotFound, Unavailable
from straitruns.domain.ids import IdKind, is_valid_id
from straitruns.domain.models import Event
from straitruns.domain.statuses import RunStatus, is_terminal
from straitruns.services.projects import can_see
from straitruns.services.stream_frames import (
    KEEPALIVE,
    RECONNECT,
    chunk_frame,
    end_frame,
    event_frame,
    status_changed_to,
)
from straitruns.settings import Settings

# Growth of the poll interval per idle poll, from poll_min_secs up to poll_max_secs.
IDLE_BACKOFF = 1.5
# A slot window outlasts the longest connection by this much (adapters/store/stream_slots.py).
SLOT_WINDOW_GRACE_SECS = 60
# What a refused stream is told to wait before trying again.
RETRY_AFTER_FULL_SECS = 5


class StreamKind(StrEnum):
    EVENTS = "events"
    CHUNKS = "chunks"


@dataclass(frozen=True)
class StreamConfig:
    """Limits and timings of the streams, from the STRAIT_SSE_* settings (their defaults live
    there; docs/streams.md)."""

    max_connection_secs: float
    max_connections: int
    max_connections_per_project: int
    poll_min_secs: float
    poll_max_secs: float
    keepalive_secs: float
    gap_wait_secs: float
    status_check_secs: float
    read_batch: int = 200

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            max_connection_secs=settings.sse_max_connection_secs,
            max_connections=settings.sse_max_connections,
            max_connections_per_project=settings.sse_max_connections_per_project,
            poll_min_secs=settings.sse_poll_min_secs,
            poll_max_secs=max(settings.sse_poll_min_secs, settings.sse_poll_max_secs),
            keepalive_secs=settings.sse_keepalive_secs,
            gap_wait_secs=settings.sse_gap_wait_secs,
            status_check_secs=settings.sse_status_check_secs,
        )


class StreamCapacityReached(Unavailable):
    """503: the project, or the service, has as many open streams as it allows."""

    retry_after_secs = RETRY_AFTER_FULL_SECS


def parse_last_event_id(text: str | None) -> int | None:
    """The sequence a client last received (`Last-Event-ID` or `?last_event_id=`), or None when
    absent or not a non-negative integer of at most 18 digits (the stream then starts from the
    first number)."""
    if text is None:
        return None
    return bounded_int(text.strip())


class Numbered(Protocol):
    @property
    def sequence(self) -> int: ...


class SequenceCursor:
    """The last number a stream delivered, and the rule for the numbers after it: they go out in
    order; a missing number (taken, still being written) holds back the ones after it for up to
    `gap_wait_secs`, then is passed over (its writer failed)."""

    def __init__(self, last: int, gap_wait_secs: float) -> None:
        self.last = last
        self.gap_wait_secs = gap_wait_secs
        self._gap_since: float | None = None

    @property
    def waiting(self) -> bool:
        """Whether a missing number is being waited for."""
        return self._gap_since is not None

    def take[T: Numbered](self, items: Sequence[T], now: float) -> list[T]:
        """The items (in sequence order) that may go out at monotonic time `now`."""
        taken: list[T] = []
        for item in items:
            if item.sequence <= self.last:
                continue
            if item.sequence > self.last + 1 and not self._waited_enough(now):
                break
            taken.append(item)
            self.last = item.sequence
            self._gap_since = None
        return taken

    def settle(self, allocated: int, now: float) -> bool:
        """Whether every number up to `allocated` (the last one taken) has gone out or been passed
        over: a number above `last` that has not turned up is waited for, then passed over."""
        if allocated <= self.last:
            self._gap_since = None
            return True
        if not self._waited_enough(now):
            return False
        self.last = allocated
        self._gap_since = None
        return True

    def _waited_enough(self, now: float) -> bool:
        if self._gap_since is None:
            self._gap_since = now
        return now - self._gap_since >= self.gap_wait_secs


@dataclass
class StatusTracker:
    """The run's status as of the event numbered `seen`, moved on by later status_change events."""

    status: RunStatus
    seen: int

    def observe(self, event: Event) -> None:
        if event.sequence <= self.seen:
            return
        self.seen = event.sequence
        target = status_changed_to(event)
        if target is not None:
            self.status = target

    @property
    def terminal(self) -> bool:
        return is_terminal(self.status)


@dataclass(frozen=True)
class StreamLease:
    """The slots an open stream holds (given back when it closes)."""

    scopes: tuple[str, ...]
    window: int


class StreamLimiter:
    """The caps on open streams: `max_connections_per_project` per project and `max_connections`
    in all, counted in the store so every instance shares them."""

    def __init__(self, slots: StreamSlotStore, clock: Clock, config: StreamConfig) -> None:
        self.slots = slots
        self.clock = clock
        self.window_secs = config.max_connection_secs + SLOT_WINDOW_GRACE_SECS
        self.limits = (config.max_connections_per_project, config.max_connections)

    def acquire(self, project_id: str) -> StreamLease:
        """A slot for one more stream of the project. Raises StreamCapacityReached when full."""
        per_project, total = self.limits
        window = self._window()
        wanted = [SlotLimit(project_id, per_project), SlotLimit(TOTAL_SCOPE, total)]
        expires = int((window + 3) * self.window_secs)
        if not self.slots.take(wanted, window, expires):
            raise StreamCapacityReached(
                f"too many open streams (at most {per_project} per project and {total} in all); "
                f"retry in {RETRY_AFTER_FULL_SECS} s"
            )
        return StreamLease(tuple(limit.scope for limit in wanted), window)

    def release(self, lease: StreamLease) -> None:
        self.slots.give_back(lease.scopes, lease.window)

    def open_streams(self, scope: str) -> int:
        """Streams open now in a project (or in all, with TOTAL_SCOPE)."""
        return self.slots.open_count(scope, self._window())

    def _window(self) -> int:
        return int(self.clock.now().timestamp() // self.window_secs)


@dataclass(frozen=True)
class OpenStream:
    """A stream the caller may read: what it sends, from where, and the slot it holds."""

    run_id: str
    kind: StreamKind
    after: int
    stream_id: str | None
    snapshot: RunSnapshot
    lease: StreamLease


class StreamService:
    def __init__(
        self, reads: StreamReads, limiter: StreamLimiter, clock: Clock, config: StreamConfig
    ) -> None:
        self.reads = reads
        self.limiter = limiter
        self.clock = clock
        self.config = config

    def open(
        self,
        principal: Principal,
        run_id: str,
        kind: StreamKind,
        last_event_id: str | None,
        stream_id: str | None = None,
    ) -> OpenStream | None:
        """Opens a stream of the run after `last_event_id`, holding a slot until `close`. None
        when there is nothing left to send: the run is terminal and `last_event_id` is already its
        last number (a reconnect after the end: 204).

        Raises NotFound for a malformed id, a missing run or another project's run, and
        StreamCapacityReached when the project or the service has no stream left.
        """
        if not is_valid_id(IdKind.RUN, run_id):
            raise NotFound("run not found")
        snapshot = self.reads.snapshot(run_id)
        if snapshot is None or not can_see(principal, snapshot.project_id):
            raise NotFound("run not found")
        after = parse_last_event_id(last_event_id)
        last_number = snapshot.event_sequence if kind == StreamKind.EVENTS else snapshot.chunk_sequence
        if after is not None and is_terminal(snapshot.status) and after >= last_number:
            return None
        lease = self.limiter.acquire(snapshot.project_id)
        return OpenStream(run_id, kind, after or 0, stream_id or None, snapshot, lease)

    def close(self, stream: OpenStream) -> None:
        """Gives back the stream's slot (once per open)."""
        self.limiter.release(stream.lease)

    def frames(self, stream: OpenStream) -> AsyncIterator[str]:
        """The SSE text of the stream, frame by frame, until `end` or the connection bound."""
        return _StreamLoop(self.reads, self.clock, self.config, stream).run()


class _StreamLoop:
    """One connection's polling loop (see the module docstring)."""

    def __init__(self, reads: StreamReads, clock: Clock, config: StreamConfig, stream: OpenStream) -> None:
        self.reads = reads
        self.clock = clock
        self.config = config
        self.stream = stream
        self.cursor = SequenceCursor(stream.after, config.gap_wait_secs)
        self.status = StatusTracker(stream.snapshot.status, stream.snapshot.event_sequence)
        self.status_read_at = -math.inf

    async def run(self) -> AsyncIterator[str]:
        config = self.config
        loop = asyncio.get_running_loop()
        closes_at = loop.time() + config.max_connection_secs
        yield KEEPALIVE  # the first bytes go out at once
        wrote_at = loop.time()
        interval = config.poll_min_secs
        while loop.time() < closes_at:
            frames, caught_up = await self._poll(loop.time())
            for text in frames:
                yield text
            if frames:
                wrote_at = loop.time()
            if caught_up and await self._ended(loop.time()):
                yield end_frame(self.status.status)
                return
            if not caught_up and not self.cursor.waiting:
                continue  # a full page: read on at once
            if frames or self.cursor.waiting:
                interval = config.poll_min_secs
            else:
                interval = min(interval * IDLE_BACKOFF, config.poll_max_secs)
            now = loop.time()
            if now - wrote_at >= config.keepalive_secs:
                yield KEEPALIVE
                wrote_at = now
            pause = min(interval, closes_at - now, wrote_at + config.keepalive_secs - now)
            await asyncio.sleep(max(0.0, pause))
        yield RECONNECT

    async def _poll(self, now: float) -> tuple[list[str], bool]:
        """The frames that may go out now, and whether the stream has caught up with the store."""
        if self.stream.kind == StreamKind.EVENTS:
            events = await _in_thread(
                self.reads.events_after, self.stream.run_id, self.cursor.last, self.config.read_batch
            )
            taken_events = self.cursor.take(events.items, now)
            for event in taken_events:
                self.status.observe(event)
            caught_up = len(taken_events) == len(events.items) and not events.more
            return [event_frame(event) for event in taken_events], caught_up
        now_epoch = int(self.clock.now().timestamp())
        chunks = await _in_thread(
            self.reads.chunks_after, self.stream.run_id, self.cursor.last, self.config.read_batch, now_epoch
        )
        taken = self.cursor.take(chunks.items, now)
        caught_up = len(taken) == len(chunks.items) and not chunks.more
        if caught_up:
            await self._follow_status(now)
        wanted = self.stream.stream_id
        sent = [stored.chunk for stored in taken if stored.chunk is not None]
        return [chunk_frame(chunk) for chunk in sent if wanted in (None, chunk.stream_id)], caught_up

    async def _follow_status(self, now: float) -> None:
        """A chunk stream learns of status changes from the event log, every status_check_secs."""
        if now - self.status_read_at < self.config.status_check_secs:
            return
        self.status_read_at = now
        more = True
        while more:
            page = await _in_thread(
                self.reads.events_after, self.stream.run_id, self.status.seen, self.config.read_batch
            )
            for event in page.items:
                self.status.observe(event)
            more = page.more and bool(page.items)

    async def _ended(self, now: float) -> bool:
        """Whether the run is terminal and every number taken before has gone out."""
        if not self.status.terminal:
            return False
        counters = await _in_thread(self.reads.counters, self.stream.run_id)
        if self.stream.kind == StreamKind.EVENTS:
            return self.cursor.settle(counters.event_sequence, now)
        return self.cursor.settle(counters.chunk_sequence, now)


async def _in_thread[**P, R](function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Runs a blocking store call in a worker thread."""
    return await anyio.to_thread.run_sync(partial(function, *args, **kwargs))
