"""The local stack's effects worker alone, in a process a test can kill with SIGKILL:
`python -m tests.support.effects_worker` plays the stream event source of EffectsFunction (the
dev runner's StreamPoller, its checkpoints in --data-dir) against DynamoDB Local, with faults a
test injects through STRAIT_TEST_EFFECT_FAULTS (JSON):

- `{"fail": {"<run id>": n}}`: the effects of that run's changes fail their first n deliveries;
- `{"always_fail": ["<run id>"]}`: they always fail (the batch ends on the failure queue);
- `{"block": ["<run id>"]}`: the worker writes `<data dir>/blocked` and stops inside the batch
  holding that run's change, for the test to kill it there.
"""

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import boto3

from straitruns.adapters.clock import SystemClock
from straitruns.domain.models import ChangeRecord
from straitruns.local.event_sources import effects_event_source
from straitruns.settings import Settings
from straitruns.wiring import build_services

FAULTS_ENV = "STRAIT_TEST_EFFECT_FAULTS"
BLOCKED_FILE = "blocked"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dynamodb", required=True)
    parser.add_argument("--sqs", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--run-queue-url", required=True)
    parser.add_argument("--dead-letter-queue-url", required=True)
    parser.add_argument("--failure-queue-url", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    args = parser.parse_args()
    settings = Settings(
        table_name=args.table,
        run_queue_url=args.run_queue_url,
        dead_letter_queue_url=args.dead_letter_queue_url,
        dynamodb_endpoint_url=args.dynamodb,
        sqs_endpoint_url=args.sqs,
        admin_secret="effects-worker-admin-secret-0123456789abcdef",
        run_token_secret="effects-worker-run-token-secret-0123456789",
    )
    credentials = {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "us-east-1",
    }
    dynamodb = boto3.client("dynamodb", endpoint_url=args.dynamodb, **credentials)
    sqs = boto3.client("sqs", endpoint_url=args.sqs, **credentials)
    services = build_services(settings, dynamodb_client=dynamodb, sqs_client=sqs, clock=SystemClock())
    _inject_faults(services.effects, json.loads(os.environ.get(FAULTS_ENV) or "{}"), args.data_dir)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    poller = effects_event_source(services, data_dir=args.data_dir, failure_queue_url=args.failure_queue_url)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    poller.start()
    print("effects worker ready", flush=True)
    while not stopping.wait(0.1):
        pass
    poller.stop()


def _inject_faults(effects: Any, faults: dict[str, Any], data_dir: Path) -> None:
    apply = effects.apply
    remaining: dict[str, int] = dict(faults.get("fail", {}))

    def faulty(change: ChangeRecord) -> list[str]:
        run_id = change.run_id
        if run_id in faults.get("always_fail", []):
            raise RuntimeError(f"injected: the effects of {run_id} always fail")
        if remaining.get(run_id, 0) > 0:
            remaining[run_id] -= 1
            raise RuntimeError(f"injected: the effects of {run_id} fail")
        done: list[str] = apply(change)
        if run_id in faults.get("block", []):
            (data_dir / BLOCKED_FILE).write_text(run_id)
            while True:  # the test kills the process here, inside the batch
                time.sleep(1)
        return done

    effects.apply = faulty


if __name__ == "__main__":
    main()
