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
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from heartbeat.clients import CLIENT_CONFIG
from heartbeat.config import DEFAULT_STALE_AFTER_SECONDS, Config
from heartbeat.handler import Dependencies, make_handler
from heartbeat.runners import Status
from heartbeat.store import RunnerStore, StoreError
from heartbeat.sweeper import sweep
from tests.support import (
    FakeClock,
    Fault,
    LambdaContext,
    LostResponse,
    RequestCounter,
    answer,
    error_response,
    heartbeat_event,
    raise_,
)

LAMBDA_TIMEOUT_SECONDS = 10  # the deployed handler's timeout (infra/stack.py)
KEYS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def client(http_dynamodb: Any) -> Any:
    return http_dynamodb


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


# The write applied, then the answer lost: botocore cannot tell these from a write that never arrived,
# so it resends the same request (DynamoDB documents that a 500 may follow an applied write).
LOST = {
    "read-timeout": raise_(ReadTimeoutError(endpoint_url="http://dynamodb")),
    "connection-reset": raise_(ConnectionClosedError(endpoint_url="http://dynamodb")),
    "server-error": error_response(500, "InternalServerError"),
}


@pytest.mark.parametrize("failure", LOST.values(), ids=LOST.keys())
@pytest.mark.parametrize("when", ["first", "steady"])
def test_a_heartbeat_whose_write_applied_and_response_was_lost_answers_200_and_counts_once(
    failure: Callable[[], Any], when: str, client: Any
) -> None:
    store = RunnerStore(client.table, client=client)
    clock = FakeClock(now=1_795_521_600.25)
    dependencies = Dependencies(Config(client.table), store, clock)
    if when == "steady":
        assert beat(dependencies)[0] == 200
        clock.advance(900)
    lost = LostResponse(client, "UpdateItem", failure)
    sent = RequestCounter(client)

    status, body, _, _ = beat(dependencies)

    assert (lost.lost, status, body) == (1, 200, {"terminate": False})  # botocore resent it, and it answered
    assert sent.calls == {"UpdateItem": 1}  # one call from the store: the resend is botocore's own
    runner = store.get_runner("r-1")
    assert runner is not None
    assert (runner.heartbeat_count, runner.last_seen) == (1 if when == "first" else 2, clock.now)


def test_a_heartbeat_whose_every_attempt_was_lost_answers_500_and_is_stored_once(client: Any) -> None:
    store = RunnerStore(client.table, client=client)
    clock = FakeClock()
    dependencies = Dependencies(Config(client.table), store, clock)
    assert beat(dependencies)[0] == 200
    clock.advance(900)
    lost = LostResponse(client, "UpdateItem", raise_(ReadTimeoutError(endpoint_url="http://dynamodb")), times=3)

    status, body, headers, _ = beat(dependencies)

    # The client sees a retryable error, though DynamoDB applied the write (the store cannot know it did).
    assert (lost.lost, status, body["__type"], headers["x-amzn-ErrorType"]) == (
        3,
        500,
        "InternalServiceError",
        "InternalServiceError",
    )
    runner = store.get_runner("r-1")
    assert runner is not None
    assert (runner.heartbeat_count, runner.last_seen) == (2, clock.now)  # applied once, not three times
    clock.advance(1)  # the client's own retry is a heartbeat of its own, and counts
    assert beat(dependencies)[:2] == (200, {"terminate": False})
    assert store.get_runner("r-1").heartbeat_count == 3  # type: ignore[union-attr]


def test_a_lost_response_still_answers_from_the_record_a_flagged_runner_is_told_to_terminate(client: Any) -> None:
    store = RunnerStore(client.table, client=client)
    clock = FakeClock()
    dependencies = Dependencies(Config(client.table), store, clock)
    beat(dependencies)
    clock.advance(3000)
    assert store.flag_stale(
        "r-1", last_seen_before=clock.now - DEFAULT_STALE_AFTER_SECONDS, now=clock.now, claim_until=clock.now
    )
    LostResponse(client, "UpdateItem", error_response(500, "InternalServerError"))
    assert beat(dependencies)[:2] == (200, {"terminate": True})
    assert store.get_runner("r-1").heartbeat_count == 2  # type: ignore[union-attr]


def test_a_lost_response_to_the_replacement_of_an_expired_record_counts_once(client: Any) -> None:
    store = RunnerStore(client.table, client=client)
    clock = FakeClock()
    config = Config(client.table)
    dependencies = Dependencies(config, store, clock)
    beat(dependencies)
    clock.advance(config.retention_seconds + 1)  # past its TTL, not yet deleted: it counts as absent
    LostResponse(client, "PutItem", raise_(ReadTimeoutError(endpoint_url="http://dynamodb")))
    assert beat(dependencies)[:2] == (200, {"terminate": False})
    runner = store.get_runner("r-1")
    assert runner is not None
    assert (runner.heartbeat_count, runner.first_seen) == (1, clock.now)


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
    # The lease taken and renewed (two UpdateItems), two flagged, then the store fails: the run fails (and is alarmed
    # on), and cannot give its lease back, which holds until it expires (300 s + 60 s with no deadline).
    injected = Fault(client, "UpdateItem", error_response(500, "InternalServerError"), after=4)
    with pytest.raises(StoreError):
        sweep(store, config, clock.now)
    first_flags = {r: store.get_runner(r).status for r in (f"r-{i}" for i in range(6))}  # type: ignore[union-attr]
    assert sorted(first_flags.values()) == ["active"] * 4 + ["stale"] * 2
    injected.active = False
    clock.advance(361)
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
