"""The health check (`GET /healthz`): can this function read its table and reach its run queue?"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from straitruns.adapters.run_queue import RunQueue
from straitruns.adapters.store.health import probe_table
from straitruns.adapters.store.table import DynamoTable

logger = logging.getLogger("straitruns.health")

OK = "ok"


@dataclass(frozen=True)
class HealthReport:
    """Each check's outcome: "ok", or "unavailable (<kind of error>)" (never an internal message)."""

    checks: dict[str, str]

    @property
    def healthy(self) -> bool:
        return all(outcome == OK for outcome in self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, outcome in self.checks.items() if outcome != OK]


class HealthCheck:
    def __init__(self, probes: Mapping[str, Callable[[], None]]) -> None:
        self.probes = probes

    @classmethod
    def of(cls, table: DynamoTable, run_queue: RunQueue) -> "HealthCheck":
        return cls({"table": lambda: probe_table(table), "run_queue": run_queue.probe})

    def run(self) -> HealthReport:
        """Runs every probe; a probe that raises anything is a failed check (logged)."""
        checks: dict[str, str] = {}
        for name, probe in self.probes.items():
            try:
                probe()
            except Exception as exc:  # a health check reports every failure, whatever it is
                logger.warning("health check failed", extra={"check": name, "error": repr(exc)})
                checks[name] = f"unavailable ({type(exc).__name__})"
            else:
                checks[name] = OK
        return HealthReport(checks)
