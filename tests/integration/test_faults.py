"""Store faults injected at the botocore layer, on a real HTTP DynamoDB (moto's server).

Throttling, 500s, timeouts and connection errors: the handler answers a retryable
InternalServiceError in time, logs once with the request id and counts a metric; the
next heartbeat after the fault clears succeeds with the right state. The sweeper
survives a fault mid-sweep and its next run finishes the job.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from heartbeat.config import Config
from heartbeat.handler import Dependencies, make_handler
from heartbeat.runners import Status
from heartbeat.store import CLIENT_CONFIG, RunnerStore, StoreError
from heartbeat.sweeper import sweep
from heartbeat_local.server import EmbeddedDynamoDB, create_table
from tests.support import FakeClock, LambdaContext, answer, heartbeat_event

LAMBDA_TIMEOUT_SECONDS = 10  # the deployed handler's timeout (infra/stack.py)
KEYS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def dynamodb_server() -> Iterator[EmbeddedDynamoDB]:
    server = EmbeddedDynamoDB()
    yield server
    server.stop()


@pytest.fixture
def client(dynamodb_server: EmbeddedDynamoDB) -> Any:
    """A client configured exactly as the deployed store's (timeouts, retries), on a fresh table."""
    client = boto3.client("dynamodb", endpoint_url=dynamodb_server.endpoint, config=CLIENT_CONFIG, **KEYS)
    client.table = f"t-{uuid.uuid4().hex[:8]}"
    create_table(client, client.table)
    return client


class Fault:
    """Makes chosen DynamoDB calls fail, counting the attempts, until cleared."""

    def __init__(self, client: Any, operation: str, failure: Callable[[], Any], after: int = 0) -> None:
        self.attempts = 0
        self.active = True
        self._failure = failure
        self._after = after  # let this many calls through first
        self._seen = 0
        client.meta.events.register(f"before-send.dynamodb.{operation}", self._on_send)

    def _on_send(self, request: Any, **_: Any) -> Any:
        self._seen += 1
        if not self.active or self._seen <= self._after:
            return None
        self.attempts += 1
        return self._failure()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def error_response(status: int, code: str) -> Callable[[], AWSResponse]:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code}).encode()
    return lambda: AWSResponse("http://dynamodb", status, {"x-amzn-ErrorType": code}, _Raw(body))


def raise_(error: Exception) -> Callable[[], Any]:
    def fail() -> Any:
        raise error

    return fail


FAULTS = {
    "throttled": error_response(400, "ThrottlingException"),
    "provisioned-throughput": error_response(400, "ProvisionedThroughputExceededException"),
    "server-error": error_response(500, "InternalServerError"),
    "unavailable": error_response(503, "ServiceUnavailable"),
    "read-timeout": raise_(ReadTimeoutError(endpoint_url="http://dynamodb")),
    "connection-error": raise_(EndpointConnectionError(endpoint_url="http://dynamodb")),
}


def beat(dependencies: Dependencies, runner_id: str = "r-1") -> tuple[int, dict[str, Any], dict[str, str], str]:
    event = heartbeat_event({"taskrunnerId": runner_id, "workerGroup": "wg"})
    status, body, headers = answer(make_handler(lambda: dependencies)(event, LambdaContext()))  # type: ignore[arg-type]
    return status, body, headers, event["requestContext"]["requestId"]


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_store_fault_answers_retryable_500_logs_once_counts_and_recovers(
    fault: Callable[[], Any], client: Any, log_lines: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = RunnerStore(client.table, client=client)
    dependencies = Dependencies(Config(client.table), store, FakeClock())
    assert beat(dependencies)[0] == 200
    injected = Fault(client, "UpdateItem", fault)
    capsys.readouterr()

    status, body, headers, request_id = beat(dependencies)

    assert (status, body["__type"], headers["x-amzn-ErrorType"]) == (
        500,
        "InternalServiceError",
        "InternalServiceError",
    )
    assert injected.attempts == 3  # the store client's own bounded retries, then give up
    errors = [line for line in log_lines() if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["correlation_id"] == request_id
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert emf["StoreErrors"] == [1.0]

    injected.active = False
    dependencies.clock.advance(900)  # type: ignore[attr-defined]
    assert beat(dependencies)[:2] == (200, {"terminate": False})
    runner = store.get_runner("r-1")
    assert runner is not None
    assert (runner.heartbeat_count, runner.status) == (2, Status.ACTIVE)  # the failed one was not counted


def test_store_that_never_answers_gives_500_within_the_lambda_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: [accepted.append(listener.accept()[0]) for _ in range(16)], daemon=True).start()
    silent = boto3.client(
        "dynamodb", endpoint_url=f"http://127.0.0.1:{listener.getsockname()[1]}", config=CLIENT_CONFIG, **KEYS
    )
    dependencies = Dependencies(Config("t"), RunnerStore("t", client=silent), FakeClock())
    started = time.monotonic()
    status, body, _, _ = beat(dependencies)
    elapsed = time.monotonic() - started
    listener.close()
    for connection in accepted:
        connection.close()
    assert (status, body["__type"]) == (500, "InternalServiceError")
    assert elapsed < LAMBDA_TIMEOUT_SECONDS


def test_sweeper_fault_mid_sweep_is_finished_by_the_next_run_flagging_each_runner_once(client: Any) -> None:
    store = RunnerStore(client.table, client=client)
    config = Config(client.table, stale_after_seconds=600, retention_seconds=86_400, mass_stale_fraction=1)
    clock = FakeClock()
    sweep(store, config, clock.now)
    for i in range(6):
        beat(Dependencies(config, store, clock), f"r-{i}")
    for _ in range(2):
        clock.advance(300)
        assert sweep(store, config, clock.now).flagged == 0
    clock.advance(1)
    injected = Fault(client, "UpdateItem", error_response(500, "InternalServerError"), after=2)
    with pytest.raises(StoreError):
        sweep(store, config, clock.now)  # two flagged, then the store fails: the run fails (and is alarmed on)
    first_flags = {r: store.get_runner(r).status for r in (f"r-{i}" for i in range(6))}  # type: ignore[union-attr]
    assert sorted(first_flags.values()) == ["active"] * 4 + ["stale"] * 2
    injected.active = False
    clock.advance(300)
    report = sweep(store, config, clock.now)
    assert (report.examined, report.flagged) == (4, 4)  # the rest, and none of the two again
    assert all(store.get_runner(f"r-{i}").status == Status.STALE for i in range(6))  # type: ignore[union-attr]


def test_missing_region_is_a_500_with_a_clear_log_line(monkeypatch: pytest.MonkeyPatch, log_lines: Any) -> None:
    from heartbeat.handler import lambda_handler

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("TABLE_NAME", "t")
    status, body, _ = answer(lambda_handler(heartbeat_event({"taskrunnerId": "r"}), LambdaContext()))
    assert (status, body["__type"]) == (500, "InternalServiceError")
    [error] = [line for line in log_lines() if line["level"] == "ERROR"]
    assert "NoRegionError" in error["exception"]
