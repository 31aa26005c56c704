"""Lambda entry points: each function's app.py is one line that calls into here."""

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

from straitruns.wiring import Services, build_services

# Where a handler finds its services (shared_services by default).
ServicesFactory = Callable[[], Services]


@cache
def shared_services() -> Services:
    """Adapters and use cases, built once per execution environment (not at import time)."""
    from straitruns.settings import get_settings

    return build_services(get_settings())


def http_handler(group: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The API Gateway handler of one endpoint group, through Mangum."""
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging import correlation_paths
    from mangum import Mangum

    from straitruns.api.app import create_app

    logger = Logger(service="strait-runs")
    adapter = Mangum(create_app(shared_services, [group]), lifespan="off", api_gateway_base_path="/")

    @logger.inject_lambda_context(clear_state=True, correlation_id_path=correlation_paths.API_GATEWAY_REST)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result: dict[str, Any] = adapter(event, context)
        return result

    return handler


def asgi_app(group: str) -> "FastAPI":
    """The ASGI app of one endpoint group, for a function that runs uvicorn under the Lambda Web
    Adapter (the stream function: functions/runs_stream/run.sh). Services are built on the first
    request, as for http_handler."""
    from straitruns.api.app import create_app

    return create_app(shared_services, [group])


def sqs_dispatch_handler(
    services: ServicesFactory = shared_services,
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The dispatcher's SQS handler: each record is one run message; records that fail (store or
    queue trouble) are reported as batch item failures and delivered again by SQS.

    `services` is where the handler finds the dispatcher: the environment's (deployed), or the
    local dev runner's, which serves the API and plays this function's event source in one process.
    One handler serves one invocation at a time, as one Lambda execution environment does.
    """
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from straitruns.adapters.run_queue import parse_message

    logger = Logger(service="strait-runs")
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: SQSRecord) -> str:
        try:
            message = parse_message(record.body, record.raw_event.get("messageAttributes"))
        except ValueError:
            logger.warning("dropping a message that is not a run message", message_id=record.message_id)
            return "malformed"
        outcome = services().dispatcher.handle(message)
        logger.info("dispatched", run_id=message.run_id, outcome=outcome)
        return outcome

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(result)

    return handler


def schedule_handler(
    services: ServicesFactory = shared_services,
) -> Callable[[dict[str, Any], Any], dict[str, int]]:
    """The scheduler's handler, invoked by the EventBridge schedule (locally: the dev runner's
    timer, which passes its own `services`, as for sqs_dispatch_handler)."""
    from aws_lambda_powertools import Logger

    logger = Logger(service="strait-runs")

    @logger.inject_lambda_context(clear_state=True)
    def handler(_event: dict[str, Any], _context: Any) -> dict[str, int]:
        done = services().scheduler.tick()
        # A tick with nothing to do is the common case (every second in the local stack): debug only.
        if done:
            logger.info("scheduler tick", extra={"done": done})
        else:
            logger.debug("scheduler tick", extra={"done": done})
        return done

    return handler


def stream_effects_handler(
    services: ServicesFactory = shared_services,
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The effects function's DynamoDB Streams handler (the outbox, docs/engine.md#effects): each
    record is a run state item written with the effects it calls for (`fx`); records that fail are
    reported as batch item failures (by sequence number), so the event source retries from them.

    `services` is where the handler finds the effects service: the environment's (deployed), or the
    local dev runner's, which plays the stream event source against DynamoDB Local's stream.
    """
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

    logger = Logger(service="strait-runs")
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    from straitruns.adapters.store.run_codec import change_record

    def record_handler(record: DynamoDBRecord) -> str:
        change = change_record((record.raw_event.get("dynamodb") or {}).get("NewImage") or {})
        if change is None:
            return "no effect"
        done = services().effects.apply(change)
        logger.info("effects", run_id=change.run_id, status=change.status.value, effects=done)
        return ",".join(done)

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(result)

    return handler
