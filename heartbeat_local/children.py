"""The endpoint's two other processes, beside the worker pool: the embedded store and the sweeper.

Each runs as ``python -m heartbeat_local.children store|sweeper``. Neither reacts to
Ctrl-C (the terminal sends SIGINT to every process of the group): the store must outlive
the workers' last in-flight requests, so the parent stops both with SIGTERM once the
workers have drained. Each also exits on its own if its parent dies, so none is left behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any

POLL_PARENT_SECONDS = 0.5


def _stop_on_sigterm_or_orphaned() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()

    def watch_parent() -> None:
        while not stop.wait(POLL_PARENT_SECONDS):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    return stop


def _switch_interval() -> None:
    raw = os.environ.get("SWITCH_INTERVAL")
    if raw:
        sys.setswitchinterval(float(raw))


def run_store(port: int, table_name: str) -> int:
    """Serve the embedded store; print its URL once the table, bus rule and queue exist (or why it cannot)."""
    import boto3

    from heartbeat_local.server import (
        EmbeddedDynamoDB,
        create_keys_kms_key,
        create_keys_table,
        create_stale_event_queue,
        create_table,
        keys_kms_alias,
        keys_table_name,
    )

    stop = _stop_on_sigterm_or_orphaned()
    _switch_interval()
    try:
        store = EmbeddedDynamoDB(port=port)
    except OSError as error:
        print(
            f"make serve: cannot listen on 127.0.0.1:{port} for the embedded store: {os.strerror(error.errno or 0)} "
            "(set DYNAMODB_PORT to another port, or 0 for a free one)",
            flush=True,
        )
        return 1
    clients: dict[str, Any] = {"endpoint_url": store.endpoint, "region_name": os.environ["AWS_DEFAULT_REGION"]}
    create_table(boto3.client("dynamodb", **clients), table_name)
    # The keys table and KMS key, in either mode: switching AUTH_MODE needs no other setup.
    create_keys_table(boto3.client("dynamodb", **clients), keys_table_name(table_name))
    create_keys_kms_key(boto3.client("kms", **clients), keys_kms_alias(table_name))
    queue_url = create_stale_event_queue(boto3.client("events", **clients), boto3.client("sqs", **clients))
    print(f"{store.endpoint} {queue_url}", flush=True)
    stop.wait()
    store.stop()
    return 0


def run_sweeper(interval: float) -> int:
    """Run the sweeper's own Lambda handler at start and every interval; a line a sweep that flagged, held or published.

    The first run records the rules it judges with, so heartbeat-ops judges alike from the start.
    An interval of 0 (the sweeper turned off) runs that first one only.
    """
    os.environ["SWEEP_INTERVAL_SECONDS"] = repr(interval)  # the sweeper judges gaps in its watch by its schedule
    from heartbeat.observability import logger, metrics
    from heartbeat.sweeper import lambda_handler
    from heartbeat_local.console import SweepConsole, sweep_line, use_console_lines
    from heartbeat_local.gateway import LocalLambdaContext

    stop = _stop_on_sigterm_or_orphaned()
    _switch_interval()
    use_console_lines(logger)
    console = SweepConsole()  # the per-runner and per-sweep records become one line a sweep
    logger.addFilter(console)
    logger.setLevel(logging.INFO)
    first = True
    while first or (interval > 0 and not stop.wait(interval)):
        first = False
        try:
            report = lambda_handler({"source": "local.schedule"}, LocalLambdaContext(function_name="sweeper-local"))
            metrics.clear_metrics()  # disabled metrics are kept, not flushed (see environment.Gateway)
        except Exception:  # the sweeper has logged it; the next run tries again
            logger.exception("Sweep failed; the next one tries again")
            continue
        finally:
            flagged = console.take_flagged()
        line = sweep_line(report, flagged)
        if line is not None:
            print(line, file=sys.stderr, flush=True)
    stop.wait()
    return 0


@dataclass
class Child:
    """A child process started by the endpoint."""

    process: subprocess.Popen[str]

    @classmethod
    def start(cls, *args: str, stdout: int | IO[Any] | None = None) -> Child:
        return cls(
            subprocess.Popen(  # noqa: S603 - this interpreter, this module, our own arguments
                [sys.executable, "-m", "heartbeat_local.children", *args], stdout=stdout, text=True
            )
        )

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main(argv: list[str]) -> int:
    top = argparse.ArgumentParser(prog="python -m heartbeat_local.children")
    kinds = top.add_subparsers(dest="kind", required=True)
    store = kinds.add_parser("store")
    store.add_argument("port", type=int)
    store.add_argument("table")
    sweeper = kinds.add_parser("sweeper")
    sweeper.add_argument("interval", type=float)
    args = top.parse_args(argv)
    if args.kind == "store":
        return run_store(args.port, args.table)
    return run_sweeper(args.interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
