"""`python -m straitruns.migrations`: brings a table to the current stored layout.

Reads the table and endpoint from the same variables as the service (STRAIT_TABLE_NAME,
STRAIT_REGION, STRAIT_DYNAMODB_ENDPOINT_URL); `--pages N` stops after N scan pages (run it again to
continue). `make dev` runs it by itself on a data folder written before the current layout.
"""

import argparse
import sys

from straitruns.adapters.store.table import DynamoTable
from straitruns.migrations.runs_v2 import migrate
from straitruns.settings import Settings
from straitruns.wiring import aws_clients


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m straitruns.migrations", description=__doc__)
    parser.add_argument("--table", help="table name (default: STRAIT_TABLE_NAME)")
    parser.add_argument("--pages", type=int, default=None, help="stop after this many scan pages")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    dynamodb, _ = aws_clients(settings)
    table = DynamoTable(dynamodb, args.table or settings.table_name)
    report = migrate(table, max_pages=args.pages, progress=lambda line: print(line, flush=True))
    state = "done" if report.done else "stopped (run again to continue)"
    print(
        f"migration {state}: {report.runs_converted} runs converted, {report.runs_already_converted} "
        f"already converted, {report.jobs_counted} jobs counted, {report.projects_indexed} projects and "
        f"{report.api_keys_indexed} API keys indexed, {report.pages} pages read"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
