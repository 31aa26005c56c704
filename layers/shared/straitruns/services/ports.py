"""The ports the engine's use cases talk through: small protocols that the store and queue adapters
implement (adapters/store/*, adapters/run_queue.py) and that tests may replace with in-memory or
error-injecting fakes. A use case names the narrowest port it needs."""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from straitruns.adapters.run_queue import RunMessage
from straitruns.domain.models import Event, Job, Run
from straitruns.domain.transitions import Written


class RunReads(Protocol):
    def get(self, run_id: str) -> Run | None: ...

    def get_many(self, run_ids: Sequence[str]) -> dict[str, Run]: ...


class RunWrites(Protocol):
    def transition(
        self,
        old: Run,
        new: Run,
        make_events: Callable[[int], list[Event]],
        extra_actions: Sequence[dict[str, Any]] = (),
        fx: Mapping[str, Any] | None = None,
    ) -> Written:
        """Raises TransitionRefused when the run moved on."""
        ...


class RunSaves(Protocol):
    def save(self, old: Run, new: Run, fx: Mapping[str, Any] | None = None) -> bool:
        """Writes `new` over `old` without a status change; False when the run moved on."""
        ...


class SlotReleases(Protocol):
    def slot_release_actions(self, run: Run) -> list[dict[str, Any]]: ...


class EventAppends(Protocol):
    def append_event(self, run_id: str, make_event: Callable[[int], Event]) -> Event: ...


class Timers(Protocol):
    def set_wake(self, run: Run, wake_at: datetime | None) -> bool: ...

    def due_run_ids(self, shard: int, now: datetime, limit: int) -> list[str]: ...


class JobReads(Protocol):
    def get(self, job_id: str) -> Job | None: ...


class RunMessages(Protocol):
    def send(self, messages: list[RunMessage]) -> list[str]:
        """Returns the run ids whose message could not be sent."""
        ...
