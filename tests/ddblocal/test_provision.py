"""The local stack builds the table and queues of template.yaml on real engines (DynamoDB Local,
the moto server), idempotently, and its engines leave no process behind."""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from typing import TYPE_CHECKING

import boto3
import pytest

from straitruns.local.processes import (
    BackendNotInstalledError,
    DynamoDBLocal,
    MotoServer,
    find_dynamodb_local_jar,
)
from straitruns.local.provision import QueueUrls, TableMismatchError, ensure_queues, ensure_table
from straitruns.local.template import QueueSpecs, TableSpec, load_template, queue_specs
from tests.support.backends import dynamodb_local_client, runs_table_spec

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.ddblocal

# An index as DynamoDB describes it: ((attribute, key type), ...) and its Projection.
IndexShape = tuple[tuple[tuple[str, str], ...], dict[str, object]]


@pytest.fixture
def client(dynamodb_local: str) -> DynamoDBClient:
    return dynamodb_local_client(dynamodb_local)


@pytest.fixture
def table_name(client: DynamoDBClient) -> Iterator[str]:
    name = f"provision-{uuid.uuid4().hex}"
    yield name
    if name in client.list_tables()["TableNames"]:
        client.delete_table(TableName=name)


@pytest.fixture(scope="module")
def sqs() -> Iterator[SQSClient]:
    with MotoServer() as server:
        yield boto3.client(
            "sqs",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def specs() -> QueueSpecs:
    return queue_specs(load_template())


def _indexes(client: DynamoDBClient, table_name: str) -> dict[str, IndexShape]:
    table = client.describe_table(TableName=table_name)["Table"]
    return {
        index["IndexName"]: (
            tuple((key["AttributeName"], key["KeyType"]) for key in index["KeySchema"]),
            dict(index["Projection"]),
        )
        for index in table.get("GlobalSecondaryIndexes", [])
    }


def _expected_indexes(spec: TableSpec) -> dict[str, IndexShape]:
    expected: dict[str, IndexShape] = {}
    for index in spec.global_secondary_indexes:
        projection: dict[str, object] = {"ProjectionType": index.projection.projection_type}
        if index.projection.non_key_attributes:
            projection["NonKeyAttributes"] = list(index.projection.non_key_attributes)
        keys = tuple((key.attribute_name, key.key_type) for key in index.key_schema)
        expected[index.name] = (keys, projection)
    return expected


def test_ensure_table_creates_table_with_every_index_of_the_template(
    client: DynamoDBClient, table_name: str
) -> None:
    spec = runs_table_spec()

    created = ensure_table(client, table_name, spec)

    table = client.describe_table(TableName=table_name)["Table"]
    assert created is True
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [(key["AttributeName"], key["KeyType"]) for key in table["KeySchema"]] == [
        (key.attribute_name, key.key_type) for key in spec.key_schema
    ]
    assert _indexes(client, table_name) == _expected_indexes(spec)


def test_ensure_table_enables_ttl_on_the_template_attribute(client: DynamoDBClient, table_name: str) -> None:
    ensure_table(client, table_name, runs_table_spec())

    ttl = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == runs_table_spec().ttl_attribute


def test_second_ensure_table_changes_nothing(client: DynamoDBClient, table_name: str) -> None:
    spec = runs_table_spec()
    ensure_table(client, table_name, spec)
    client.put_item(TableName=table_name, Item={"pk": {"S": "RUN#1"}, "sk": {"S": "RUN"}})
    before = client.describe_table(TableName=table_name)["Table"]

    changed = ensure_table(client, table_name, spec)

    after = client.describe_table(TableName=table_name)["Table"]
    assert changed is False
    assert after["CreationDateTime"] == before["CreationDateTime"]
    assert _indexes(client, table_name) == _expected_indexes(spec)
    assert client.get_item(TableName=table_name, Key={"pk": {"S": "RUN#1"}, "sk": {"S": "RUN"}})["Item"]


def test_ensure_table_adds_an_index_the_existing_table_lacks(client: DynamoDBClient, table_name: str) -> None:
    spec = runs_table_spec()
    older = _without_last_index(spec)
    ensure_table(client, table_name, older)

    changed = ensure_table(client, table_name, spec)

    assert changed is True
    assert _indexes(client, table_name) == _expected_indexes(spec)


def test_ensure_table_creates_the_table_with_the_templates_stream(
    client: DynamoDBClient, table_name: str
) -> None:
    ensure_table(client, table_name, runs_table_spec())

    table = client.describe_table(TableName=table_name)["Table"]
    assert table.get("StreamSpecification") == {
        "StreamEnabled": True,
        "StreamViewType": runs_table_spec().stream_view_type,
    }
    assert table.get("LatestStreamArn")


def test_ensure_table_turns_the_stream_on_for_a_table_made_without_it(
    client: DynamoDBClient, table_name: str
) -> None:
    spec = runs_table_spec()
    ensure_table(client, table_name, dataclasses.replace(spec, stream_view_type=None))
    assert "StreamSpecification" not in client.describe_table(TableName=table_name)["Table"]

    changed = ensure_table(client, table_name, spec)

    assert changed is True
    stream = client.describe_table(TableName=table_name)["Table"].get("StreamSpecification", {})
    assert stream == {"StreamEnabled": True, "StreamViewType": spec.stream_view_type}
    assert ensure_table(client, table_name, spec) is False


def test_a_stream_of_another_view_type_is_a_mismatch_not_a_new_stream(
    client: DynamoDBClient, table_name: str
) -> None:
    spec = runs_table_spec()
    ensure_table(client, table_name, dataclasses.replace(spec, stream_view_type="KEYS_ONLY"))
    before = client.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]

    with pytest.raises(TableMismatchError, match="KEYS_ONLY"):
        ensure_table(client, table_name, spec)

    assert client.describe_table(TableName=table_name)["Table"]["LatestStreamArn"] == before


def _without_last_index(spec: TableSpec) -> TableSpec:
    # DynamoDB refuses attribute definitions that no key uses, so the dropped index's go too.
    indexes = spec.global_secondary_indexes[:-1]
    used = {key.attribute_name for key in spec.key_schema}
    used |= {key.attribute_name for index in indexes for key in index.key_schema}
    definitions = tuple(definition for definition in spec.attribute_definitions if definition.name in used)
    return dataclasses.replace(spec, global_secondary_indexes=indexes, attribute_definitions=definitions)


def test_ddb_local_table_fixture_yields_a_table_built_from_the_template(
    ddb_local_table: tuple[DynamoDBClient, str],
) -> None:
    client, table_name = ddb_local_table

    assert _indexes(client, table_name) == _expected_indexes(runs_table_spec())


def _queue_name() -> str:
    return f"queue-{uuid.uuid4().hex}"


def test_ensure_queues_redrives_the_run_queue_to_the_dead_letter_queue(
    sqs: SQSClient, specs: QueueSpecs
) -> None:
    urls = ensure_queues(sqs, _queue_name(), _queue_name(), specs)

    run_queue = sqs.get_queue_attributes(QueueUrl=urls.run_queue_url, AttributeNames=["All"])["Attributes"]
    dead_letter_queue = sqs.get_queue_attributes(QueueUrl=urls.dead_letter_queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(run_queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dead_letter_queue["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == specs.max_receive_count
    assert int(run_queue["VisibilityTimeout"]) == specs.run_queue.visibility_timeout
    assert int(run_queue["MessageRetentionPeriod"]) == specs.run_queue.message_retention_period
    assert (
        int(dead_letter_queue["MessageRetentionPeriod"]) == specs.dead_letter_queue.message_retention_period
    )


def test_second_ensure_queues_returns_the_same_urls(sqs: SQSClient, specs: QueueSpecs) -> None:
    table = _queue_name()
    first = ensure_queues(sqs, f"{table}-runs", f"{table}-dead-letters", specs)

    second = ensure_queues(sqs, f"{table}-runs", f"{table}-dead-letters", specs)

    assert second == first
    assert sorted(sqs.list_queues(QueueNamePrefix=table)["QueueUrls"]) == sorted(
        [first.run_queue_url, first.dead_letter_queue_url, first.effects_failure_queue_url]
    )


def test_ensure_queues_creates_the_effects_failure_queue_beside_the_run_queue(
    sqs: SQSClient, specs: QueueSpecs
) -> None:
    table = _queue_name()

    urls = ensure_queues(sqs, f"{table}-runs", f"{table}-dead-letters", specs)

    assert specs.effects_failure_queue is not None
    assert (
        urls.effects_failure_queue_url == sqs.get_queue_url(QueueName=f"{table}-effects-failures")["QueueUrl"]
    )
    attributes = sqs.get_queue_attributes(QueueUrl=urls.effects_failure_queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert int(attributes["MessageRetentionPeriod"]) == specs.effects_failure_queue.message_retention_period
    assert "RedrivePolicy" not in attributes


def test_ensure_queues_brings_an_existing_queue_in_line_with_the_template(
    sqs: SQSClient, specs: QueueSpecs
) -> None:
    run_queue_name = _queue_name()
    sqs.create_queue(QueueName=run_queue_name, Attributes={"VisibilityTimeout": "1"})

    urls: QueueUrls = ensure_queues(sqs, run_queue_name, _queue_name(), specs)

    attributes = sqs.get_queue_attributes(QueueUrl=urls.run_queue_url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["VisibilityTimeout"]) == specs.run_queue.visibility_timeout
    assert "RedrivePolicy" in attributes


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stopped_dynamodb_local_leaves_no_process_and_stops_twice_safely() -> None:
    engine = DynamoDBLocal().start()
    pid = engine.pid
    assert pid is not None

    engine.stop()
    engine.stop()

    assert not engine.running
    assert not _process_exists(pid)


def test_persisted_dynamodb_local_keeps_tables_across_restarts(tmp_path: Path) -> None:
    with DynamoDBLocal(data_dir=tmp_path) as engine:
        ensure_table(dynamodb_local_client(engine.endpoint_url), "kept", runs_table_spec())

    with DynamoDBLocal(data_dir=tmp_path) as engine:
        tables = dynamodb_local_client(engine.endpoint_url).list_tables()["TableNames"]

    assert tables == ["kept"]
    assert (tmp_path / "dynamodb-local.log").exists()


def test_stopped_moto_server_leaves_no_process() -> None:
    with MotoServer() as server:
        pid = server.pid
        assert pid is not None

    assert not _process_exists(pid)


def test_missing_dynamodb_local_jar_tells_to_run_make_install(tmp_path: Path) -> None:
    with pytest.raises(BackendNotInstalledError, match="make install"):
        find_dynamodb_local_jar(tmp_path)


def test_dynamodb_local_with_missing_jar_starts_nothing(tmp_path: Path) -> None:
    engine = DynamoDBLocal(jar=tmp_path / "DynamoDBLocal.jar")

    with pytest.raises(BackendNotInstalledError, match="make install"):
        engine.start()
    assert engine.pid is None
