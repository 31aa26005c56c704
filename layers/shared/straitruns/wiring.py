"""Builds the adapters and use cases from settings, once per process (entry points call this)."""

from dataclasses import dataclass
from typing import Any

from straitruns.adapters.clock import SystemClock
from straitruns.adapters.id_factory import UlidFactory
from straitruns.adapters.run_queue import RunQueue
from straitruns.adapters.secrets import admin_secret
from straitruns.adapters.store.access import AccessStore
from straitruns.adapters.store.jobs import JobStore
from straitruns.adapters.store.runs import RunStore
from straitruns.adapters.store.table import DynamoTable
from straitruns.domain.clock import Clock
from straitruns.domain.ids import IdFactory
from straitruns.services.access import AccessService
from straitruns.services.jobs import JobService
from straitruns.services.run_queries import RunQueries
from straitruns.services.run_state import RunStateMachine
from straitruns.services.triggers import TriggerService
from straitruns.settings import Settings


@dataclass
class Services:
    settings: Settings
    clock: Clock
    ids: IdFactory
    table: DynamoTable
    runs: RunStore
    jobs_store: JobStore
    queue: RunQueue
    state: RunStateMachine
    access: AccessService
    jobs: JobService
    triggers: TriggerService
    queries: RunQueries


def aws_clients(settings: Settings) -> tuple[Any, Any]:
    """Low-level DynamoDB and SQS clients for the configured endpoints."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)
    session = boto3.session.Session(region_name=settings.region)
    dynamodb = session.client("dynamodb", endpoint_url=settings.dynamodb_endpoint_url, config=config)
    sqs = session.client("sqs", endpoint_url=settings.sqs_endpoint_url, config=config)
    return dynamodb, sqs


def build_services(
    settings: Settings,
    *,
    dynamodb_client: Any = None,
    sqs_client: Any = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> Services:
    if dynamodb_client is None or sqs_client is None:
        default_dynamodb, default_sqs = aws_clients(settings)
        dynamodb_client = dynamodb_client or default_dynamodb
        sqs_client = sqs_client or default_sqs
    clock = clock or SystemClock()
    ids = ids or UlidFactory(clock)
    table = DynamoTable(dynamodb_client, settings.table_name)
    runs = RunStore(table)
    jobs_store = JobStore(table)
    queue = RunQueue(sqs_client, settings.run_queue_url)
    state = RunStateMachine(runs, clock, ids)
    return Services(
        settings=settings,
        clock=clock,
        ids=ids,
        table=table,
        runs=runs,
        jobs_store=jobs_store,
        queue=queue,
        state=state,
        access=AccessService(AccessStore(table), clock, ids, lambda: admin_secret(settings)),
        jobs=JobService(jobs_store, runs, state, queue, clock, ids, settings.allow_private_endpoints),
        triggers=TriggerService(jobs_store, runs, queue, clock, ids),
        queries=RunQueries(runs, settings.list_read_budget),
    )
