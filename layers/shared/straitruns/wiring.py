"""Builds the adapters and use cases from settings, once per process (entry points call this)."""

from dataclasses import dataclass
from typing import Any

from straitruns.adapters.clock import SystemClock
from straitruns.adapters.executor import HttpExecutor
from straitruns.adapters.id_factory import UlidFactory
from straitruns.adapters.run_queue import RunQueue
from straitruns.adapters.secrets import admin_secret, run_token_secret
from straitruns.adapters.store.access import AccessStore
from straitruns.adapters.store.dependencies import DependencyStore
from straitruns.adapters.store.engine import EngineStore
from straitruns.adapters.store.jobs import JobStore
from straitruns.adapters.store.runs import RunStore
from straitruns.adapters.store.table import DynamoTable
from straitruns.adapters.tokens import TokenSigner
from straitruns.domain.clock import Clock
from straitruns.domain.ids import IdFactory
from straitruns.domain.timers import TimerPolicy
from straitruns.services.access import AccessService
from straitruns.services.attempts import Attempts
from straitruns.services.dead_letters import DeadLetters
from straitruns.services.dependencies import DependencyGate, DependencyService
from straitruns.services.dispatcher import DispatchConfig, Dispatcher
from straitruns.services.jobs import JobService
from straitruns.services.run_queries import RunQueries
from straitruns.services.run_state import RunStateMachine
from straitruns.services.scheduler import Scheduler
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
    engine: EngineStore
    policy: TimerPolicy
    access: AccessService
    jobs: JobService
    triggers: TriggerService
    queries: RunQueries
    dead_letters: DeadLetters
    attempts: Attempts
    dispatcher: Dispatcher
    scheduler: Scheduler
    dependency_gate: DependencyGate
    dependencies: DependencyService


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
    engine = EngineStore(table)
    policy = TimerPolicy(
        reenqueue_after_secs=settings.reenqueue_after_secs, heartbeat_lost_secs=settings.heartbeat_lost_secs
    )
    state = RunStateMachine(runs, engine, clock, ids, policy)
    dead_letter_queue = RunQueue(sqs_client, settings.dead_letter_queue_url)
    dead_letters = DeadLetters(state, queue, dead_letter_queue, clock)
    state.listeners.append(dead_letters.on_change)
    dependency_store = DependencyStore(table)
    dependency_gate = DependencyGate(dependency_store, runs, state, queue, clock, policy)
    state.listeners.append(dependency_gate.on_change)
    jobs = JobService(
        jobs_store, runs, state, queue, clock, ids, settings.allow_private_endpoints, engine, policy
    )
    queries = RunQueries(runs, settings.list_read_budget)
    attempts = Attempts(state, queue, clock)
    dispatcher = Dispatcher(
        runs,
        engine,
        jobs_store,
        state,
        queue,
        dead_letters,
        attempts,
        HttpExecutor(settings.allow_private_endpoints),
        TokenSigner(lambda: run_token_secret(settings)),
        clock,
        ids,
        DispatchConfig(settings.public_url, settings.heartbeat_interval_secs),
    )
    return Services(
        settings=settings,
        clock=clock,
        ids=ids,
        table=table,
        runs=runs,
        jobs_store=jobs_store,
        queue=queue,
        state=state,
        engine=engine,
        policy=policy,
        access=AccessService(AccessStore(table), clock, ids, lambda: admin_secret(settings)),
        jobs=jobs,
        triggers=TriggerService(jobs_store, runs, queue, clock, ids, policy, dependency_gate),
        queries=queries,
        dead_letters=dead_letters,
        attempts=attempts,
        dispatcher=dispatcher,
        scheduler=Scheduler(runs, engine, jobs_store, state, attempts, queue, clock, policy),
        dependency_gate=dependency_gate,
        dependencies=DependencyService(dependency_store, dependency_gate, jobs, queries, clock, ids),
    )
