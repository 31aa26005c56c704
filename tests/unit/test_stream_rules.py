"""The rules of the live streams that need no store (spec 7, 2.3): the order of numbers with gaps,
Last-Event-ID parsing, the run's status as its events move it, and the text of each frame."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from straitruns.domain.jsonvalue import dump_json
from straitruns.domain.models import Event, EventLevel, StreamChunk
from straitruns.domain.statuses import RunStatus
from straitruns.services.stream_frames import KEEPALIVE, RECONNECT, chunk_frame, end_frame, event_frame
from straitruns.services.streams import SequenceCursor, StatusTracker, parse_last_event_id

GAP_WAIT = 2.0
AT = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


@dataclass(frozen=True)
class Item:
    sequence: int


def numbers(items: list[Item]) -> list[int]:
    return [item.sequence for item in items]


def event(sequence: int, event_type: str = "log", data: object = None, message: str | None = "hi") -> Event:
    return Event(
        id="evt_01M8HJNDFVVFRZ2J7H4C96CJDZ",
        run_id="run_01M8HJNDFVVFRZ2J7H4C96CJDA",
        sequence=sequence,
        type=event_type,
        level=EventLevel.INFO,
        message=message,
        data=None if data is None else dump_json(data),
        created_at=AT,
    )


def status_change(sequence: int, source: str | None, target: str) -> Event:
    return event(sequence, "status_change", {"from": source, "to": target, "attempt": 1, "reason": "r"})


def data_line(frame: str) -> dict[str, object]:
    [line] = [line for line in frame.split("\n") if line.startswith("data: ")]
    parsed: dict[str, object] = json.loads(line.removeprefix("data: "))
    return parsed


# --- the order of numbers -----------------------------------------------------------------------


def test_contiguous_numbers_go_out_in_order() -> None:
    cursor = SequenceCursor(0, GAP_WAIT)

    assert numbers(cursor.take([Item(1), Item(2), Item(3)], now=0.0)) == [1, 2, 3]
    assert cursor.last == 3


def test_numbers_after_a_gap_wait_for_the_missing_one() -> None:
    cursor = SequenceCursor(3, GAP_WAIT)

    assert numbers(cursor.take([Item(5), Item(6)], now=10.0)) == []
    assert cursor.waiting
    assert numbers(cursor.take([Item(4), Item(5), Item(6)], now=10.5)) == [4, 5, 6]
    assert not cursor.waiting


def test_a_missing_number_is_passed_over_after_the_wait() -> None:
    cursor = SequenceCursor(3, GAP_WAIT)
    cursor.take([Item(5)], now=10.0)

    assert numbers(cursor.take([Item(5)], now=10.0 + GAP_WAIT - 0.01)) == []
    assert numbers(cursor.take([Item(5), Item(7)], now=10.0 + GAP_WAIT)) == [5]
    assert cursor.waiting, "a second gap is waited for on its own"


def test_numbers_already_sent_are_never_sent_again() -> None:
    cursor = SequenceCursor(5, GAP_WAIT)

    assert numbers(cursor.take([Item(4), Item(5), Item(6)], now=0.0)) == [6]


def test_settle_is_done_when_the_last_taken_number_went_out() -> None:
    cursor = SequenceCursor(7, GAP_WAIT)

    assert cursor.settle(7, now=0.0)
    assert cursor.settle(6, now=0.0)


def test_settle_waits_for_a_taken_number_then_passes_over_it() -> None:
    cursor = SequenceCursor(7, GAP_WAIT)

    assert not cursor.settle(8, now=0.0)
    assert not cursor.settle(8, now=GAP_WAIT - 0.01)
    assert cursor.settle(8, now=GAP_WAIT)
    assert cursor.last == 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("0", 0),
        ("42", 42),
        (" 7 ", 7),
        ("", None),
        ("-1", None),
        ("abc", None),
        ("4.5", None),
        ("\u0661", None),  # an Arabic-Indic digit
    ],
)
def test_last_event_id_is_a_non_negative_integer_or_ignored(text: str | None, expected: int | None) -> None:
    assert parse_last_event_id(text) == expected


# --- the run's status ---------------------------------------------------------------------------


def test_status_follows_status_changes_after_the_snapshot() -> None:
    tracker = StatusTracker(RunStatus.EXECUTING, seen=4)

    tracker.observe(status_change(3, "queued", "dequeued"))  # history: before the snapshot
    assert tracker.status == RunStatus.EXECUTING
    tracker.observe(event(5))
    tracker.observe(status_change(6, "executing", "completed"))

    assert (tracker.status, tracker.seen, tracker.terminal) == (RunStatus.COMPLETED, 6, True)


# --- frames -------------------------------------------------------------------------------------


def test_status_change_frame_has_id_event_and_the_spec_data() -> None:
    frame = event_frame(status_change(3, "queued", "dequeued"))

    assert frame.startswith("id: 3\nevent: status_change\ndata: ")
    assert frame.endswith("\n\n")
    assert data_line(frame) == {
        "type": "status_change",
        "run_id": "run_01M8HJNDFVVFRZ2J7H4C96CJDA",
        "from": "queued",
        "to": "dequeued",
        "attempt": 1,
        "timestamp": "2026-11-28T12:00:00.123456Z",
    }


def test_sdk_event_frame_splices_the_stored_data() -> None:
    frame = event_frame(event(4, "log", {"big": 12345678901234567890123, "x": 1.10}, message="two\nlines"))

    assert frame.startswith("id: 4\nevent: event\ndata: ")
    assert frame.count("\n") == 4, "data is one line"
    assert '"big":12345678901234567890123' in frame
    assert data_line(frame) | {"data": None} == {
        "type": "event",
        "event_type": "log",
        "run_id": "run_01M8HJNDFVVFRZ2J7H4C96CJDA",
        "level": "info",
        "message": "two\nlines",
        "data": None,
        "timestamp": "2026-11-28T12:00:00.123456Z",
    }


def test_progress_event_frame_is_named_progress() -> None:
    frame = event_frame(event(5, "progress", {"percent": 50, "step": "half", "eta_seconds": None}))

    assert frame.startswith("id: 5\nevent: progress\n")
    assert data_line(frame)["event_type"] == "progress"
    assert data_line(frame)["data"] == {"percent": 50, "step": "half", "eta_seconds": None}


def test_stored_json_with_line_breaks_still_makes_one_data_line() -> None:
    frame = event_frame(event(6, "log").model_copy(update={"data": '{\n"a": "b\\nc"\r\n}'}))

    assert frame.count("\n") == 4
    assert data_line(frame)["data"] == {"a": "b\nc"}


def test_chunk_frame() -> None:
    chunk = StreamChunk(
        run_id="run_x", stream_id="answer", sequence=9, chunk="Hel\u2028lo\n", done=True, created_at=AT
    )

    frame = chunk_frame(chunk)

    assert frame.startswith("id: 9\nevent: chunk\ndata: ")
    assert frame.count("\n") == 4
    assert data_line(frame) == {
        "type": "stream_chunk",
        "stream_id": "answer",
        "chunk": "Hel\u2028lo\n",
        "done": True,
        "sequence": 9,
        "timestamp": "2026-11-28T12:00:00.123456Z",
    }


def test_end_frame_has_no_id() -> None:
    assert end_frame(RunStatus.COMPLETED) == 'event: end\ndata: {"type":"end","status":"completed"}\n\n'


def test_keepalive_and_retry_lines() -> None:
    assert (KEEPALIVE, RECONNECT) == (": keepalive\n\n", "retry: 1000\n\n")
