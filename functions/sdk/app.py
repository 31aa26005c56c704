"""Lambda function `sdk`: the in-run plane (see straitruns.api.app.GROUPS)."""

from straitruns.entry import http_handler

handler = http_handler("sdk")
