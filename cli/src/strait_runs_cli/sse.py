"""Server-Sent Events: a parser of the wire format, and a follower that keeps a stream going
across dropped connections by reconnecting with `Last-Event-ID` (spec 7), so every event is seen
exactly once and in order.

The follower ends when the server sends `event: end` (yielded, then the iteration stops) or
answers a reconnect with 204 (the run is over and nothing is left to send: `ended_by_204`). It
gives up with a NetworkError after `MAX_CONSECUTIVE_FAILURES` failed connections in a row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from strait_runs_cli import json_text
from strait_runs_cli.api import ApiClient, Params
from strait_runs_cli.errors import ApiError, NetworkError, UnexpectedResponse

MAX_CONSECUTIVE_FAILURES = 8
DEFAULT_RETRY_SECS = 1.0
MAX_RETRY_SECS = 5.0
MAX_RETRY_AFTER_SECS = 30.0


@dataclass(frozen=True)
class Frame:
    """One dispatched event: its `event` name (default `message`), `data` and `id` (None when the
    frame had no `id:` line, as the `end` frame)."""

    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        """The data as JSON (UnexpectedResponse when it is not)."""
        try:
            return json_text.parse(self.data)
        except ValueError:
            raise UnexpectedResponse(200, f"a stream frame's data is not JSON: {self.data[:200]}") from None


class SseParser:
    """Feeds on lines (without their line ending) and returns a Frame at each blank line that
    ends an event with data. Remembers the last `retry:` value in `retry_secs`."""

    def __init__(self) -> None:
        self.retry_secs: float | None = None
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> Frame | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_secs = int(value) / 1000
        return None

    def _dispatch(self) -> Frame | None:
        frame = Frame(self._event or "message", "\n".join(self._data), self._id) if self._data else None
        self._event, self._data, self._id = "", [], None
        return frame


def parse_frames(lines: Iterable[str]) -> Iterator[Frame]:
    """The frames of a finished stream's lines (for tests and simple readers)."""
    parser = SseParser()
    for line in lines:
        if (frame := parser.feed(line)) is not None:
            yield frame


Reconnecting = Callable[[str, str | None, float], None]


class StreamFollower:
    """The frames of one SSE route, across reconnects. `on_reconnect(reason, last_event_id,
    delay_secs)` is told each time the connection is lost and about to be opened again."""

    def __init__(
        self,
        client: ApiClient,
        path: str,
        params: Params | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_reconnect: Reconnecting | None = None,
        last_event_id: str | None = None,
    ) -> None:
        self._client = client
        self._path = path
        self._params = params
        self._sleep = sleep
        self._on_reconnect = on_reconnect or (lambda _reason, _last_id, _delay: None)
        self.last_event_id = last_event_id
        self.ended_by_204 = False
        self.connections = 0
        self._retry_secs = DEFAULT_RETRY_SECS

    def frames(self) -> Iterator[Frame]:
        failures = 0
        while True:
            got_frames, reason, wait = False, "the server closed the stream", None
            try:
                for frame in self._one_connection():
                    got_frames = True
                    yield frame
                    if frame.event == "end":
                        return
                if self.ended_by_204:
                    return
            except _Retryable as retryable:
                reason, wait = retryable.reason, retryable.wait_secs
            except httpx.TransportError as error:
                reason = _describe(error)
            failures = 0 if got_frames else failures + 1
            if failures >= MAX_CONSECUTIVE_FAILURES:
                raise NetworkError(
                    f"lost the stream at {self._client.settings.api_url}{self._path}: {reason} "
                    f"({failures} attempts in a row failed)"
                )
            delay = (
                wait
                if wait is not None
                else min(self._retry_secs * 2 ** max(failures - 1, 0), MAX_RETRY_SECS)
            )
            self._on_reconnect(reason, self.last_event_id, delay)
            self._sleep(delay)

    def _one_connection(self) -> Iterator[Frame]:
        with self._client.open_stream(self._path, self._params, self.last_event_id) as response:
            self.connections += 1
            if response.status_code == 204:
                self.ended_by_204 = True
                return
            if response.status_code >= 500 or response.status_code == 429:
                response.read()
                raise _Retryable(
                    f"the API answered {response.status_code}",
                    _retry_after(response.headers.get("retry-after")),
                )
            if response.status_code != 200:
                response.read()
                raise ApiError.from_response(response)
            parser = SseParser()
            for line in response.iter_lines():
                frame = parser.feed(line)
                if parser.retry_secs is not None:
                    self._retry_secs = parser.retry_secs
                if frame is None:
                    continue
                if frame.id is not None:
                    self.last_event_id = frame.id
                yield frame


class _Retryable(Exception):
    def __init__(self, reason: str, wait_secs: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_secs = wait_secs


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return min(float(value), MAX_RETRY_AFTER_SECS)


def _describe(error: httpx.TransportError) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
