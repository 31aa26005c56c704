"""The in-run plane's rules (spec 6, 2.3, 4.3): which calls each status accepts, stored levels and
reserved types, the last-checkpoint headers, and outputs checked against their JSON Schema."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from straitruns.domain.errors import PayloadTooLarge, ValidationFailed
from straitruns.domain.in_run import (
    PAUSED_WRITES,
    READS,
    SdkCall,
    accepts,
    check_event_type,
    last_checkpoint_headers,
    require_within,
    stored_level,
)
from straitruns.domain.models import Checkpoint, EventLevel
from straitruns.domain.output_schema import check_output
from straitruns.domain.statuses import NON_TERMINAL, RunStatus

PAUSED_REFUSED = {SdkCall.COMPLETE, SdkCall.FAIL, SdkCall.CONTINUE, SdkCall.SPAWN, SdkCall.ANNOTATE}


@pytest.mark.parametrize("status", [RunStatus.EXECUTING, RunStatus.WAITING])
@pytest.mark.parametrize("call", list(SdkCall))
def test_executing_and_waiting_runs_accept_every_call(status: RunStatus, call: SdkCall) -> None:
    assert accepts(status, call)


def test_paused_run_refuses_exactly_complete_fail_continue_spawn_and_annotate() -> None:
    refused = {call for call in SdkCall if not accepts(RunStatus.PAUSED, call)}

    assert refused == PAUSED_REFUSED
    assert set(SdkCall) - PAUSED_REFUSED == READS | PAUSED_WRITES


@pytest.mark.parametrize(
    "status", sorted(NON_TERMINAL - {RunStatus.EXECUTING, RunStatus.WAITING, RunStatus.PAUSED})
)
def test_other_non_terminal_runs_accept_reads_only(status: RunStatus) -> None:
    accepted = {call for call in SdkCall if accepts(status, call)}

    assert accepted == {SdkCall.PAYLOAD, SdkCall.LATEST_CHECKPOINT, SdkCall.STATE_READ}


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("debug", EventLevel.DEBUG),
        ("info", EventLevel.INFO),
        ("warn", EventLevel.WARN),
        ("warning", EventLevel.WARN),
        ("error", EventLevel.ERROR),
        ("critical", EventLevel.ERROR),
        ("CRITICAL", EventLevel.ERROR),
    ],
)
def test_sdk_levels_are_stored_as_the_four_levels(sent: str, stored: EventLevel) -> None:
    assert stored_level(sent) == stored


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="unknown level 'loud'"):
        stored_level("loud")


@pytest.mark.parametrize("kind", ["status_change", "attempt.started", "attempt.finished", "late_outcome"])
def test_engine_event_types_are_reserved(kind: str) -> None:
    with pytest.raises(ValidationFailed, match="reserved"):
        check_event_type(kind)


def test_size_over_the_limit_names_the_field() -> None:
    require_within("state", 10, 10)

    with pytest.raises(PayloadTooLarge) as raised:
        require_within("state", 11, 10)

    assert raised.value.details == [{"field": "state", "limit": 10}]


def _checkpoint(state: str, sequence: int = 3) -> Checkpoint:
    return Checkpoint(
        id="ckpt_1",
        run_id="run_1",
        sequence=sequence,
        state=state,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_small_checkpoint_is_sent_as_one_ascii_line_with_its_sequence() -> None:
    headers = last_checkpoint_headers(_checkpoint('{"note":"line\\nbreak","name":"Zoë","n":1.50}'))

    assert headers["X-Last-Checkpoint-Sequence"] == "3"
    assert headers["X-Last-Checkpoint"].isascii()
    assert "\n" not in headers["X-Last-Checkpoint"]
    assert json.loads(headers["X-Last-Checkpoint"], parse_float=Decimal) == {
        "note": "line\nbreak",
        "name": "Zoë",
        "n": Decimal("1.50"),
    }


def test_checkpoint_over_4_kib_is_sent_by_sequence_only() -> None:
    headers = last_checkpoint_headers(_checkpoint(json.dumps({"blob": "x" * 4096}), sequence=9))

    assert headers == {"X-Last-Checkpoint-Sequence": "9"}


def test_no_checkpoint_sends_no_header() -> None:
    assert last_checkpoint_headers(None) == {}


SCHEMA = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"type": "integer"}}, "total": {"type": "number"}},
    "required": ["total"],
}


def test_output_matching_its_schema_passes() -> None:
    check_output(SCHEMA, {"items": [1, 2], "total": Decimal("2.5")})


@pytest.mark.parametrize(
    ("value", "path"),
    [({"items": [1, "two"], "total": 3}, "$.items[1]"), ({"items": []}, "$"), ({"total": "3"}, "$.total")],
)
def test_output_mismatch_names_the_failing_path(value: object, path: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        check_output(SCHEMA, value)

    assert raised.value.details is not None
    assert raised.value.details[0]["path"] == path
    assert path in raised.value.message


@pytest.mark.parametrize(
    "schema",
    [{"type": 5}, ["not", "a", "schema"], {"$ref": "https://example.com/schema.json"}, {"$ref": "#"}],
)
def test_schema_that_cannot_be_used_is_refused(schema: object) -> None:
    with pytest.raises(ValidationFailed) as raised:
        check_output(schema, 1)

    assert raised.value.details is not None
    assert raised.value.details[0]["field"] == "schema"
