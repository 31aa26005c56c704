"""Replaying effects that failed past their retries (docs/engine.md#effects-that-keep-failing).

The effects function's on-failure destination receives, for a batch of stream records it gave up
on, a message that names only the shard and the range of sequence numbers. The replay reads those
records again from the stream and, for each state item they name, re-derives the effects from the
run as it is stored now (its status, where it waits) together with what the record asked for (the
slots it gave back): every effect is a conditional re-evaluation, so one that did happen meanwhile
is not done twice. Stream records are kept 24 hours: a range older than that is reported as lost,
never silently skipped.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from straitruns.domain.errors import RecordsExpired
from straitruns.domain.models import ChangeRecord, Run
from straitruns.services.effects import EffectsService
from straitruns.services.ports import RunReads
from straitruns.services.run_state import FX_DRAIN, effects_of


class StreamRecords(Protocol):
    def records(self, stream_arn: str, shard_id: str, first: str, last: str) -> Iterator[dict[str, Any]]:
        """The records of the shard numbered `first`..`last`. Raises RecordsExpired."""
        ...


@dataclass
class ReplayReport:
    records: int = 0
    runs: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    lost: str | None = None


@dataclass(frozen=True)
class FailedBatch:
    """What an on-failure message names: a shard and a range of sequence numbers."""

    stream_arn: str
    shard_id: str
    first: str
    last: str

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> "FailedBatch":
        """Raises ValueError when the message is not an on-failure record of a stream batch."""
        info = message.get("DDBStreamBatchInfo")
        if not isinstance(info, Mapping):
            raise ValueError("not an on-failure record of a DynamoDB stream batch (no DDBStreamBatchInfo)")
        try:
            return cls(
                str(info["streamArn"]),
                str(info["shardId"]),
                str(info["startSequenceNumber"]),
                str(info["endSequenceNumber"]),
            )
        except KeyError as exc:
            raise ValueError(f"the on-failure record lacks {exc}") from exc


class EffectsReplay:
    def __init__(self, runs: RunReads, effects: EffectsService, stream: StreamRecords, decode: Any) -> None:
        """`decode` turns a record's NEW_IMAGE into a ChangeRecord (None: no effect asked)."""
        self.runs = runs
        self.effects = effects
        self.stream = stream
        self.decode = decode

    def replay(self, batch: FailedBatch) -> ReplayReport:
        """Carries out the effects of every state-item record of the batch, derived from the run
        as stored now. Raises what an effect raises (run it again: it is idempotent)."""
        report = ReplayReport()
        try:
            records = list(self.stream.records(batch.stream_arn, batch.shard_id, batch.first, batch.last))
        except RecordsExpired as exc:
            report.lost = (
                f"the stream no longer holds records {batch.first}..{batch.last} of shard {batch.shard_id} "
                f"({exc}): look at the runs that changed at that time (docs/engine.md)"
            )
            return report
        for record in records:
            report.records += 1
            image = (record.get("dynamodb") or {}).get("NewImage") or {}
            change = self.decode(image)
            if change is None:
                continue
            current = self.runs.get(change.run_id)
            derived = self._derived(change, current)
            report.runs.append(change.run_id)
            report.done += self.effects.apply(derived)
        return report

    @staticmethod
    def _derived(change: ChangeRecord, current: Run | None) -> ChangeRecord:
        """The change's effects, with those the run's stored state calls for now (a run that
        moved on since the record was written is judged by where it is)."""
        if current is None:
            return change
        now = set(effects_of(None, current).kinds)
        if current.slot_queue:
            now.add(FX_DRAIN)
        return change.model_copy(
            update={
                "effects": change.effects | now,
                "status": current.status,
                "generation": current.generation,
                "slot_queue": current.slot_queue,
            }
        )
