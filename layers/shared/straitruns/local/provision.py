"""Create the table (with its stream) and the queues that template.yaml declares, on DynamoDB
Local, moto or AWS.

Both functions are idempotent, so the local stack calls them on every start, against a fresh
engine or against data persisted by an earlier run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from straitruns.local.template import (
    GlobalSecondaryIndex,
    KeyElement,
    Projection,
    QueueSpec,
    QueueSpecs,
    TableSpec,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeDefinitionTypeDef,
        GlobalSecondaryIndexTypeDef,
        KeySchemaElementTypeDef,
        ProjectionTypeDef,
        StreamSpecificationTypeDef,
        TableDescriptionTypeDef,
    )
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

ACTIVE_TIMEOUT_SECONDS = 300.0
_POLL_INTERVAL_SECONDS = 0.5
_RUN_QUEUE_SUFFIX = "-runs"
_EFFECTS_FAILURE_QUEUE_SUFFIX = "-effects-failures"
_QUEUE_EXISTS_CODES = frozenset(
    {"QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"}
)


class ProvisionError(RuntimeError):
    """A table or queue could not be brought in line with the template."""


class TableMismatchError(ProvisionError):
    """An existing table differs from the template in a way that cannot be changed in place
    (its key schema, an index's keys or projection, its TTL attribute, or its stream's view type)."""


@dataclass(frozen=True, slots=True)
class QueueUrls:
    run_queue_url: str
    dead_letter_queue_url: str
    # None when the template declares no effects function (so no on-failure queue).
    effects_failure_queue_url: str | None = None


def effects_failure_queue_name(table_name: str) -> str:
    """The on-failure queue of the effects function's stream event source, beside the queues
    `<table>-runs` and `<table>-dead-letters`."""
    return f"{table_name}{_EFFECTS_FAILURE_QUEUE_SUFFIX}"


def ensure_table(
    client: DynamoDBClient,
    table_name: str,
    spec: TableSpec,
    *,
    active_timeout: float = ACTIVE_TIMEOUT_SECONDS,
) -> bool:
    """Make `table_name` match `spec`: create it (PAY_PER_REQUEST, every GSI, its stream) if
    missing, add any GSI it lacks, turn its stream on if it has none, enable TTL on the spec's
    attribute, and wait until the table and its indexes are ACTIVE. Indexes the spec does not
    declare, and a stream it does not declare, are left alone.

    Returns True if anything was created or changed, False if the table already matched.
    Raises TableMismatchError if the existing table conflicts with the spec, ProvisionError if it is
    not ACTIVE within `active_timeout` seconds, and botocore's ClientError for other API failures.
    """
    description = _describe_table(client, table_name)
    if description is None:
        changed = _create_table(client, table_name, spec)
    else:
        _check_key_schema(table_name, description, spec)
        changed = False
    description = _wait_until_active(client, table_name, active_timeout)
    for index in _missing_indexes(table_name, description, spec):
        client.update_table(
            TableName=table_name,
            AttributeDefinitions=_attribute_definitions(
                spec, only={key.attribute_name for key in index.key_schema}
            ),
            GlobalSecondaryIndexUpdates=[{"Create": _index_definition(index)}],
        )
        # DynamoDB creates one index per UpdateTable call and refuses the next until it is ACTIVE.
        description = _wait_until_active(client, table_name, active_timeout)
        changed = True
    if _ensure_stream(client, table_name, description, spec):
        _wait_until_active(client, table_name, active_timeout)
        changed = True
    return _ensure_ttl(client, table_name, spec.ttl_attribute) or changed


def ensure_queues(
    sqs_client: SQSClient,
    run_queue_name: str,
    dead_letter_queue_name: str,
    specs: QueueSpecs,
    effects_failure_queue_name: str | None = None,
) -> QueueUrls:
    """Create the dead-letter queue, then the run queue with a RedrivePolicy to it after
    `specs.max_receive_count` receives, and the effects function's on-failure queue if the specs
    have one (named `effects_failure_queue_name`, by default `<table>-effects-failures` for a run
    queue named `<table>-runs`); a queue that exists gets the template's attributes.

    Returns the URLs (the same ones on every call). Raises botocore's ClientError on API failures.
    """
    dead_letter_queue_url = _ensure_queue(
        sqs_client, dead_letter_queue_name, _queue_attributes(specs.dead_letter_queue)
    )
    dead_letter_queue_arn = sqs_client.get_queue_attributes(
        QueueUrl=dead_letter_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    run_queue_attributes = _queue_attributes(specs.run_queue)
    run_queue_attributes["RedrivePolicy"] = json.dumps(
        {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": specs.max_receive_count}
    )
    run_queue_url = _ensure_queue(sqs_client, run_queue_name, run_queue_attributes)
    effects_failure_queue_url = None
    if specs.effects_failure_queue is not None:
        name = effects_failure_queue_name or _effects_failure_queue_name_of(run_queue_name)
        effects_failure_queue_url = _ensure_queue(
            sqs_client, name, _queue_attributes(specs.effects_failure_queue)
        )
    return QueueUrls(
        run_queue_url=run_queue_url,
        dead_letter_queue_url=dead_letter_queue_url,
        effects_failure_queue_url=effects_failure_queue_url,
    )


def _effects_failure_queue_name_of(run_queue_name: str) -> str:
    return effects_failure_queue_name(run_queue_name.removesuffix(_RUN_QUEUE_SUFFIX))


def _describe_table(client: DynamoDBClient, table_name: str) -> TableDescriptionTypeDef | None:
    try:
        return client.describe_table(TableName=table_name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        return None


def _create_table(client: DynamoDBClient, table_name: str, spec: TableSpec) -> bool:
    indexes = [_index_definition(index) for index in spec.global_secondary_indexes]
    # DynamoDB rejects an empty GlobalSecondaryIndexes list, so it is passed only when there are some.
    optional: dict[str, Any] = {"GlobalSecondaryIndexes": indexes} if indexes else {}
    if spec.stream_view_type is not None:
        optional["StreamSpecification"] = _stream_specification(spec)
    try:
        client.create_table(
            TableName=table_name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=_attribute_definitions(spec),
            KeySchema=_key_schema(spec.key_schema),
            **optional,
        )
    except client.exceptions.ResourceInUseException:
        # Another process created it between our describe and create: the checks that follow apply.
        return False
    return True


def _wait_until_active(client: DynamoDBClient, table_name: str, timeout: float) -> TableDescriptionTypeDef:
    deadline = time.monotonic() + timeout
    while True:
        description = client.describe_table(TableName=table_name)["Table"]
        statuses = [description.get("TableStatus")] + [
            index.get("IndexStatus") for index in description.get("GlobalSecondaryIndexes", [])
        ]
        if all(status == "ACTIVE" for status in statuses):
            return description
        if time.monotonic() >= deadline:
            raise ProvisionError(
                f"table {table_name} is not ACTIVE after {timeout:.0f} s (statuses: {statuses})"
            )
        time.sleep(_POLL_INTERVAL_SECONDS)


def _check_key_schema(table_name: str, description: TableDescriptionTypeDef, spec: TableSpec) -> None:
    actual = _key_elements(description.get("KeySchema", []))
    if actual != spec.key_schema:
        raise TableMismatchError(
            f"table {table_name} has key schema {actual}, the template declares {spec.key_schema}; "
            "delete the table (or the local data folder) to recreate it"
        )


def _missing_indexes(
    table_name: str, description: TableDescriptionTypeDef, spec: TableSpec
) -> list[GlobalSecondaryIndex]:
    existing = {index["IndexName"]: index for index in description.get("GlobalSecondaryIndexes", [])}
    missing = []
    for index in spec.global_secondary_indexes:
        current = existing.get(index.name)
        if current is None:
            missing.append(index)
            continue
        projection = current.get("Projection", {})
        actual = GlobalSecondaryIndex(
            name=index.name,
            key_schema=_key_elements(current.get("KeySchema", [])),
            projection=Projection(
                projection_type=projection.get("ProjectionType", "ALL"),
                non_key_attributes=tuple(sorted(projection.get("NonKeyAttributes", []))),
            ),
        )
        expected = GlobalSecondaryIndex(
            name=index.name,
            key_schema=index.key_schema,
            projection=Projection(
                index.projection.projection_type, tuple(sorted(index.projection.non_key_attributes))
            ),
        )
        if actual != expected:
            raise TableMismatchError(
                f"index {index.name} of table {table_name} is {actual}, the template declares {expected}; "
                "delete the table (or the local data folder) to recreate it"
            )
    return missing


def _ensure_stream(
    client: DynamoDBClient, table_name: str, description: TableDescriptionTypeDef, spec: TableSpec
) -> bool:
    """Turn the table's stream on if the spec declares one and the table has none (a table made
    before the template had it); whether it did."""
    if spec.stream_view_type is None:
        return False
    current = description.get("StreamSpecification", {})
    if not current.get("StreamEnabled"):
        client.update_table(TableName=table_name, StreamSpecification=_stream_specification(spec))
        return True
    if current.get("StreamViewType") != spec.stream_view_type:
        # Changing it means a new stream, and the records of the old one not read yet would be
        # lost to the stream event source: refused rather than done silently.
        raise TableMismatchError(
            f"the stream of table {table_name} carries {current.get('StreamViewType')}, the template "
            f"declares {spec.stream_view_type}; delete the table (or the local data folder) to recreate it"
        )
    return False


def _stream_specification(spec: TableSpec) -> StreamSpecificationTypeDef:
    assert spec.stream_view_type is not None
    return {"StreamEnabled": True, "StreamViewType": spec.stream_view_type}


def _ensure_ttl(client: DynamoDBClient, table_name: str, attribute: str | None) -> bool:
    if attribute is None:
        return False
    current = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        if current.get("AttributeName") == attribute:
            return False
        raise TableMismatchError(
            f"table {table_name} expires items by {current.get('AttributeName')!r}, "
            f"the template declares {attribute!r}"
        )
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
    )
    return True


def _ensure_queue(sqs_client: SQSClient, name: str, attributes: dict[QueueAttributeNameType, str]) -> str:
    try:
        return sqs_client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in _QUEUE_EXISTS_CODES:
            raise
    # The queue exists with other attributes (an older template): bring it in line instead of failing.
    queue_url = sqs_client.get_queue_url(QueueName=name)["QueueUrl"]
    sqs_client.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    return queue_url


def _queue_attributes(spec: QueueSpec) -> dict[QueueAttributeNameType, str]:
    return {
        "VisibilityTimeout": str(spec.visibility_timeout),
        "MessageRetentionPeriod": str(spec.message_retention_period),
    }


def _attribute_definitions(spec: TableSpec, only: set[str] | None = None) -> list[AttributeDefinitionTypeDef]:
    return [
        {"AttributeName": definition.name, "AttributeType": definition.type}
        for definition in spec.attribute_definitions
        if only is None or definition.name in only
    ]


def _key_schema(elements: Iterable[KeyElement]) -> list[KeySchemaElementTypeDef]:
    return [{"AttributeName": element.attribute_name, "KeyType": element.key_type} for element in elements]


def _key_elements(schema: Iterable[KeySchemaElementTypeDef]) -> tuple[KeyElement, ...]:
    return tuple(KeyElement(element["AttributeName"], element["KeyType"]) for element in schema)


def _index_definition(index: GlobalSecondaryIndex) -> GlobalSecondaryIndexTypeDef:
    projection: ProjectionTypeDef = {"ProjectionType": index.projection.projection_type}
    if index.projection.non_key_attributes:
        projection["NonKeyAttributes"] = list(index.projection.non_key_attributes)
    return {"IndexName": index.name, "KeySchema": _key_schema(index.key_schema), "Projection": projection}
