"""How much work one call may still do (spec 1.5: 20 s per request; bulk calls stop and report)."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Timer = Callable[[], float]


@dataclass
class WorkBudget:
    """A count of runs the call may still examine and a deadline on a monotonic timer. Work
    checks `exhausted()` before each step and `spend`s what it used; what is left when the budget
    runs out is reported (bulk calls) or handed to the scheduler (descendants of a cancelled run)."""

    runs_left: int
    deadline: float
    timer: Timer = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def start(cls, runs: int, seconds: float, timer: Timer = time.monotonic) -> "WorkBudget":
        return cls(runs, timer() + seconds, timer)

    def exhausted(self) -> bool:
        return self.runs_left <= 0 or self.timer() >= self.deadline

    def spend(self, runs: int = 1) -> None:
        with self._lock:  # calls may work in several threads on one budget
            self.runs_left -= runs
