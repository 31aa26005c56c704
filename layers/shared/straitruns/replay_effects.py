"""`python -m straitruns.replay_effects`: carries out effects that failed past their retries
(docs/engine.md#effects-that-keep-failing).

Give it what the effects function's on-failure destination received, one of:
  --queue-url URL      every message on that queue (each deleted once replayed)
  --message FILE       one on-failure record, as JSON
  --shard ID --first SEQ --last SEQ [--stream-arn ARN]
                       the range a log line names (the local stack logs one per batch it gave up on)
With --local the table, queues and endpoints are the running local stack's (`make dev`, read from
its data folder); otherwise they come from the STRAIT_* variables, as for the service.
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from straitruns.adapters.store.run_codec import change_record
from straitruns.adapters.stream_records import DynamoStreamRecords
from straitruns.services.effects_replay import EffectsReplay, FailedBatch, ReplayReport
from straitruns.settings import Settings
from straitruns.wiring import Services, build_services, streams_client


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m straitruns.replay_effects",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--queue-url", help="the effects failure queue to drain")
    source.add_argument("--message", type=Path, help="a file holding one on-failure record")
    source.add_argument("--shard", help="the shard of a failed batch (with --first and --last)")
    parser.add_argument("--first", help="the batch's first sequence number")
    parser.add_argument("--last", help="the batch's last sequence number")
    parser.add_argument("--stream-arn", help="the stream (default: the table's current stream)")
    parser.add_argument("--local", action="store_true", help="use the running local stack's settings")
    parser.add_argument("--data-dir", type=Path, default=None, help="the local stack's data folder")
    arguments = parser.parse_args(argv)
    if arguments.shard and not (arguments.first and arguments.last):
        parser.error("--shard needs --first and --last")
    if not (arguments.queue_url or arguments.message or arguments.shard or arguments.local):
        parser.error("give --queue-url, --message or --shard (or --local: the local stack's failure queue)")
    return arguments


def local_stack(data_dir: Path | None) -> dict[str, Any]:
    """What the running local stack wrote to its data folder (`stack.json`)."""
    from straitruns.local.dev import STACK_FILE, LocalConfig

    folder = data_dir or LocalConfig.from_env(os.environ).data_dir
    path = folder / STACK_FILE
    if not path.exists():
        raise SystemExit(f"no running local stack: {path} does not exist (start it with `make dev`)")
    stack: dict[str, Any] = json.loads(path.read_text())
    return stack


def _batches(arguments: argparse.Namespace, services: Services) -> list[FailedBatch]:
    if arguments.message:
        return [FailedBatch.from_message(json.loads(arguments.message.read_text()))]
    if arguments.shard:
        arn = arguments.stream_arn or _stream_arn(services)
        return [FailedBatch(arn, arguments.shard, arguments.first, arguments.last)]
    return []


def _stream_arn(services: Services) -> str:
    table = services.table.client.describe_table(TableName=services.table.name)["Table"]
    return str(table["LatestStreamArn"])


def _print(report: ReplayReport, batch: FailedBatch) -> None:
    if report.lost:
        print(f"LOST {batch.shard_id} {batch.first}..{batch.last}: {report.lost}")
        return
    print(
        f"replayed {batch.shard_id} {batch.first}..{batch.last}: {report.records} records, "
        f"runs {', '.join(report.runs) or 'none'}, effects {', '.join(report.done) or 'none needed'}"
    )


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    if arguments.local:
        stack = local_stack(arguments.data_dir)
        settings = Settings.model_validate(stack)
        if not (arguments.queue_url or arguments.message or arguments.shard):
            arguments.queue_url = stack["effects_failure_queue_url"]
    else:
        settings = Settings.from_env()
    services = build_services(settings)
    replay = EffectsReplay(
        services.runs, services.effects, DynamoStreamRecords(streams_client(settings)), change_record
    )
    lost = 0
    if arguments.queue_url:
        sqs = services.queue.client
        while True:
            response = sqs.receive_message(
                QueueUrl=arguments.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                batch = FailedBatch.from_message(json.loads(message["Body"]))
                report = replay.replay(batch)
                _print(report, batch)
                lost += bool(report.lost)
                sqs.delete_message(QueueUrl=arguments.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return 1 if lost else 0
    for batch in _batches(arguments, services):
        report = replay.replay(batch)
        _print(report, batch)
        lost += bool(report.lost)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
