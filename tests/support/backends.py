"""Pytest fixtures for the AWS backends tests run against: fake credentials, and DynamoDB Local
with tables built from template.yaml. tests/conftest.py re-exports them with `import *`."""

from __future__ import annotations

import uuid
from functools import cache
from typing import TYPE_CHECKING

import boto3
import pytest

from straitruns.local.processes import DynamoDBLocal
from straitruns.local.provision import ensure_table
from straitruns.local.template import TableSpec, load_template, table_spec

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_dynamodb import DynamoDBClient

# Only the fixtures: `import *` in conftest registers them; the helpers are imported by name.
__all__ = ["aws_env", "ddb_local_table", "dynamodb_local"]

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@cache
def runs_table_spec() -> TableSpec:
    """The runs table as template.yaml declares it (read once per process)."""
    return table_spec(load_template())


def dynamodb_local_client(endpoint_url: str) -> DynamoDBClient:
    """A low-level client for DynamoDB Local, with credentials of its own so no real ones are used."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials and region, so no test can reach or bill a real account."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str]:
    """The endpoint URL of an in-memory DynamoDB Local, one per pytest-xdist worker (each worker
    is its own session), stopped when the session ends."""
    with DynamoDBLocal() as engine:
        yield engine.endpoint_url


@pytest.fixture
def ddb_local_table(dynamodb_local: str) -> Iterator[tuple[DynamoDBClient, str]]:
    """A fresh table on DynamoDB Local built from template.yaml, as (client, table name); deleted after."""
    client = dynamodb_local_client(dynamodb_local)
    table_name = f"runs-{uuid.uuid4().hex}"
    ensure_table(client, table_name, runs_table_spec())
    yield client, table_name
    client.delete_table(TableName=table_name)
