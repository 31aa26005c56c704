"""Builds the adapters and use cases from settings, once per process (entry points call this)."""

from dataclasses import dataclass
from typing import Any

from straitruns.adapters.clock import SystemClock
from straitruns.adapters.executor import HttpExecutor
from straitruns.adapters.id_factory import UlidFactory
from straitruns.adapters.run_queue import RunQueue
from straitruns.adapters.secrets import admin_secret, run_token_secret
from straitruns.adapters.store.access import AccessStore
from straitruns.adapters.store.annotations import AnnotationStore
from straitruns.adapters.store.concurrency import ConcurrencyStore
from straitruns.adapters.store.dependencies import DependencyStore
from straitruns.adapters.store.engine import EngineStore
from straitruns.adapters.store.jobs import JobStore
from straitruns.adapters.store.run_family import RunFamilyStore
from straitruns.adapters.store.runs import RunStore
from straitruns.adapters.store.stream_reads import StreamReads
from straitruns.adapters.store.stream_slots import StreamSlotStore
from straitruns.adapters.store.table import DynamoTable
from straitruns.adapters.store.telemetry import TelemetryStore
from straitruns.adapters.tokens import TokenSigner
from straitruns.domain.clock import Clock
from straitruns.domain.ids import IdFactory
from straitruns.domain.timers import TimerPolicy
from straitruns.services.access import AccessService
from straitruns.services.attempts import Attempts
from straitruns.services.bulk import BulkLimits, BulkOperations
from straitruns.services.cancellation import Cancellation
from straitruns.services.concurrency import ConcurrencyQueues
from straitruns.services.dead_letters import DeadLetters
from straitruns.services.dependencies import DependencyGate, DependencyService
from straitruns.services.dispatcher import DispatchConfig, Dispatcher
from straitruns.services.effects import EffectsService
from straitruns.services.event_log import EventLog
from straitruns.services.in_run import InRunPlane
from straitruns.services.jobs import JobService
from straitruns.services.run_family import RunFamily
from straitruns.services.run_queries import RunQueries
from straitruns.services.run_state import RunStateMachine
from straitruns.services.run_telemetry import RunTelemetry
from straitruns.services.run_tokens import RunTokenGuard
from straitruns.services.scheduler import Scheduler
from straitruns.services.sse_tokens import SseTokenService
from straitruns.services.steering import RunSteering
from straitruns.services.streams import StreamConfig, StreamLimiter, StreamService
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
    telemetry: RunTelemetry
    event_log: EventLog
    in_run: InRunPlane
    streams: StreamService
    sse_tokens: SseTokenService
    cancellation: Cancellation
    steering: RunSteering
    bulk: BulkOperations
    concurrency: ConcurrencyQueues
    effects: EffectsService


def aws_clients(settings: Settings) -> tuple[Any, Any]:
    """Low-level DynamoDB and SQS clients for the configured endpoints."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)
    session = boto3.session.Session(region_name=settings.region)
    dynamodb = session.client("dynamodb", endpoint_url=settings.dynamodb_endpoint_url, config=config)
    sqs = session.client("sqs", endpoint_url=settings.sqs_endpoint_url, config=config)
    return dynamodb, sqs


def streams_client(settings: Settings) -> Any:
    """A DynamoDB Streams client for the configured endpoint (account-based endpoints off: moto's
    streams answer only on the regional one)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=5,
        read_timeout=30,
        account_id_endpoint_mode="disabled",
    )
    session = boto3.session.Session(region_name=settings.region)
    return session.client("dynamodbstreams", endpoint_url=settings.dynamodb_endpoint_url, config=config)


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
    runs = RunStore(table, settings.index_shards)
    jobs_store = JobStore(table)
    queue = RunQueue(sqs_client, settings.run_queue_url)
    engine = EngineStore(table)
    policy = TimerPolicy(
        reenqueue_after_secs=settings.reenqueue_after_secs, heartbeat_lost_secs=settings.heartbeat_lost_secs
    )
    state = RunStateMachine(runs, engine, clock, ids, policy)
    dead_letter_queue = RunQueue(sqs_client, settings.dead_letter_queue_url)
    dead_letters = DeadLetters(state, queue, dead_letter_queue, clock)
    concurrency = ConcurrencyQueues(ConcurrencyStore(table), runs, queue)
    dependency_store = DependencyStore(table)
    dependency_gate = DependencyGate(dependency_store, runs, state, queue, clock, policy)
    jobs = JobService(
        jobs_store,
        runs,
        state,
        queue,
        clock,
        ids,
        settings.allow_private_endpoints,
        engine,
        policy,
        concurrency,
    )
    queries = RunQueries(runs, settings.list_read_budget, jobs_store)
    attempts = Attempts(state, queue, clock)
    triggers = TriggerService(
        jobs_store,
        runs,
        queue,
        clock,
        ids,
        policy,
        dependency_gate,
        state,
        concurrency,
        settings.bulk_workers,
    )
    cancellation = Cancellation(runs, state, engine, clock)
    telemetry_store = TelemetryStore(table)
    signer = TokenSigner(lambda: run_token_secret(settings))
    steering = RunSteering(
        queries,
        runs,
        jobs_store,
        state,
        queue,
        dead_letters,
        triggers,
        cancellation,
        telemetry_store,
        clock,
        policy,
        settings.machine_presets,
    )
    event_log = EventLog(telemetry_store, clock)
    run_telemetry = RunTelemetry(queries, telemetry_store, event_log, settings.list_read_budget)
    family = RunFamily(runs, RunFamilyStore(table), jobs_store, triggers, state, queue, clock, policy)
    run_tokens = RunTokenGuard(signer, runs, clock)
    in_run = InRunPlane(
        run_tokens, telemetry_store, run_telemetry, AnnotationStore(table), engine, state, family, clock, ids
    )
    dispatcher = Dispatcher(
        runs,
        engine,
        jobs_store,
        state,
        queue,
        dead_letters,
        attempts,
        concurrency,
        HttpExecutor(settings.allow_private_endpoints),
        signer,
        clock,
        ids,
        DispatchConfig(settings.public_url, settings.heartbeat_interval_secs),
        checkpoints=telemetry_store,
    )
    effects = EffectsService(
        runs, jobs_store, dependency_gate, family, cancellation, dead_letters, concurrency
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
        triggers=triggers,
        queries=queries,
        dead_letters=dead_letters,
        attempts=attempts,
        dispatcher=dispatcher,
        scheduler=Scheduler(
            runs,
            engine,
            jobs_store,
            state,
            attempts,
            queue,
            clock,
            policy,
            dead_letters,
            cancellation,
            concurrency,
        ),
        dependency_gate=dependency_gate,
        dependencies=DependencyService(dependency_store, dependency_gate, jobs, queries, clock, ids),
        telemetry=run_telemetry,
        event_log=event_log,
        in_run=in_run,
        streams=_stream_service(table, clock, StreamConfig.from_settings(settings)),
        sse_tokens=SseTokenService(signer, clock, settings.sse_token_ttl_secs),
        cancellation=cancellation,
        steering=steering,
        bulk=BulkOperations(
            runs, jobs_store, steering, cancellation, dead_letters, BulkLimits(workers=settings.bulk_workers)
        ),
        concurrency=concurrency,
        effects=effects,
    )


def _stream_service(table: DynamoTable, clock: Clock, config: StreamConfig) -> StreamService:
    """The live streams: reads of the run's items, and the open-stream caps kept in the table."""
    limiter = StreamLimiter(StreamSlotStore(table), clock, config)
    return StreamService(StreamReads(table), limiter, clock, config)
