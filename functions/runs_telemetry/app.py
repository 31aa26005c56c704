"""Lambda function `runs_telemetry`: what runs recorded (see straitruns.api.app.GROUPS)."""

from straitruns.entry import http_handler

handler = http_handler("runs_telemetry")
