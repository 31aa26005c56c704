"""`make bench`: what a run costs, and how fast the local stack takes runs from trigger to completed.

It first measures, in process on DynamoDB Local (benchmarks/cost.py), what one simple run costs in
DynamoDB requests, write and read units and SQS requests, with the AWS cost per million runs at
list prices, and the rate of DynamoDB Local itself, which bounds the runs per second.

It starts `python -m straitruns.local.dev` as `make dev` does (through the e2e runner: a temporary
data dir, free ports, STRAIT_LOCAL_BACKEND as set, default dynamodb-local) and a no-op job endpoint
(a stdlib HTTP server answering 200 `{}`). It triggers SINGLE_RUNS runs one at a time (each
once the one before has ended: the latency of an idle stack), times a bulk trigger of 500 against
25 single triggers side by side (runs scheduled an hour ahead, so the dispatcher stays idle), then
a burst of BENCH_RUNS runs (default 500) through the HTTP API from BENCH_CLIENTS concurrent clients
(default 8), waits until every run of the burst has ended, and prints:

- throughput: completed runs per second, from the first run's `created_at` to the last one's
  `finished_at`, and as a fraction of the bound DynamoDB Local's own rate sets for the run's
  request mix;
- latency: p50 and p95 (and max) of each completed run's `finished_at - created_at`; in a burst
  that outpaces the dispatcher this is mostly the time a run waits in the queue (the median
  execution trace printed beside it shows the split);
- streams (benchmarks/streams.py): p50/p95 from an event's write to a stream client receiving it,
  and the store requests per minute of an idle open stream.

A benchmark, not a test: it prints figures and never fails on a number. It exits 1 only when it
cannot measure: the stack does not start, a trigger is refused, or the runs have not all ended
within BENCH_WAIT_SECS (default 90).
"""

import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from benchmarks.cost import measure as measure_cost
from benchmarks.streams import StreamBenchmarkError, measure_streams
from tests.e2e.runner import Banner, DevRunner, RunnerFailedError

TERMINAL = {
    "completed",
    "failed",
    "timed_out",
    "crashed",
    "system_failed",
    "canceled",
    "expired",
    "dead_letter",
}
IN_FLIGHT = ("queued", "dequeued", "executing")
SINGLE_RUNS = 10
SINGLE_RUN_WAIT_SECS = 30
POLL_SECS = 0.25
PAGE_LIMIT = 100
BULK_ITEMS = 500
BULK_SINGLES = 25


class BenchmarkError(RuntimeError):
    """The benchmark cannot measure (the reason is the message)."""


@dataclass(frozen=True)
class Config:
    runs: int
    clients: int
    wait_secs: float
    backend: str

    @classmethod
    def from_env(cls) -> "Config":
        return cls(
            runs=_positive_int("BENCH_RUNS", 500),
            clients=_positive_int("BENCH_CLIENTS", 8),
            wait_secs=float(_positive_int("BENCH_WAIT_SECS", 90)),
            backend=os.environ.get("STRAIT_LOCAL_BACKEND") or "dynamodb-local",
        )


class _NoOpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def noop_endpoint() -> Iterator[str]:
    """A job endpoint on loopback answering every POST with 200 `{}`; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoOpHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="noop-endpoint", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/run"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def local_stack(backend: str) -> Iterator[Banner]:
    """`make dev` on a temporary data dir; stopped with SIGINT (killed if it will not stop)."""
    with tempfile.TemporaryDirectory(prefix="strait-bench-") as base:
        runner = DevRunner(Path(base) / "data", Path(base) / "runner.log", backend)
        try:
            try:
                banner = runner.start()
            except RunnerFailedError as error:
                raise BenchmarkError(f"the local stack did not start: {error}") from error
            yield banner
            runner.stop()
        finally:
            runner.kill()


def trigger_all(http: httpx.Client, banner: Banner, job_id: str, config: Config) -> list[str]:
    """Triggers config.runs runs from config.clients threads; returns their ids."""

    def trigger(number: int) -> str:
        body = {"payload": {"n": number}}
        response = http.post(f"/v1/jobs/{job_id}/trigger", json=body, headers=banner.auth)
        if response.status_code != 201:
            raise BenchmarkError(f"trigger {number} answered {response.status_code}: {response.text}")
        return str(response.json()["id"])

    with ThreadPoolExecutor(config.clients, thread_name_prefix="trigger") as pool:
        return list(pool.map(trigger, range(config.runs)))


def runs_of_job(http: httpx.Client, banner: Banner, job_id: str) -> list[dict[str, Any]]:
    """Every run of the job, page by page."""
    params: dict[str, Any] = {"project_id": banner.project_id, "job_id": job_id, "limit": PAGE_LIMIT}
    runs: list[dict[str, Any]] = []
    while True:
        response = http.get("/v1/runs", params=params, headers=banner.auth)
        if response.status_code != 200:
            raise BenchmarkError(f"listing runs answered {response.status_code}: {response.text}")
        runs.extend(response.json())
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            return runs
        params["cursor"] = cursor


def any_in_flight(http: httpx.Client, banner: Banner, job_id: str) -> bool:
    """Whether a run of the job is still queued, dequeued or executing: a one-item page per status,
    so that waiting costs the stack next to nothing."""
    for status in IN_FLIGHT:
        params = {"project_id": banner.project_id, "job_id": job_id, "status": status, "limit": 1}
        response = http.get("/v1/runs", params=params, headers=banner.auth)
        if response.status_code != 200:
            raise BenchmarkError(f"listing runs answered {response.status_code}: {response.text}")
        if response.json():
            return True
    return False


def wait_until_ended(
    http: httpx.Client, banner: Banner, job_id: str, count: int, wait_secs: float
) -> list[dict[str, Any]]:
    """The job's runs once `count` of them have ended. Raises BenchmarkError after `wait_secs`."""
    deadline = time.monotonic() + wait_secs
    while True:
        if not any_in_flight(http, banner, job_id):
            runs = runs_of_job(http, banner, job_id)
            if sum(run["status"] in TERMINAL for run in runs) >= count:
                return runs
        if time.monotonic() > deadline:
            statuses = Counter(run["status"] for run in runs_of_job(http, banner, job_id))
            raise BenchmarkError(f"after {wait_secs:.0f} s not all {count} runs had ended: {dict(statuses)}")
        time.sleep(POLL_SECS)


def report(
    runs: list[dict[str, Any]],
    single: list[float],
    config: Config,
    started_secs: float,
    trigger_secs: float,
    bound: float,
) -> str:
    """The figures, as printed."""
    statuses = Counter(run["status"] for run in runs)
    completed = [run for run in runs if run["status"] == "completed"]
    lines = [
        f"Strait Runs local benchmark: {config.runs} runs, backend {config.backend}, "
        f"{config.clients} trigger clients, no-op endpoint",
        f"  stack started in {started_secs:.1f} s",
        f"  one run at a time ({len(single)} runs): trigger to completed "
        f"median {statistics.median(single) if single else float('nan'):.0f} ms, "
        f"max {max(single, default=float('nan')):.0f} ms",
        f"  burst: triggered {config.runs} runs in {trigger_secs:.2f} s "
        f"({config.runs / trigger_secs:.1f} triggers/s); ended: "
        + ", ".join(f"{count} {status}" for status, count in statuses.most_common()),
    ]
    if len(completed) < 2:
        return "\n".join([*lines, "  too few completed runs for figures"])
    span = (
        max(_moment(run["finished_at"]) for run in completed)
        - min(_moment(run["created_at"]) for run in completed)
    ).total_seconds()
    latencies_ms = sorted(_latency_ms(run) for run in completed)
    cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    throughput = len(completed) / span
    lines += [
        f"  throughput, trigger to completed: {throughput:.1f} runs/s "
        f"({len(completed)} runs in {span:.2f} s from the first created_at to the last finished_at), "
        f"{100 * throughput / bound:.0f} % of the {bound:.1f} runs/s DynamoDB Local allows this request mix",
        f"  latency, trigger to completed: p50 {cuts[49]:.0f} ms, p95 {cuts[94]:.0f} ms, "
        f"max {latencies_ms[-1]:.0f} ms",
        f"  median execution trace: {_median_trace(completed)}",
    ]
    return "\n".join(lines)


def _latency_ms(run: dict[str, Any]) -> float:
    return (_moment(run["finished_at"]) - _moment(run["created_at"])).total_seconds() * 1000


def _median_trace(runs: list[dict[str, Any]]) -> str:
    """Where a run's time went (spec 4.6), the median of each phase over `runs`."""
    traces = [run["execution_trace"] for run in runs if run.get("execution_trace")]
    if not traces:
        return "none recorded"
    phases = ("queue_wait_ms", "dequeue_ms", "dispatch_ms", "total_ms")
    return ", ".join(f"{phase} {statistics.median(trace[phase] for trace in traces):.0f}" for phase in phases)


def run_benchmark(config: Config) -> str:
    """Starts everything, measures, stops everything; returns the report."""
    cost, rate, cost_lines = measure_cost()
    print("\n".join(cost_lines), flush=True)
    clock = time.monotonic()
    with noop_endpoint() as endpoint_url, local_stack(config.backend) as banner:
        started_secs = time.monotonic() - clock
        limits = httpx.Limits(max_connections=config.clients + 2)
        with httpx.Client(base_url=banner.api_url, timeout=30.0, limits=limits) as http:
            single = one_at_a_time(http, banner, create_job(http, banner, "bench-single", endpoint_url))
            bulk_lines = bulk_against_singles(
                http, banner, create_job(http, banner, "bench-bulk", endpoint_url)
            )
            job_id = create_job(http, banner, "bench-burst", endpoint_url)
            clock = time.monotonic()
            trigger_all(http, banner, job_id, config)
            trigger_secs = time.monotonic() - clock
            runs = wait_until_ended(http, banner, job_id, config.runs, config.wait_secs)
            stream_lines = measure_streams(banner, http)
    bound = rate.runs_per_sec_bound(cost)
    lines = report(runs, single, config, started_secs, trigger_secs, bound)
    return "\n".join([*cost_lines, lines, *bulk_lines, *stream_lines])


def bulk_against_singles(http: httpx.Client, banner: Banner, job_id: str) -> list[str]:
    """A bulk trigger of 500 runs against 25 single triggers, the runs scheduled an hour ahead
    (the dispatcher stays idle), each timed as the client sees it."""
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    clock = time.monotonic()
    for number in range(BULK_SINGLES):
        body = {"payload": {"n": number}, "scheduled_at": later}
        response = http.post(f"/v1/jobs/{job_id}/trigger", json=body, headers=banner.auth)
        if response.status_code != 201:
            raise BenchmarkError(f"a trigger answered {response.status_code}: {response.text}")
    singles_secs = time.monotonic() - clock
    items = [{"payload": {"n": number}, "scheduled_at": later} for number in range(BULK_ITEMS)]
    clock = time.monotonic()
    response = http.post(f"/v1/jobs/{job_id}/trigger/bulk", json={"items": items}, headers=banner.auth)
    bulk_secs = time.monotonic() - clock
    if response.status_code != 201 or response.json()["created"] != BULK_ITEMS:
        raise BenchmarkError(f"the bulk trigger answered {response.status_code}: {response.text[:300]}")
    return [
        f"  bulk trigger of {BULK_ITEMS} runs: {bulk_secs * 1000:.0f} ms; {BULK_SINGLES} single triggers "
        f"side by side: {singles_secs * 1000:.0f} ms ({bulk_secs / singles_secs:.2f} of their time)"
    ]


def create_job(http: httpx.Client, banner: Banner, slug: str, endpoint_url: str) -> str:
    response = http.post(
        "/v1/jobs", json={"slug": slug, "name": slug, "endpoint_url": endpoint_url}, headers=banner.auth
    )
    if response.status_code != 201:
        raise BenchmarkError(f"creating the job answered {response.status_code}: {response.text}")
    return str(response.json()["id"])


def one_at_a_time(http: httpx.Client, banner: Banner, job_id: str) -> list[float]:
    """Trigger-to-completed latencies (ms) of SINGLE_RUNS runs, each triggered once the one before
    has ended: the latency of a stack with nothing else to do (the first one also warms it up)."""
    latencies: list[float] = []
    for number in range(SINGLE_RUNS):
        response = http.post(
            f"/v1/jobs/{job_id}/trigger", json={"payload": {"n": number}}, headers=banner.auth
        )
        if response.status_code != 201:
            raise BenchmarkError(f"a trigger answered {response.status_code}: {response.text}")
        run = _wait_for_end(http, banner, str(response.json()["id"]))
        if run["status"] == "completed":
            latencies.append(_latency_ms(run))
    return latencies


def _wait_for_end(http: httpx.Client, banner: Banner, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + SINGLE_RUN_WAIT_SECS
    while True:
        run: dict[str, Any] = http.get(f"/v1/runs/{run_id}", headers=banner.auth).json()
        if run["status"] in TERMINAL:
            return run
        if time.monotonic() > deadline:
            raise BenchmarkError(f"run {run_id} is still {run['status']} after {SINGLE_RUN_WAIT_SECS} s")
        time.sleep(0.02)


def main() -> int:
    try:
        config = Config.from_env()
        print(f"Benchmarking {config.runs} runs on the local stack ({config.backend})...", flush=True)
        print(run_benchmark(config), flush=True)
    except (BenchmarkError, StreamBenchmarkError) as error:
        print(f"benchmark: {error}", file=sys.stderr)
        return 1
    return 0


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise BenchmarkError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


if __name__ == "__main__":
    sys.exit(main())
