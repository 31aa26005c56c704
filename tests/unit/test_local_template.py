"""template.yaml is read as the single source of truth for the table, its indexes and the queues."""

import json
from pathlib import Path
from typing import Any

import pytest

from straitruns.local.template import (
    SQS_DEFAULT_VISIBILITY_TIMEOUT,
    STREAM_DEFAULT_BATCH_SIZE,
    STREAM_INFINITE_RETRIES,
    AttributeDefinition,
    GlobalSecondaryIndex,
    KeyElement,
    Projection,
    TemplateError,
    dynamodb_stream_event_source,
    load_template,
    parse_template,
    queue_specs,
    table_spec,
)

SMALL_TEMPLATE = """
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: gpk, AttributeType: S}
        - {AttributeName: score, AttributeType: N}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
      GlobalSecondaryIndexes:
        - IndexName: by_group
          KeySchema:
            - {AttributeName: gpk, KeyType: HASH}
            - {AttributeName: score, KeyType: RANGE}
          Projection: {ProjectionType: KEYS_ONLY}
        - IndexName: by_group_with_status
          KeySchema:
            - {AttributeName: gpk, KeyType: HASH}
          Projection:
            ProjectionType: INCLUDE
            NonKeyAttributes: [status, owner]
      TimeToLiveSpecification: {AttributeName: gone_at, Enabled: true}
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: "120"
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Parked.Arn
        maxReceiveCount: 3
  Parked:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 86400
"""


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_short_form_intrinsics_parse_as_their_long_form() -> None:
    parsed = parse_template(
        """
Resources:
  Thing:
    Type: Custom::Thing
    Properties:
      Ref: !Ref Other
      Attribute: !GetAtt Other.Arn
      AttributeList: !GetAtt [Other, Arn]
      Sub: !Sub "${AWS::Region}-x"
      Pick: !Select [1, !Split ["/", !Ref Name]]
      Choice: !If [IsProd, !Ref A, !Ref AWS::NoValue]
"""
    )

    assert parsed["Resources"]["Thing"]["Properties"] == {
        "Ref": {"Ref": "Other"},
        "Attribute": {"Fn::GetAtt": ["Other", "Arn"]},
        "AttributeList": {"Fn::GetAtt": ["Other", "Arn"]},
        "Sub": {"Fn::Sub": "${AWS::Region}-x"},
        "Pick": {"Fn::Select": [1, {"Fn::Split": ["/", {"Ref": "Name"}]}]},
        "Choice": {"Fn::If": ["IsProd", {"Ref": "A"}, {"Ref": "AWS::NoValue"}]},
    }


def test_project_template_parses_with_its_short_form_tags(template: dict[str, Any]) -> None:
    run_queue = template["Resources"]["RunQueue"]["Properties"]

    assert run_queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_template_path_comes_from_strait_template_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(SMALL_TEMPLATE, encoding="utf-8")
    monkeypatch.setenv("STRAIT_TEMPLATE", str(path))

    assert "Work" in load_template()["Resources"]


def test_text_without_resources_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="Resources"):
        parse_template("Description: nothing here\n")


def test_table_spec_reads_keys_indexes_projections_and_ttl() -> None:
    spec = table_spec(parse_template(SMALL_TEMPLATE), "Table")

    assert spec.attribute_definitions == (
        AttributeDefinition("pk", "S"),
        AttributeDefinition("gpk", "S"),
        AttributeDefinition("score", "N"),
    )
    assert spec.key_schema == (KeyElement("pk", "HASH"),)
    assert spec.global_secondary_indexes == (
        GlobalSecondaryIndex(
            "by_group", (KeyElement("gpk", "HASH"), KeyElement("score", "RANGE")), Projection("KEYS_ONLY")
        ),
        GlobalSecondaryIndex(
            "by_group_with_status", (KeyElement("gpk", "HASH"),), Projection("INCLUDE", ("status", "owner"))
        ),
    )
    assert spec.ttl_attribute == "gone_at"


def test_table_spec_lists_exactly_the_indexes_the_template_declares(template: dict[str, Any]) -> None:
    declared = template["Resources"]["RunsTable"]["Properties"]["GlobalSecondaryIndexes"]

    spec = table_spec(template)

    assert spec.index_names == tuple(index["IndexName"] for index in declared)
    for index in declared:
        projection = spec.index(index["IndexName"]).projection
        assert projection.projection_type == index["Projection"]["ProjectionType"]
        assert projection.non_key_attributes == tuple(index["Projection"].get("NonKeyAttributes", []))


def test_table_spec_of_project_template_expires_items_by_its_ttl_attribute(template: dict[str, Any]) -> None:
    declared = template["Resources"]["RunsTable"]["Properties"]["TimeToLiveSpecification"]

    assert table_spec(template).ttl_attribute == declared["AttributeName"]


def test_disabled_ttl_gives_no_ttl_attribute() -> None:
    text = SMALL_TEMPLATE.replace("Enabled: true", "Enabled: false")

    assert table_spec(parse_template(text), "Table").ttl_attribute is None


def test_unknown_index_name_is_a_key_error_naming_the_known_ones() -> None:
    spec = table_spec(parse_template(SMALL_TEMPLATE), "Table")

    with pytest.raises(KeyError, match="by_group_with_status"):
        spec.index("by_nothing")


def test_table_spec_of_missing_resource_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="NoSuchTable"):
        table_spec(parse_template(SMALL_TEMPLATE), "NoSuchTable")


def test_table_spec_of_a_queue_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="AWS::DynamoDB::Table"):
        table_spec(parse_template(SMALL_TEMPLATE), "Work")


def test_index_with_unknown_projection_type_is_a_template_error() -> None:
    text = SMALL_TEMPLATE.replace("ProjectionType: KEYS_ONLY", "ProjectionType: SOME")

    with pytest.raises(TemplateError, match=r"GlobalSecondaryIndexes\[0\]\.Projection\.ProjectionType"):
        table_spec(parse_template(text), "Table")


def test_queue_specs_follow_the_redrive_policy_to_the_dead_letter_queue() -> None:
    specs = queue_specs(parse_template(SMALL_TEMPLATE), "Work")

    assert specs.run_queue.logical_id == "Work"
    assert specs.run_queue.visibility_timeout == 120
    assert specs.dead_letter_queue.logical_id == "Parked"
    assert specs.dead_letter_queue.message_retention_period == 86400
    assert specs.max_receive_count == 3


def test_queue_without_visibility_timeout_gets_the_sqs_default() -> None:
    specs = queue_specs(parse_template(SMALL_TEMPLATE), "Work")

    assert specs.dead_letter_queue.visibility_timeout == SQS_DEFAULT_VISIBILITY_TIMEOUT


def test_queue_specs_of_project_template_carry_its_redrive_count(template: dict[str, Any]) -> None:
    run_queue = template["Resources"]["RunQueue"]["Properties"]
    dead_letter_queue = template["Resources"]["DeadLetterQueue"]["Properties"]

    specs = queue_specs(template)

    assert specs.max_receive_count == run_queue["RedrivePolicy"]["maxReceiveCount"]
    assert specs.run_queue.visibility_timeout == run_queue["VisibilityTimeout"]
    assert specs.run_queue.message_retention_period == run_queue["MessageRetentionPeriod"]
    assert specs.dead_letter_queue.logical_id == "DeadLetterQueue"
    assert specs.dead_letter_queue.message_retention_period == dead_letter_queue["MessageRetentionPeriod"]


def test_redrive_target_that_is_not_a_queue_of_the_template_is_a_template_error() -> None:
    text = SMALL_TEMPLATE.replace("!GetAtt Parked.Arn", "arn:aws:sqs:us-east-1:123456789012:elsewhere")

    with pytest.raises(TemplateError, match="deadLetterTargetArn"):
        queue_specs(parse_template(text), "Work")


# --- the table's stream and the effects function's event source ------------------------------------

STREAM_TEMPLATE = """
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  Failures:
    Type: AWS::SQS::Queue
  Reader:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: LATEST
"""


def _reader_event(text: str, **properties: Any) -> dict[str, Any]:
    parsed = parse_template(text)
    parsed["Resources"]["Reader"]["Properties"]["Events"]["Changes"]["Properties"].update(properties)
    return parsed


def test_table_spec_carries_the_stream_view_type(template: dict[str, Any]) -> None:
    declared = template["Resources"]["RunsTable"]["Properties"]["StreamSpecification"]

    assert table_spec(template).stream_view_type == declared["StreamViewType"]
    assert table_spec(parse_template(SMALL_TEMPLATE), "Table").stream_view_type is None


def test_effects_event_source_is_the_templates_dynamodb_event(template: dict[str, Any]) -> None:
    declared = template["Resources"]["EffectsFunction"]["Properties"]["Events"]["RunChanges"]["Properties"]

    source = dynamodb_stream_event_source(template, "EffectsFunction")

    assert (source.event_id, source.table_logical_id) == ("RunChanges", "RunsTable")
    assert source.batch_size == declared["BatchSize"]
    assert source.starting_position == declared["StartingPosition"]
    assert source.bisect_batch_on_function_error is declared["BisectBatchOnFunctionError"]
    assert source.maximum_retry_attempts == declared["MaximumRetryAttempts"]
    assert source.report_batch_item_failures is True
    assert [json.dumps(p.pattern) for p in source.filter_patterns] == [
        json.dumps(json.loads(f["Pattern"])) for f in declared["FilterCriteria"]["Filters"]
    ]
    assert source.on_failure_queue_logical_id == "EffectsFailureQueue"
    assert (source.function.name, source.function.timeout_secs) == ("strait-runs-EffectsFunction", 60)


def test_a_dynamodb_event_that_sets_little_gets_lambdas_defaults() -> None:
    source = dynamodb_stream_event_source(parse_template(STREAM_TEMPLATE), "Reader", name_prefix="t")

    assert source.batch_size == STREAM_DEFAULT_BATCH_SIZE
    assert source.maximum_retry_attempts == STREAM_INFINITE_RETRIES
    assert source.starting_position == "LATEST"
    assert (source.bisect_batch_on_function_error, source.report_batch_item_failures) == (False, False)
    assert (source.filter_patterns, source.on_failure_queue_logical_id) == ((), None)


def test_numbers_and_booleans_written_as_strings_are_read() -> None:
    text = _reader_event(
        STREAM_TEMPLATE, BatchSize="7", MaximumRetryAttempts="-1", BisectBatchOnFunctionError="true"
    )

    source = dynamodb_stream_event_source(text, "Reader")

    assert (source.batch_size, source.maximum_retry_attempts) == (7, -1)
    assert source.bisect_batch_on_function_error is True


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"BatchSize": 0}, "BatchSize must be 1..10000"),
        ({"BatchSize": 10_001}, "BatchSize must be 1..10000"),
        ({"MaximumRetryAttempts": -2}, "MaximumRetryAttempts must be -1..10000"),
        ({"StartingPosition": "AT_TIMESTAMP"}, "StartingPosition"),
        ({"Stream": "arn:aws:dynamodb:us-east-1:1:table/x/stream/y"}, "Stream must be !GetAtt"),
        ({"FilterCriteria": {"Filters": [{"Pattern": "{nope"}]}}, r"Filters\[0\]\.Pattern"),
        ({"FilterCriteria": {"Filters": [{"Pattern": '{"a": [{"wildcard": "*"}]}'}]}}, "unknown matcher"),
        ({"ParallelizationFactor": 2}, "does not play"),
        ({"TumblingWindowInSeconds": 60}, "does not play"),
        ({"Enabled": False}, "does not play"),
        (
            {"DestinationConfig": {"OnFailure": {"Type": "SNS", "Destination": "arn:aws:sns:x"}}},
            "only an SQS destination",
        ),
        (
            {"DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["Table", "Arn"]}}}},
            "expected 'AWS::SQS::Queue'",
        ),
    ],
)
def test_a_dynamodb_event_the_local_source_cannot_play_is_a_template_error(
    properties: dict[str, Any], message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        dynamodb_stream_event_source(_reader_event(STREAM_TEMPLATE, **properties), "Reader")


def test_a_function_without_a_dynamodb_event_is_a_template_error(template: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="DispatcherFunction has no DynamoDB event"):
        dynamodb_stream_event_source(template, "DispatcherFunction")


def test_queue_specs_include_the_effects_failure_queue(template: dict[str, Any]) -> None:
    declared = template["Resources"]["EffectsFailureQueue"]["Properties"]

    failures = queue_specs(template).effects_failure_queue

    assert failures is not None
    assert failures.logical_id == "EffectsFailureQueue"
    assert failures.message_retention_period == declared["MessageRetentionPeriod"]


def test_queue_specs_of_a_template_without_effects_function_have_no_failure_queue() -> None:
    assert queue_specs(parse_template(SMALL_TEMPLATE), "Work").effects_failure_queue is None
