"""``python -m heartbeat_local``: what ``make serve`` runs."""

from __future__ import annotations

import os
import signal
import sys
import threading

from heartbeat_local.server import LocalEndpoint, ServeSettings


def main() -> int:
    settings = ServeSettings.from_env(os.environ)
    endpoint = LocalEndpoint(settings)
    try:
        endpoint.start()
    except OSError as error:
        print(f"Cannot serve on {settings.host}:{settings.port}: {error.strerror}", file=sys.stderr)
        return 1
    except ValueError as error:  # a bad setting: its message names the variable
        print(f"Cannot start: {error}", file=sys.stderr)
        return 1
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    store = "embedded, in memory" if settings.dynamodb_endpoint is None else "external"
    print(f"Heartbeat endpoint: {endpoint.url}", flush=True)
    print(f"DynamoDB ({store}): {endpoint.dynamodb_endpoint}  table: {settings.table_name}", flush=True)
    if settings.sweep_interval_seconds > 0:
        print(f"Sweeper: every {settings.sweep_interval_seconds:g}s", flush=True)
    print(
        "Try: .venv/bin/aws datapipeline report-task-runner-heartbeat --taskrunner-id r-1 "
        f"--endpoint-url {endpoint.url} --region us-east-1 --no-sign-request",
        flush=True,
    )
    print(
        f"     .venv/bin/heartbeat-ops runners list --endpoint-url {endpoint.dynamodb_endpoint} "
        f"--table {settings.table_name}",
        flush=True,
    )
    stopping.wait()
    print("Stopping: finishing in-flight requests", file=sys.stderr, flush=True)
    endpoint.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
