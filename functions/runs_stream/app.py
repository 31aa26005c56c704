"""Lambda function `runs_stream`: the `runs_stream` endpoint group (see straitruns.api.app.GROUPS) as
an ASGI app, served by uvicorn (run.sh) under the Lambda Web Adapter with response streaming."""

from straitruns.entry import asgi_app

app = asgi_app("runs_stream")
