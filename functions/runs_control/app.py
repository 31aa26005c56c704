"""Lambda function `runs_control`: the `runs_control` endpoint group (see straitruns.api.app.GROUPS)."""

from straitruns.entry import http_handler

handler = http_handler("runs_control")
