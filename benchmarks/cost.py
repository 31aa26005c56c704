"""What a run costs, and what DynamoDB Local itself can do (part of `make bench`).

- `measure_run_cost`: 100 simple runs (a 2 KB payload, two metadata pairs, an endpoint that echoes
  the payload) through the API in process, on DynamoDB Local asked for `ReturnConsumedCapacity=
  INDEXES` on every request, dispatched and their effects delivered as the engine does; prints the
  DynamoDB requests, write and read units, and SQS requests per run, and the AWS cost per million
  runs at list prices, itemised per service.
- `measure_dynamodb_local_rate`: 8 threads of single-item puts, then 8 threads of three-item
  transactions, for a few seconds each: the requests per second this machine's DynamoDB Local
  serves, from which a run's request mix gives an upper bound of runs per second.
"""

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from straitruns.adapters.clock import SystemClock
from straitruns.local.processes import DynamoDBLocal, MotoServer
from tests.support.app import api_client
from tests.support.backends import dynamodb_local_client
from tests.support.capacity import CapacityMeter
from tests.support.endpoint import JobEndpoint
from tests.support.engine import Engine, engine_services
from tests.support.workloads import METADATA, echo, two_kb_payload

COST_RUNS = 100
RATE_SECONDS = 3.0
RATE_THREADS = 8

# AWS list prices, us-east-1, on demand (USD), December 2026.
DYNAMODB_WRITE_UNIT = 0.625 / 1e6
DYNAMODB_READ_UNIT = 0.125 / 1e6
SQS_REQUEST = 0.40 / 1e6
LAMBDA_REQUEST = 0.20 / 1e6
LAMBDA_GB_SECOND_ARM = 0.0000133334
API_GATEWAY_REST_REQUEST = 3.50 / 1e6
FUNCTION_MEMORY_GB = 0.5
# Lambda time per invocation assumed for the cost (the dispatcher's call to a fast endpoint, the
# API function and the effects function's batch).
LAMBDA_SECONDS_PER_INVOCATION = 0.1
STEP_FUNCTIONS_TRANSITION = 25.0 / 1e6


@dataclass(frozen=True)
class RunCost:
    requests: float
    write_units: float
    read_units: float
    sqs_requests: float
    requests_by_operation: dict[str, float]
    transactions: float

    def dollars_per_million(self) -> dict[str, float]:
        lambda_invocations = 3  # the API function, the dispatcher, the effects function (at most)
        return {
            "DynamoDB": 1e6 * (self.write_units * DYNAMODB_WRITE_UNIT + self.read_units * DYNAMODB_READ_UNIT),
            "SQS": 1e6 * self.sqs_requests * SQS_REQUEST,
            "Lambda": 1e6
            * lambda_invocations
            * (LAMBDA_REQUEST + LAMBDA_SECONDS_PER_INVOCATION * FUNCTION_MEMORY_GB * LAMBDA_GB_SECOND_ARM),
            "API Gateway": 1e6 * API_GATEWAY_REST_REQUEST,
        }


@contextmanager
def _engines() -> Iterator[tuple[str, str]]:
    with DynamoDBLocal() as dynamodb, MotoServer() as sqs:
        yield dynamodb.endpoint_url, sqs.endpoint_url


def measure_run_cost(dynamodb_url: str, sqs_url: str, runs: int = COST_RUNS) -> RunCost:
    sqs: Any = boto3.client(
        "sqs", endpoint_url=sqs_url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    dynamodb = dynamodb_local_client(dynamodb_url)
    table = f"bench-{uuid.uuid4().hex[:10]}"
    services = engine_services(dynamodb, sqs, SystemClock(), table_name=table)
    api = api_client(services, SystemClock())  # type: ignore[arg-type]
    engine = Engine(services)
    with JobEndpoint() as endpoint:
        endpoint.respond(echo)
        job = api.create_job("echo", endpoint_url=endpoint.url)["id"]
        api.trigger(job, {"payload": two_kb_payload(0), "metadata": METADATA})
        engine.drain()
        meter = CapacityMeter()
        meter.attach(services.table.client)
        meter.attach(services.queue.client)
        before = meter.snapshot()
        for number in range(1, runs + 1):
            api.trigger(job, {"payload": two_kb_payload(number), "metadata": METADATA})
            engine.drain()
        spent = meter.since(before)
    dynamodb.delete_table(TableName=table)
    by_operation = {name: count / runs for name, count in spent.requests.items()}
    # The SQS requests the service pays for: its sends, and the event source's receive and delete.
    sqs_requests = spent.sqs_requests(
        "SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch"
    )
    sqs_requests += runs  # one receive per message as the event source mapping makes it
    return RunCost(
        requests=spent.dynamodb_requests() / runs,
        write_units=spent.write_units / runs,
        read_units=spent.read_units / runs,
        sqs_requests=sqs_requests / runs,
        requests_by_operation=by_operation,
        transactions=spent.requests.get("dynamodb:TransactWriteItems", 0) / runs,
    )


@dataclass(frozen=True)
class LocalRate:
    single_item_per_sec: float
    transactions_per_sec: float

    def runs_per_sec_bound(self, cost: RunCost) -> float:
        """The runs per second DynamoDB Local could serve for this request mix at most."""
        singles = cost.requests - cost.transactions
        seconds = singles / self.single_item_per_sec + cost.transactions / self.transactions_per_sec
        return 1 / seconds if seconds else float("inf")


def measure_dynamodb_local_rate(dynamodb_url: str) -> LocalRate:
    client = dynamodb_local_client(dynamodb_url)
    table = f"rate-{uuid.uuid4().hex[:10]}"
    client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )

    def put(thread: int, n: int) -> None:
        client.put_item(TableName=table, Item={"pk": {"S": f"{thread}-{n}"}, "v": {"S": "x" * 200}})

    def transact(thread: int, n: int) -> None:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": f"t{thread}-{n}-{part}"}, "v": {"S": "x" * 200}},
                    }
                }
                for part in range(3)
            ]
        )

    try:
        return LocalRate(_rate(put), _rate(transact))
    finally:
        client.delete_table(TableName=table)


def _rate(operation: Any) -> float:
    stop = threading.Event()
    done = [0] * RATE_THREADS

    def work(thread: int) -> None:
        n = 0
        while not stop.is_set():
            operation(thread, n)
            n += 1
        done[thread] = n

    threads = [threading.Thread(target=work, args=(number,)) for number in range(RATE_THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(RATE_SECONDS)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def cost_report(cost: RunCost, rate: LocalRate) -> list[str]:
    dollars = cost.dollars_per_million()
    operations = ", ".join(
        f"{count:.2f} {name.split(':', 1)[1]}"
        for name, count in sorted(cost.requests_by_operation.items())
        if name.startswith("dynamodb:")
    )
    return [
        f"Cost of one simple run ({COST_RUNS} runs: 2 KB payload, two metadata pairs, echoing endpoint; "
        "DynamoDB Local, ReturnConsumedCapacity=INDEXES):",
        f"  DynamoDB: {cost.requests:.1f} requests per run ({operations})",
        f"  DynamoDB: {cost.write_units:.1f} write units, {cost.read_units:.1f} read units per run",
        f"  SQS: {cost.sqs_requests:.1f} requests per run (send, receive, delete)",
        "  AWS at list prices, per million runs: "
        + ", ".join(f"{service} ${amount:.2f}" for service, amount in dollars.items())
        + f"; total ${sum(dollars.values()):.2f} (Step Functions Standard alone: "
        f"${4 * 1e6 * STEP_FUNCTIONS_TRANSITION:.0f} for four transitions)",
        f"DynamoDB Local on this machine ({RATE_THREADS} threads): "
        f"{rate.single_item_per_sec:.0f} single-item puts/s, {rate.transactions_per_sec:.0f} three-item "
        f"transactions/s; this request mix is bounded near {rate.runs_per_sec_bound(cost):.1f} runs/s",
    ]


def measure() -> tuple[RunCost, LocalRate, list[str]]:
    with _engines() as (dynamodb_url, sqs_url):
        rate = measure_dynamodb_local_rate(dynamodb_url)
        cost = measure_run_cost(dynamodb_url, sqs_url)
    return cost, rate, cost_report(cost, rate)
