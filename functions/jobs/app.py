"""Lambda function `jobs`: the `jobs` endpoint group (see straitruns.api.app.GROUPS)."""

from straitruns.entry import http_handler

handler = http_handler("jobs")
