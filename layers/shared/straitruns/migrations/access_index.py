"""Backfill: give projects and API keys stored before `GET /v1/projects` and
`GET /v1/projects/{projectID}/api-keys` existed the by_project index attributes those lists read.

Idempotent and safe to run while the service serves: it only adds the two attributes to items that
lack them, each with a conditional update. It Scans the table (an admin migration, not a request
path), reading only project and API-key items back.

    python -m straitruns.migrations.access_index        # STRAIT_* settings as for the service
"""

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from straitruns.adapters.store import keys
from straitruns.adapters.store.access import (
    API_KEY_SK,
    PROJECT_SK,
    api_key_index_attributes,
    project_index_attributes,
)
from straitruns.adapters.store.table import DynamoTable, Item, deserialize, serialize
from straitruns.domain.timefmt import parse_ts

_PARTITION = keys.INDEX_PARTITION_ATTRIBUTE[keys.BY_PROJECT]
# Project items (`PROJ#<id>`, sk PROJ) and API-key items (`APIKEY#<hash>`, sk APIKEY) missing the index.
_FILTER = (
    "((begins_with(pk, :proj) AND sk = :proj_sk) OR (begins_with(pk, :key) AND sk = :key_sk))"
    " AND attribute_not_exists(#partition)"
)
_FILTER_VALUES = {":proj": "PROJ#", ":proj_sk": PROJECT_SK, ":key": "APIKEY#", ":key_sk": API_KEY_SK}


@dataclass(frozen=True)
class BackfillReport:
    projects: int
    api_keys: int


def _missing(table: DynamoTable) -> Iterator[Item]:
    start: dict[str, Any] | None = None
    while True:
        request: dict[str, Any] = {
            "TableName": table.name,
            "FilterExpression": _FILTER,
            "ExpressionAttributeValues": serialize(_FILTER_VALUES),
            "ExpressionAttributeNames": {"#partition": _PARTITION},
            "ConsistentRead": True,
        }
        if start:
            request["ExclusiveStartKey"] = start
        response = table.client.scan(**request)
        yield from (deserialize(raw) for raw in response.get("Items", []))
        start = response.get("LastEvaluatedKey")
        if not start:
            return


def _attributes(item: Item) -> Item:
    created_at = parse_ts(item["created_at"])
    if item["sk"] == PROJECT_SK:
        return project_index_attributes(item["id"], created_at)
    return api_key_index_attributes(item["id"], item["project_id"], created_at)


def _add(table: DynamoTable, item: Item) -> bool:
    """Adds the index attributes unless another run of the backfill (or a rewrite) already did."""
    attributes = _attributes(item)
    try:
        table.update_item(
            Key=serialize({"pk": item["pk"], "sk": item["sk"]}),
            UpdateExpression="SET #partition = :partition, #sort = :sort",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#partition)",
            ExpressionAttributeNames={"#partition": _PARTITION, "#sort": keys.SORT_ATTRIBUTE},
            ExpressionAttributeValues=serialize(
                {":partition": attributes[_PARTITION], ":sort": attributes[keys.SORT_ATTRIBUTE]}
            ),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def backfill_access_index(table: DynamoTable) -> BackfillReport:
    """Adds the by_project index attributes to every project and API-key item that lacks them;
    returns how many of each it changed (0 and 0 when run again)."""
    projects = api_keys = 0
    for item in _missing(table):
        if _add(table, item):
            projects += item["sk"] == PROJECT_SK
            api_keys += item["sk"] == API_KEY_SK
    return BackfillReport(projects=projects, api_keys=api_keys)


def main() -> int:
    from straitruns.settings import Settings
    from straitruns.wiring import aws_clients

    settings = Settings.from_env()
    dynamodb, _ = aws_clients(settings)
    report = backfill_access_index(DynamoTable(dynamodb, settings.table_name))
    print(f"{settings.table_name}: indexed {report.projects} project(s) and {report.api_keys} API key(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
