"""Start ``python -m heartbeat_local`` (what ``make serve`` runs) as a real process, for tests and the benchmark."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@dataclass
class LocalProcess:
    url: str
    dynamodb_url: str
    table: str
    process: subprocess.Popen[bytes]
    log: Path

    def dynamodb(self) -> Any:
        """A client on the endpoint's embedded store, to look at or break what it holds."""
        return boto3.client(
            "dynamodb",
            endpoint_url=self.dynamodb_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the embedded store takes any credentials
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def local_endpoint(log_dir: Path, **settings: str) -> Iterator[LocalProcess]:
    """Serve on a free port with the given environment; stop with SIGTERM afterwards."""
    log = log_dir / "serve.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TABLE_NAME"))},
        **FAKE_AWS,
        "PYTHONPATH": f"{ROOT / 'lambda_src'}{os.pathsep}{ROOT}",
        "PORT": "0",
        "DYNAMODB_PORT": "0",  # a free port: never the fixed default a running make serve holds
        "SWEEP_INTERVAL_SECONDS": "0",
        "POWERTOOLS_TRACE_DISABLED": "true",
        **settings,
    }
    with log.open("wb") as sink:
        # A process group of its own: the endpoint's workers, store and sweeper can be signalled and checked together.
        process = subprocess.Popen(
            [sys.executable, "-m", "heartbeat_local"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            text = log.read_text(errors="replace")
            endpoint = re.search(r"Heartbeat endpoint: (\S+)", text)
            store = re.search(r"DynamoDB \([^)]*\): (\S+)\s+table: (\S+)", text)
            if endpoint and store:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local endpoint did not start:\n{text}")
            time.sleep(0.05)
        yield LocalProcess(endpoint.group(1), store.group(1), store.group(2), process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
