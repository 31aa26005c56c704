"""What one simple run costs in DynamoDB requests and capacity (issue: engine v2), counted on
DynamoDB Local with `ReturnConsumedCapacity=INDEXES` on every request: a trigger through the API
(authentication included) to an endpoint that echoes a 2 KB payload with two metadata pairs, the
dispatch, and the effects of its changes, delivered from the table's stream."""

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from straitruns.adapters.clock import SystemClock
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client
from tests.support.backends import dynamodb_local_client
from tests.support.capacity import CapacityMeter
from tests.support.endpoint import JobEndpoint
from tests.support.engine import Engine, engine_services
from tests.support.workloads import METADATA, echo, two_kb_payload

pytestmark = [pytest.mark.ddblocal, pytest.mark.cost]

RUNS = 20
# The budget of a simple run (a third of the layout before: 18.5 requests, 92 write units).
MAX_REQUESTS = 10
MAX_WRITE_UNITS = 30
MAX_READ_UNITS = 6


@pytest.fixture
def cost_api(dynamodb_local: str, sqs_server: str) -> Iterator[ApiClient]:
    sqs: Any = boto3.client(
        "sqs",
        endpoint_url=sqs_server,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    dynamodb = dynamodb_local_client(dynamodb_local)
    table_name = f"runs-{uuid.uuid4().hex[:12]}"
    services = engine_services(dynamodb, sqs, SystemClock(), table_name=table_name)
    yield api_client(services, SystemClock())  # type: ignore[arg-type]
    dynamodb.delete_table(TableName=table_name)


def _meter(services: Services) -> CapacityMeter:
    meter = CapacityMeter()
    meter.attach(services.table.client)
    meter.attach(services.queue.client)
    return meter


def test_a_simple_run_costs_at_most_a_third_of_the_old_layout(
    cost_api: ApiClient, endpoint: JobEndpoint
) -> None:
    # Given a job whose endpoint echoes the payload, warmed up by one run
    endpoint.respond(echo)
    job = cost_api.create_job("echo", endpoint_url=endpoint.url)["id"]
    engine = Engine(cost_api.services)
    body = {"payload": two_kb_payload(0), "metadata": METADATA}
    assert cost_api.trigger(job, body).status_code == 201
    engine.drain()
    meter = _meter(cost_api.services)
    before = meter.snapshot()

    # When RUNS more runs go from trigger to completed
    run_ids = []
    for number in range(1, RUNS + 1):
        body = {"payload": two_kb_payload(number), "metadata": METADATA}
        response = cost_api.trigger(job, body)
        assert response.status_code == 201, response.text
        run_ids.append(response.json()["id"])
        engine.drain()
    spent = meter.since(before)

    # Then every run completed, and each cost at most the budget
    statuses = {cost_api.services.runs.get(run_id).status.value for run_id in run_ids}  # type: ignore[union-attr]
    assert statuses == {"completed"}
    requests = spent.dynamodb_requests() / RUNS
    write_units = spent.write_units / RUNS
    read_units = spent.read_units / RUNS
    summary = (
        f"per run: {requests:.1f} requests, {write_units:.1f} WCU, {read_units:.1f} RCU ({spent.describe()})"
    )
    assert requests <= MAX_REQUESTS, summary
    assert write_units <= MAX_WRITE_UNITS, summary
    assert read_units <= MAX_READ_UNITS, summary
