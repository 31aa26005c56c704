"""Lambda's event filtering as the local stream event source plays it: which records a FilterCriteria
lets through to the function (no network)."""

import json
from typing import Any

import pytest

from straitruns.local.event_filters import FilterPatternError, parse_pattern, passes
from straitruns.local.template import dynamodb_stream_event_source, load_template


def record(new_image: dict[str, Any] | None = None, event_name: str = "MODIFY") -> dict[str, Any]:
    """A Lambda-shaped DynamoDB Streams record; no NewImage when `new_image` is None (a removal)."""
    dynamodb: dict[str, Any] = {"Keys": {"pk": {"S": "RUN#1"}, "sk": {"S": "RUN"}}, "SequenceNumber": "1"}
    if new_image is not None:
        dynamodb["NewImage"] = new_image
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb}


def matches(pattern: dict[str, Any], candidate: dict[str, Any]) -> bool:
    return parse_pattern(json.dumps(pattern)).matches(candidate)


def image_pattern(attribute: str, kind: str, *matchers: Any) -> dict[str, Any]:
    return {"dynamodb": {"NewImage": {attribute: {kind: list(matchers)}}}}


def test_the_templates_pattern_lets_through_only_items_with_an_fx_string() -> None:
    [pattern] = dynamodb_stream_event_source(load_template(), "EffectsFunction").filter_patterns

    assert pattern.matches(record({"fx": {"S": "release"}, "status": {"S": "completed"}}))
    assert not pattern.matches(record({"status": {"S": "completed"}}))
    assert not pattern.matches(record({"fx": {"N": "1"}}))
    assert not pattern.matches(record(None, event_name="REMOVE"))


def test_an_exact_value_matches_only_that_value() -> None:
    pattern = image_pattern("status", "S", "completed", "failed")

    assert matches(pattern, record({"status": {"S": "failed"}}))
    assert not matches(pattern, record({"status": {"S": "queued"}}))
    assert not matches(pattern, record({"status": {"S": "Completed"}}))


def test_strings_numbers_and_booleans_are_told_apart() -> None:
    assert not matches({"eventName": ["5"]}, {"eventName": 5})
    assert matches({"count": [5]}, {"count": 5.0})
    assert not matches({"flag": [1]}, {"flag": True})
    assert matches({"flag": [True]}, {"flag": True})
    assert matches({"gone": [None]}, {"gone": None})
    assert matches({"empty": [""]}, {"empty": ""})


def test_exists_tells_a_present_field_from_an_absent_one() -> None:
    present = image_pattern("fx", "S", {"exists": True})
    absent = image_pattern("fx", "S", {"exists": False})

    assert matches(present, record({"fx": {"S": "x"}}))
    assert not matches(present, record({"other": {"S": "x"}}))
    assert matches(absent, record({"other": {"S": "x"}}))
    # A removal has no NewImage at all: everything below it is absent.
    assert matches(absent, record(None, event_name="REMOVE"))
    assert not matches(present, record(None, event_name="REMOVE"))


def test_exists_applies_to_leaves_not_to_objects() -> None:
    assert not matches({"dynamodb": [{"exists": True}]}, record({"fx": {"S": "x"}}))


def test_prefix_suffix_and_equals_ignore_case_match_strings() -> None:
    candidate = record({"pk": {"S": "RUN#01J"}})

    assert matches(image_pattern("pk", "S", {"prefix": "RUN#"}), candidate)
    assert not matches(image_pattern("pk", "S", {"prefix": "JOB#"}), candidate)
    assert matches(image_pattern("pk", "S", {"suffix": "01J"}), candidate)
    assert matches(image_pattern("pk", "S", {"equals-ignore-case": "run#01j"}), candidate)
    assert not matches(image_pattern("pk", "N", {"prefix": "RUN#"}), candidate)


def test_anything_but_matches_a_present_field_holding_none_of_the_values() -> None:
    pattern = image_pattern("status", "S", {"anything-but": ["queued", "executing"]})

    assert matches(pattern, record({"status": {"S": "completed"}}))
    assert not matches(pattern, record({"status": {"S": "queued"}}))
    assert not matches(pattern, record({"other": {"S": "completed"}}))
    assert matches(
        image_pattern("status", "S", {"anything-but": "queued"}), record({"status": {"S": "failed"}})
    )
    assert not matches(
        image_pattern("pk", "S", {"anything-but": {"prefix": "RUN#"}}), record({"pk": {"S": "RUN#1"}})
    )
    assert matches(
        image_pattern("pk", "S", {"anything-but": {"suffix": "#X"}}), record({"pk": {"S": "RUN#1"}})
    )


@pytest.mark.parametrize(
    ("bounds", "value", "expected"),
    [
        ([">", 0, "<=", 5], "5", True),
        ([">", 0, "<=", 5], "0", False),
        ([">=", 0, "<", 5], "0", True),
        ([">=", 0, "<", 5], "5", False),
        (["=", 100], "100.0", True),
        (["<", 10], "-3.5", True),
        ([">", 1], "not a number", False),
    ],
)
def test_numeric_ranges_compare_dynamodb_numbers(bounds: list[Any], value: str, expected: bool) -> None:
    assert (
        matches(image_pattern("attempt", "N", {"numeric": bounds}), record({"attempt": {"N": value}}))
        is expected
    )


def test_numeric_compares_json_numbers_but_not_booleans() -> None:
    assert matches({"size": [{"numeric": [">", 2]}]}, {"size": 3})
    assert not matches({"size": [{"numeric": [">", 0]}]}, {"size": True})


def test_every_key_of_a_pattern_must_match() -> None:
    pattern = {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"fx": {"S": [{"exists": True}]}}}}

    assert matches(pattern, record({"fx": {"S": "x"}}, event_name="INSERT"))
    assert not matches(pattern, record({"fx": {"S": "x"}}, event_name="REMOVE"))
    assert not matches(pattern, record({}, event_name="INSERT"))


def test_a_list_field_matches_when_any_element_does() -> None:
    pattern = image_pattern("tags", "SS", "urgent")

    assert matches(pattern, record({"tags": {"SS": ["nightly", "urgent"]}}))
    assert not matches(pattern, record({"tags": {"SS": ["nightly"]}}))


def test_a_record_passes_the_criteria_when_any_filter_matches_or_there_are_none() -> None:
    filters = [parse_pattern('{"eventName": ["INSERT"]}'), parse_pattern('{"eventName": ["REMOVE"]}')]

    assert passes(filters, record({}, event_name="REMOVE"))
    assert not passes(filters, record({}, event_name="MODIFY"))
    assert passes([], record({}, event_name="MODIFY"))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        "{}",
        '{"eventName": "INSERT"}',
        '{"eventName": []}',
        '{"eventName": [{"wildcard": "IN*"}]}',
        '{"eventName": [{"exists": "yes"}]}',
        '{"eventName": [{"prefix": 5}]}',
        '{"eventName": [{"anything-but": []}]}',
        '{"eventName": [{"anything-but": {"wildcard": "x"}}]}',
        '{"n": [{"numeric": [">", "5"]}]}',
        '{"n": [{"numeric": ["<", 5, ">", 1]}]}',
        '{"n": [{"numeric": ["~", 5]}]}',
        '{"n": [{"numeric": [">", 5, "<"]}]}',
        '{"eventName": [{"prefix": "a", "suffix": "b"}]}',
    ],
)
def test_a_pattern_lambda_would_refuse_is_refused(text: str) -> None:
    with pytest.raises(FilterPatternError):
        parse_pattern(text)
