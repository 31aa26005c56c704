"""Shared fixtures. Most tests run on moto in-process; race and store tests on DynamoDB Local."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from straitruns.adapters.clock import FrozenClock
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client, make_services
from tests.support.backends import *  # noqa: F403 - registers the backend fixtures
from tests.support.effects import MOTO_CLIENT_CONFIG
from tests.support.endpoint import endpoint  # noqa: F401 - registers the job endpoint fixture


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def moto_clients(aws_env: None) -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        yield (
            boto3.client("dynamodb", region_name="us-east-1", config=MOTO_CLIENT_CONFIG),
            boto3.client("sqs", region_name="us-east-1"),
        )


@pytest.fixture
def index_shards() -> int:
    """Write shards of the busy index partitions (a module may run its tests with more)."""
    return 1


@pytest.fixture
def services(moto_clients: tuple[Any, Any], clock: FrozenClock, index_shards: int) -> Services:
    dynamodb, sqs = moto_clients
    return make_services(dynamodb, sqs, clock, index_shards=index_shards)


@pytest.fixture
def api(services: Services, clock: FrozenClock) -> ApiClient:
    """The API on moto, with a project and a `*` key ready."""
    return api_client(services, clock)
