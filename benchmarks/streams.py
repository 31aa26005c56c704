"""`make bench`, the streams section (spec 7): on the local stack that `make bench` started,

- latency: a client holds `GET /v1/runs/{id}/stream` open on the stack's API while BENCH_STREAM_EVENTS
  (default 80) SDK events are written to the run, at random intervals of 20-500 ms, the way the
  in-run plane writes them (EngineStore.append_event on the stack's DynamoDB Local). For each event:
  the time from its write returning to the client holding its frame; p50, p95 and max are printed
  (goal: p95 <= 500 ms);
- idle cost: the stream app, in this process on the same table, holds a stream of a run nothing writes
  to for BENCH_STREAM_IDLE_SECS (default 15) after a warm-up; every DynamoDB request it makes is
  counted (botocore's before-call hook), and printed as requests per minute.

Runs are created `delayed` a day ahead, so no dispatcher or scheduler writes to them meanwhile.
"""

import os
import random
import re
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from straitruns.adapters.clock import SystemClock
from straitruns.adapters.id_factory import UlidFactory
from straitruns.adapters.store.engine import EngineStore
from straitruns.adapters.store.table import DynamoTable
from straitruns.api.app import create_app
from straitruns.domain.ids import IdKind
from straitruns.domain.models import Event, EventLevel
from straitruns.local.dev import use_fake_aws_credentials
from straitruns.settings import Settings
from straitruns.wiring import aws_clients, build_services
from tests.e2e.runner import Banner
from tests.support.live import serve

TABLE_NAME = "strait-runs"  # the runner's table (it is started without STRAIT_TABLE_NAME)
WARM_UP_SECS = 3.0
GAP_RANGE_SECS = (0.02, 0.5)
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9/bench"


class StreamBenchmarkError(RuntimeError):
    """The streams cannot be measured (the reason is the message)."""


@dataclass(frozen=True)
class StreamFigures:
    latencies_ms: list[float]
    idle_requests: int
    idle_secs: float
    poll_max_secs: float

    def lines(self) -> list[str]:
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        per_minute = self.idle_requests * 60 / self.idle_secs
        return [
            f"  stream latency, event written to frame received ({len(self.latencies_ms)} events, "
            f"one client): p50 {cuts[49]:.0f} ms, p95 {cuts[94]:.0f} ms, max {max(self.latencies_ms):.0f} ms "
            "(goal p95 <= 500 ms)",
            f"  idle stream: {per_minute:.0f} store requests per minute ({self.idle_requests} in "
            f"{self.idle_secs:.0f} s after a {WARM_UP_SECS:.0f} s warm-up; one Query per poll, "
            f"polls every {self.poll_max_secs} s when idle)",
        ]


def measure_streams(banner: Banner, http: httpx.Client) -> list[str]:
    """The figures of the streams section, as printed lines."""
    events = _positive_int("BENCH_STREAM_EVENTS", 80)
    idle_secs = float(_positive_int("BENCH_STREAM_IDLE_SECS", 15))
    use_fake_aws_credentials(os.environ)  # the stack's engines take any; never a real account's
    settings = _stack_settings(banner)
    job_id = _job(http, banner)
    latencies = _latencies(banner, http, settings, _delayed_run(http, banner, job_id), events)
    idle_requests = _idle_requests(banner, settings, _delayed_run(http, banner, job_id), idle_secs)
    figures = StreamFigures(latencies, idle_requests, idle_secs, settings.sse_poll_max_secs)
    return figures.lines()


def _latencies(
    banner: Banner, http: httpx.Client, settings: Settings, run_id: str, count: int
) -> list[float]:
    dynamodb, _ = aws_clients(settings)
    store = EngineStore(DynamoTable(dynamodb, TABLE_NAME))
    arrived: dict[int, float] = {}
    ready = threading.Event()
    failure: list[BaseException] = []

    def client() -> None:
        try:
            with http.stream("GET", f"/v1/runs/{run_id}/stream", headers=banner.auth, timeout=60) as response:
                for line in response.iter_lines():
                    ready.set()
                    if line.startswith("id: "):
                        arrived[int(line[4:])] = time.monotonic()
                    if len(arrived) > count:
                        return
        except BaseException as error:  # reported by the caller
            failure.append(error)
            ready.set()

    reader = threading.Thread(target=client, name="bench-stream", daemon=True)
    reader.start()
    if not ready.wait(10) or failure:
        raise StreamBenchmarkError(f"the stream did not open: {failure}")
    written: dict[int, float] = {}
    for _ in range(count):
        time.sleep(random.uniform(*GAP_RANGE_SECS))
        event = store.append_event(run_id, lambda sequence: _event(run_id, sequence))
        written[event.sequence] = time.monotonic()
    reader.join(10)
    missing = sorted(set(written) - set(arrived))
    if missing or failure:
        raise StreamBenchmarkError(f"the stream missed events {missing[:10]} ({failure})")
    return [(arrived[sequence] - moment) * 1000 for sequence, moment in written.items()]


def _idle_requests(banner: Banner, settings: Settings, run_id: str, idle_secs: float) -> int:
    dynamodb, sqs = aws_clients(settings)
    requests = 0

    def count(**_: Any) -> None:
        nonlocal requests
        requests += 1

    services = build_services(settings, dynamodb_client=dynamodb, sqs_client=sqs)
    with (
        serve(create_app(lambda: services)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
        client.stream("GET", f"/v1/runs/{run_id}/stream", headers=banner.auth) as response,
    ):
        if response.status_code != 200:
            raise StreamBenchmarkError(f"the idle stream answered {response.status_code}")
        lines = response.iter_lines()  # kept open: closing the iterator would close the connection
        next(lines)  # the first bytes
        time.sleep(WARM_UP_SECS)
        dynamodb.meta.events.register("before-call.dynamodb", count)
        time.sleep(idle_secs)
        dynamodb.meta.events.unregister("before-call.dynamodb", count)
        lines.close()
    return requests


def _stack_settings(banner: Banner) -> Settings:
    """Settings reaching the stack's DynamoDB Local (and SQS), with the stream defaults."""
    urls = re.findall(r"https?://[^\s,)]+", banner.backend)
    if not urls:
        raise StreamBenchmarkError(f"cannot tell where the stack's DynamoDB is: {banner.backend!r}")
    return Settings(
        table_name=TABLE_NAME,
        dynamodb_endpoint_url=urls[0],
        sqs_endpoint_url=urls[-1],
        admin_secret=banner.admin_secret,
    )


def _job(http: httpx.Client, banner: Banner) -> str:
    body = {"slug": "bench-stream", "name": "bench-stream", "endpoint_url": UNREACHABLE_ENDPOINT}
    response = http.post("/v1/jobs", json=body, headers=banner.auth)
    if response.status_code != 201:
        raise StreamBenchmarkError(
            f"creating the stream job answered {response.status_code}: {response.text}"
        )
    return str(response.json()["id"])


def _delayed_run(http: httpx.Client, banner: Banner, job_id: str) -> str:
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = http.post(f"/v1/jobs/{job_id}/trigger", json={"scheduled_at": later}, headers=banner.auth)
    if response.status_code != 201:
        raise StreamBenchmarkError(f"a trigger answered {response.status_code}: {response.text}")
    return str(response.json()["id"])


_IDS = UlidFactory(SystemClock())


def _event(run_id: str, sequence: int) -> Event:
    return Event(
        id=_IDS.new(IdKind.EVENT),
        run_id=run_id,
        sequence=sequence,
        type="log",
        level=EventLevel.INFO,
        message=f"bench event {sequence}",
        created_at=datetime.now(UTC),
    )


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise StreamBenchmarkError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)
