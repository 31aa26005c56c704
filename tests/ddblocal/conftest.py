"""The service on DynamoDB Local (and SQS on a moto server): the store suite and every race test."""

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from straitruns.adapters.clock import SystemClock
from straitruns.api.app import create_app
from straitruns.local.processes import MotoServer
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client, make_services
from tests.support.backends import dynamodb_local_client
from tests.support.live import serve


@pytest.fixture(scope="session")
def sqs_server() -> Iterator[str]:
    with MotoServer() as server:
        yield server.endpoint_url


@pytest.fixture
def local_services(dynamodb_local: str, sqs_server: str) -> Iterator[Services]:
    """Services on a fresh DynamoDB Local table, with the real clock (races need real time)."""
    dynamodb = dynamodb_local_client(dynamodb_local)
    sqs: Any = boto3.client(
        "sqs",
        endpoint_url=sqs_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table_name = f"runs-{uuid.uuid4().hex[:12]}"
    services = make_services(dynamodb, sqs, SystemClock(), table_name=table_name)
    yield services
    dynamodb.delete_table(TableName=table_name)


@pytest.fixture
def local_api(local_services: Services) -> ApiClient:
    return api_client(local_services, SystemClock())  # type: ignore[arg-type]


@pytest.fixture
def live_url(local_services: Services) -> Iterator[str]:
    """The app on DynamoDB Local behind a real HTTP server."""
    with serve(create_app(lambda: local_services)) as url:
        yield url
