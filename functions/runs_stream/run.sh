#!/bin/bash
# Bootstrap of the stream function. The Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# starts this script, waits until the app answers on $PORT, then forwards each streamed invocation
# from API Gateway to it as plain HTTP. The shared layer's packages are under /opt/python.
export PYTHONPATH="${LAMBDA_TASK_ROOT}:/opt/python${PYTHONPATH:+:${PYTHONPATH}}"
exec python3 -m uvicorn --host 127.0.0.1 --port "${PORT:-8000}" --log-level warning app:app
