"""Helpers of the stream tests (spec 7): an SSE reader over httpx, and writers that put events and
chunks in the store exactly as the in-run plane does (an atomic add of the LIVE counter, then the
item), so the streams meet the same gaps as in production."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from straitruns.adapters.store import keys
from straitruns.adapters.store.telemetry import TelemetryStore
from straitruns.domain.ids import IdKind
from straitruns.domain.jsonvalue import dump_json
from straitruns.domain.models import Event, EventLevel, StreamChunk
from straitruns.domain.statuses import RunStatus
from straitruns.wiring import Services

CHUNK_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class Frame:
    """One SSE frame as a client sees it (`comment` for `: ...` lines alone)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: str | None = None
    comment: str | None = None

    @property
    def sequence(self) -> int:
        assert self.id is not None, f"frame without id: {self}"
        return int(self.id)

    def json(self) -> Any:
        import json

        assert self.data is not None, f"frame without data: {self}"
        return json.loads(self.data)


class SseReader:
    """Frames of one streamed response, read as they arrive (a comment line is a frame of its own)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def __iter__(self) -> Iterator[Frame]:
        fields: dict[str, str] = {}
        for line in self._lines:
            if line.startswith(":"):
                yield Frame(comment=line[1:].strip())
                continue
            if line == "":
                if fields:
                    yield Frame(**fields)
                fields = {}
                continue
            name, _, value = line.partition(":")
            assert name in ("id", "event", "data", "retry"), f"unexpected SSE line {line!r}"
            assert name not in fields, f"field {name} twice in one frame (data must be one line)"
            fields[name] = value.removeprefix(" ")
        if fields:
            yield Frame(**fields)


def stream_url(run_id: str, chunks: bool = False) -> str:
    return f"/v1/runs/{run_id}/stream" + ("/chunks" if chunks else "")


def read_all(http: httpx.Client, url: str, **request: Any) -> tuple[httpx.Response, list[Frame]]:
    """Every frame of one connection, until the server closes it."""
    with http.stream("GET", url, **request) as response:
        frames = list(SseReader(response)) if response.status_code == 200 else []
        response.read()
    return response, frames


def sdk_event(services: Services, run_id: str, message: str, event_type: str = "log", **data: Any) -> Event:
    """An SDK event, numbered and written as the in-run plane writes it (EngineStore.append_event)."""

    def make(sequence: int) -> Event:
        return Event(
            id=services.ids.new(IdKind.EVENT),
            run_id=run_id,
            sequence=sequence,
            type=event_type,
            level=EventLevel.INFO,
            message=message,
            data=dump_json(data) if data else None,
            created_at=services.clock.now(),
        )

    return services.engine.append_event(run_id, make)


def sdk_chunk(
    services: Services, run_id: str, chunk: str, stream_id: str = "default", done: bool = False
) -> StreamChunk:
    """A stream chunk, stored by the in-run plane's writer (TelemetryStore.append_chunk)."""

    def make(sequence: int) -> StreamChunk:
        return StreamChunk(
            run_id=run_id,
            stream_id=stream_id,
            sequence=sequence,
            chunk=chunk,
            done=done,
            created_at=services.clock.now(),
        )

    return TelemetryStore(services.table).append_chunk(run_id, make, services.clock.now() + CHUNK_LIFETIME)


def take_number(services: Services, run_id: str, counter: str = "seq") -> int:
    """Takes the next event (or chunk: `chunk_seq`) number without writing it: a writer that is
    slow, or that failed. Event numbers are the run's state item's, chunk numbers its LIVE item's."""
    sort_key = keys.STATE_SK if counter == "seq" else keys.LIVE_SK
    response = services.table.client.update_item(
        TableName=services.table.name,
        Key={"pk": {"S": keys.run_pk(run_id)}, "sk": {"S": sort_key}},
        UpdateExpression="ADD #c :one",
        ExpressionAttributeNames={"#c": counter},
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    return int(response["Attributes"][counter]["N"])


def write_taken_event(services: Services, run_id: str, sequence: int, message: str) -> None:
    """Writes the event of a number taken earlier with take_number (the slow writer finishing)."""
    from straitruns.adapters.store.runs import event_item

    event = Event(
        id=services.ids.new(IdKind.EVENT),
        run_id=run_id,
        sequence=sequence,
        type="log",
        level=EventLevel.INFO,
        message=message,
        created_at=services.clock.now(),
    )
    services.table.batch_write([event_item(event)])


def finish(services: Services, run_id: str, status: RunStatus = RunStatus.CANCELED) -> None:
    """Moves the run to a terminal status through the state machine (its status_change event)."""
    run = services.runs.get(run_id)
    assert run is not None
    services.state.change(run, status, "test finished the run")


def in_background(target: Any, *args: Any, **kwargs: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def wait_until(condition: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval)
