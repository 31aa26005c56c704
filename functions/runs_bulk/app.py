"""Lambda function `runs_bulk`: the `runs_bulk` endpoint group (see straitruns.api.app.GROUPS)."""

from straitruns.entry import http_handler

handler = http_handler("runs_bulk")
