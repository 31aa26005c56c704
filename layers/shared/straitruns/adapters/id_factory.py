"""Id factory: `<prefix>_<ULID>` with the ULID's time taken from the clock."""

from ulid import ULID

from straitruns.domain.clock import Clock
from straitruns.domain.ids import IdKind


class UlidFactory:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def new(self, kind: IdKind) -> str:
        return f"{kind.value}_{ULID.from_datetime(self.clock.now())}"
