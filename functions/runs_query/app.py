"""Lambda function `runs_query`: the `runs_query` endpoint group (see straitruns.api.app.GROUPS)."""

from straitruns.entry import http_handler

handler = http_handler("runs_query")
