"""The API handler on real API Gateway REST and ALB events (every test on each shape), with the table on moto."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from bench.capacity import item_size, write_units
from heartbeat.config import DEFAULT_RETENTION_SECONDS, Config
from heartbeat.handler import Dependencies, lambda_handler, make_handler
from heartbeat.runners import Status
from heartbeat.store import RunnerStore
from tests.conftest import TABLE, EventFactory
from tests.support import (
    ALL_SHAPES,
    FakeClock,
    Fault,
    LambdaContext,
    RequestCounter,
    answer,
    error_response,
    heartbeat_event,
    request_id_sent,
)

LogLines = Callable[[], list[dict[str, Any]]]
BEAT = {"taskrunnerId": "runner-0001", "workerGroup": "etl-workers", "hostname": "ip-10-0-1-25"}


def call(event: dict[str, Any], dependencies: Dependencies) -> dict[str, Any]:
    return make_handler(lambda: dependencies)(event, LambdaContext())  # type: ignore[arg-type]


def emf_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The CloudWatch EMF metric lines printed so far."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def items(dynamodb: Any) -> list[dict[str, Any]]:
    return dynamodb.scan(TableName=TABLE)["Items"]


def test_first_heartbeat_answers_keep_working_and_stores_the_runner(
    make_event: EventFactory, dependencies: Dependencies, dynamodb: Any, clock: FakeClock
) -> None:
    status, body, _ = answer(call(make_event(BEAT), dependencies))
    assert (status, body) == (200, {"terminate": False})
    [item] = items(dynamodb)
    assert len(item.pop("requestToken")["S"]) == 16  # this write's token (see the lost-response tests)
    assert [item] == [
        {
            "taskrunnerId": {"S": "runner-0001"},
            "workerGroup": {"S": "etl-workers"},
            "hostname": {"S": "ip-10-0-1-25"},
            "status": {"S": "active"},
            "firstSeen": {"N": f"{clock.now:.3f}"},
            "lastSeen": {"N": f"{clock.now:.3f}"},
            "heartbeatCount": {"N": "1"},
            "expiresAt": {"N": str(int(clock.now) + DEFAULT_RETENTION_SECONDS)},
        }
    ]


def test_response_is_byte_exact_awsjson_with_protocol_headers(
    make_event: EventFactory, dependencies: Dependencies
) -> None:
    event = make_event(BEAT)
    result = call(event, dependencies)
    _, _, headers = answer(result)
    assert result["body"] == '{"terminate":false}'
    assert result["isBase64Encoded"] is False
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-RequestId"] == (request_id_sent(event) or headers["x-amzn-RequestId"])
    assert headers["Date"].endswith(" GMT")


@pytest.mark.parametrize("event_shape", ["alb"], indirect=True)
def test_alb_answer_has_the_shape_the_load_balancer_takes_with_multi_value_headers_off(
    make_event: EventFactory, dependencies: Dependencies
) -> None:
    result = call(make_event(BEAT), dependencies)
    assert set(result) == {"statusCode", "statusDescription", "isBase64Encoded", "headers", "body"}
    assert (result["statusCode"], result["statusDescription"]) == (200, "200 OK")
    assert all(isinstance(value, str) for value in result["headers"].values())


@pytest.mark.parametrize("event_shape", ["alb-multivalue"], indirect=True)
def test_alb_answer_uses_multi_value_headers_when_the_target_group_sends_them(
    make_event: EventFactory, dependencies: Dependencies
) -> None:
    result = call(make_event(BEAT, path="/nope"), dependencies)
    assert "headers" not in result
    assert (result["statusCode"], result["statusDescription"]) == (404, "404 Not Found")
    assert result["multiValueHeaders"]["x-amzn-ErrorType"] == ["NotFoundException"]


def test_each_request_gets_its_own_request_id_answered_and_logged(
    make_event: EventFactory, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, log_lines: LogLines
) -> None:
    monkeypatch.setenv("TABLE_NAME", TABLE)
    answered = []
    for runner in ("runner-a", "runner-b"):
        event = make_event({"taskrunnerId": runner})
        _, _, headers = answer(lambda_handler(event, LambdaContext()))
        answered.append(headers["x-amzn-RequestId"])
        assert headers["x-amzn-RequestId"] == (request_id_sent(event) or headers["x-amzn-RequestId"])
    assert len(set(answered)) == 2
    assert [line["correlation_id"] for line in log_lines()] == answered  # one "New runner" line each


def test_next_heartbeat_updates_last_seen_and_count_but_not_first_seen(
    make_event: EventFactory, dependencies: Dependencies, store: RunnerStore, clock: FakeClock
) -> None:
    first = clock.now
    call(make_event(BEAT), dependencies)
    clock.advance(900)
    call(make_event({**BEAT, "hostname": "moved-host"}), dependencies)
    runner = store.get_runner("runner-0001")
    assert runner is not None
    assert (runner.first_seen, runner.last_seen, runner.heartbeat_count) == (first, first + 900, 2)
    assert runner.hostname == "moved-host"
    assert runner.expires_at == int(first + 900) + DEFAULT_RETENTION_SECONDS


@pytest.mark.parametrize("when", ["first", "steady"])
def test_a_heartbeat_is_exactly_one_dynamodb_request(
    make_event: EventFactory, when: str, dependencies: Dependencies, dynamodb_calls: RequestCounter
) -> None:
    if when == "steady":
        call(make_event(BEAT), dependencies)
        dynamodb_calls.reset()
    call(make_event(BEAT), dependencies)
    assert dynamodb_calls.calls == {"UpdateItem": 1}


def test_worker_group_is_kept_exactly_as_sent(
    make_event: EventFactory, dependencies: Dependencies, store: RunnerStore
) -> None:
    call(make_event({"taskrunnerId": "a", "workerGroup": "ETL-Workers "}), dependencies)
    call(make_event({"taskrunnerId": "b", "workerGroup": ""}), dependencies)
    assert store.get_runner("a").worker_group == "ETL-Workers "  # type: ignore[union-attr]
    assert store.get_runner("b").worker_group == ""  # type: ignore[union-attr]


def test_empty_body_reads_as_empty_object_and_is_refused_for_missing_id(
    make_event: EventFactory, dependencies: Dependencies
) -> None:
    status, body, _ = answer(call(make_event(None), dependencies))
    assert status == 400
    assert body == {
        "__type": "InvalidRequestException",
        "message": "1 validation error detected: Value null at 'taskrunnerId' failed to satisfy constraint: "
        "Member must not be null",
    }


def test_base64_body_as_the_deployed_gateway_sends_it(make_event: EventFactory, dependencies: Dependencies) -> None:
    status, body, _ = answer(call(make_event(json.dumps(BEAT).encode()), dependencies))
    assert (status, body) == (200, {"terminate": False})


def test_json_escaped_lone_surrogate_is_an_invalid_request(
    make_event: EventFactory, dependencies: Dependencies, dynamodb: Any
) -> None:
    status, body, _ = answer(call(make_event('{"taskrunnerId": "r\\ud800"}'), dependencies))
    assert status == 400
    assert body["__type"] == "InvalidRequestException"
    assert "regular expression pattern" in body["message"]
    assert items(dynamodb) == []


def test_json_escaped_surrogate_pair_is_one_valid_code_point(
    make_event: EventFactory, dependencies: Dependencies, store: RunnerStore
) -> None:
    status, _, _ = answer(call(make_event('{"taskrunnerId": "r\\ud83d\\ude00"}'), dependencies))
    assert status == 200
    assert store.get_runner("r\U0001f600") is not None


REFUSALS = [
    pytest.param({"body": {**BEAT, "taskrunnerId": "x" * 1025}}, 400, "InvalidRequestException", id="too-long"),
    pytest.param({"body": {**BEAT, "hostname": "a\x00b"}}, 400, "InvalidRequestException", id="bad-char"),
    pytest.param({"body": {**BEAT, "taskrunnerId": 7}}, 400, "SerializationException", id="number"),
    pytest.param({"body": {**BEAT, "hostname": None}}, 400, "SerializationException", id="null"),
    pytest.param({"body": "[1, 2]"}, 400, "SerializationException", id="not-object"),
    pytest.param({"body": "{"}, 400, "SerializationException", id="not-json"),
    pytest.param({"body": b"\xc3\x28"}, 400, "SerializationException", id="not-utf8"),
    pytest.param({"body": "bm90IGJhc2U2NA=!", "base64_body": False, "flag_base64": True}, 400,
                 "SerializationException", id="not-base64"),
    pytest.param({"body": BEAT, "target": None}, 400, "UnknownOperationException", id="no-target"),
    pytest.param(
        {"body": BEAT, "target": "DataPipeline.PollForTask"}, 400, "UnknownOperationException", id="other-operation"
    ),
    pytest.param(
        {"body": BEAT, "target": "Nope.ReportTaskRunnerHeartbeat"}, 400, "UnknownOperationException",
        id="other-service",
    ),
    pytest.param(
        {"body": {"taskrunnerId": "r", "pad": "x" * 70_000}}, 413, "RequestEntityTooLargeException", id="too-large"
    ),
    pytest.param({"body": BEAT, "method": "GET"}, 405, "MethodNotAllowedException", id="get"),
    pytest.param({"body": BEAT, "method": "DELETE"}, 405, "MethodNotAllowedException", id="delete"),
    pytest.param({"body": BEAT, "path": "/pipelines"}, 404, "NotFoundException", id="other-path"),
    pytest.param({"body": BEAT, "path": "/pipelines", "method": "GET"}, 404, "NotFoundException", id="other-path-get"),
    # A route regex's "$" matches before a final newline: "/\n" must not reach the operation.
    pytest.param({"body": BEAT, "path": "/\n"}, 404, "NotFoundException", id="root-and-newline"),
    pytest.param({"body": BEAT, "path": "/\n", "method": "GET"}, 404, "NotFoundException", id="root-and-newline-get"),
]  # fmt: skip


@pytest.mark.parametrize("event_shape", ALL_SHAPES, indirect=True)
@pytest.mark.parametrize(("request_args", "status", "code"), REFUSALS)
def test_bad_request_gets_awsjson_error_and_changes_nothing(
    *,
    request_args: dict[str, Any],
    status: int,
    code: str,
    make_event: EventFactory,
    dependencies: Dependencies,
    dynamodb: Any,
) -> None:
    args = dict(request_args)
    flag_base64 = args.pop("flag_base64", False)
    event = make_event(**args)
    if flag_base64:
        event["isBase64Encoded"] = True
    result = call(event, dependencies)
    got_status, body, headers = answer(result)
    assert (got_status, body["__type"], headers["x-amzn-ErrorType"]) == (status, code, code)
    assert body["message"]
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-RequestId"] == (request_id_sent(event) or headers["x-amzn-RequestId"])
    assert uuid.UUID(headers["x-amzn-RequestId"])
    assert items(dynamodb) == []


@pytest.mark.parametrize("event_shape", ALL_SHAPES, indirect=True)
@pytest.mark.parametrize("name", ["x-amz-target", "X-AMZ-TARGET"])
def test_target_header_is_matched_case_insensitively_by_name(
    name: str, make_event: EventFactory, dependencies: Dependencies
) -> None:
    event = make_event(BEAT, target=None)
    if "multiValueHeaders" in event:
        event["multiValueHeaders"][name] = ["DataPipeline.ReportTaskRunnerHeartbeat"]
    if "headers" in event:
        event["headers"][name] = "DataPipeline.ReportTaskRunnerHeartbeat"
    assert answer(call(event, dependencies))[0] == 200


@pytest.mark.parametrize("event_shape", ALL_SHAPES, indirect=True)
def test_repeated_target_header_reads_as_its_last_value_as_the_front_doors_do(
    make_event: EventFactory, dependencies: Dependencies
) -> None:
    event = make_event(BEAT)
    if "multiValueHeaders" in event:
        [name] = [n for n in event["multiValueHeaders"] if n.lower() == "x-amz-target"]
        event["multiValueHeaders"][name] = ["DataPipeline.PollForTask", "DataPipeline.ReportTaskRunnerHeartbeat"]
    assert answer(call(event, dependencies))[0] == 200


@pytest.mark.parametrize(
    ("error_code", "http_status"),
    [("ProvisionedThroughputExceededException", 400), ("ThrottlingException", 400), ("InternalServerError", 500)],
)
def test_store_failure_is_a_retryable_internal_error_logged_with_the_request_id(
    make_event: EventFactory, error_code: str, http_status: int, http_dynamodb: Any, log_lines: LogLines
) -> None:
    # A real table over HTTP whose UpdateItem answers the error on every attempt; any other call the
    # handler made (a fallback write, say) would reach the table and show below.
    failing = Fault(http_dynamodb, "UpdateItem", error_response(http_status, error_code))
    store = RunnerStore(http_dynamodb.table, client=http_dynamodb)
    event = make_event(BEAT)

    status, body, headers = answer(
        make_handler(lambda: Dependencies(Config(http_dynamodb.table), store, FakeClock()))(event, LambdaContext())  # type: ignore[arg-type]
    )
    request_id = request_id_sent(event) or headers["x-amzn-RequestId"]  # an ALB sends none: the handler made one

    assert (status, body, headers["x-amzn-ErrorType"], headers["x-amzn-RequestId"]) == (
        500,
        {"__type": "InternalServiceError", "message": "An internal error occurred. Please retry the request."},
        "InternalServiceError",
        request_id,
    )
    assert failing.attempts == 3  # the store client's bounded retries, each refused
    [error] = [line for line in log_lines() if line["level"] == "ERROR"]
    assert error["correlation_id"] == request_id
    assert error["message"] == "The runner store failed; answered InternalServiceError so the client retries"
    assert f"update_item failed: {error_code}" in error["exception"]
    assert http_dynamodb.scan(TableName=http_dynamodb.table)["Items"] == []


def test_store_failure_through_lambda_handler_logs_once_with_request_id_and_counts_a_metric(
    make_event: EventFactory,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_lines: LogLines,
) -> None:
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    event = make_event(BEAT)
    result = lambda_handler(event, LambdaContext())
    status, body, _ = answer(result)
    assert (status, body["__type"]) == (500, "InternalServiceError")
    errors = [line for line in log_lines() if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["correlation_id"] == (request_id_sent(event) or answer(result)[2]["x-amzn-RequestId"])
    assert "ResourceNotFoundException" in errors[0]["exception"]
    assert emf_lines(capsys)[0]["StoreErrors"] == [1.0]


def test_bad_configuration_answers_500_and_logs_the_variable(
    make_event: EventFactory, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, log_lines: LogLines
) -> None:
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("STALE_AFTER_SECONDS", "soon")
    status, body, _ = answer(lambda_handler(make_event(BEAT), LambdaContext()))
    assert (status, body["__type"]) == (500, "InternalServiceError")
    assert "STALE_AFTER_SECONDS" not in body["message"]
    [error] = [line for line in log_lines() if line["level"] == "ERROR"]
    assert "STALE_AFTER_SECONDS must be a whole number of seconds, got 'soon'" in error["exception"]


def test_lambda_handler_reads_config_from_env_and_logs_with_request_id(
    make_event: EventFactory,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_lines: LogLines,
) -> None:
    monkeypatch.setenv("TABLE_NAME", TABLE)
    event = make_event(BEAT)
    status, body, headers = answer(lambda_handler(event, LambdaContext()))
    assert (status, body) == (200, {"terminate": False})
    logs = log_lines()
    assert [line["message"] for line in logs] == ["New runner"]
    assert all(line["correlation_id"] == headers["x-amzn-RequestId"] for line in logs)
    [emf] = emf_lines(capsys)
    assert emf["NewRunners"] == [1.0]
    assert "Heartbeats" not in emf  # the front door's and Lambda's own metrics count requests


def test_steady_heartbeat_writes_no_log_line_and_no_metric(
    make_event: EventFactory,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_lines: LogLines,
) -> None:
    monkeypatch.setenv("TABLE_NAME", TABLE)
    lambda_handler(make_event(BEAT), LambdaContext())
    capsys.readouterr()
    before = len(log_lines())
    status, body, _ = answer(lambda_handler(make_event(BEAT), LambdaContext()))
    assert (status, body) == (200, {"terminate": False})
    assert capsys.readouterr().out == ""
    assert len(log_lines()) == before


def test_record_past_its_ttl_is_a_new_runner(
    *,
    make_event: EventFactory,
    dependencies: Dependencies,
    store: RunnerStore,
    clock: FakeClock,
    dynamodb: Any,
    dynamodb_calls: RequestCounter,
) -> None:
    call(make_event(BEAT), dependencies)
    dynamodb.update_item(
        TableName=TABLE,
        Key={"taskrunnerId": {"S": "runner-0001"}},
        UpdateExpression="SET #s = :stale",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":stale": {"S": "stale"}},
    )
    clock.advance(DEFAULT_RETENTION_SECONDS + 1)  # past the TTL; moto, like DynamoDB for days, has not deleted it
    dynamodb_calls.reset()
    status, body, _ = answer(call(make_event(BEAT), dependencies))
    assert (status, body) == (200, {"terminate": False})
    assert dynamodb_calls.calls == {"UpdateItem": 1, "PutItem": 1}
    runner = store.get_runner("runner-0001")
    assert runner is not None
    assert (runner.status, runner.heartbeat_count, runner.first_seen) == (Status.ACTIVE, 1, clock.now)


def test_heartbeat_stamped_earlier_than_the_last_one_counts_without_moving_last_seen_back(
    make_event: EventFactory,
    dependencies: Dependencies,
    store: RunnerStore,
    clock: FakeClock,
    dynamodb_calls: RequestCounter,
) -> None:
    call(make_event(BEAT), dependencies)
    latest = clock.now
    clock.advance(-0.25)  # another instance's clock, a little behind, and its request lost the race
    dynamodb_calls.reset()
    status, body, _ = answer(call(make_event({**BEAT, "hostname": "stale-host"}), dependencies))
    assert (status, body) == (200, {"terminate": False})
    assert dynamodb_calls.calls == {"UpdateItem": 2}
    runner = store.get_runner("runner-0001")
    assert runner is not None
    assert (runner.heartbeat_count, runner.last_seen, runner.hostname) == (2, latest, "ip-10-0-1-25")


def test_heartbeat_stamped_earlier_than_the_last_one_racing_a_forget_recreates_the_runner(
    dependencies: Dependencies, store: RunnerStore, clock: FakeClock, dynamodb: Any, dynamodb_calls: RequestCounter
) -> None:
    call(heartbeat_event(BEAT), dependencies)
    clock.advance(-0.25)  # another instance's clock, a little behind: its first write is refused...
    operator = RunnerStore(TABLE, client=boto3.client("dynamodb", region_name="us-east-1"))
    refusals: list[str] = []

    def forget_after_the_first_refusal(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException" and not refusals:
            refusals.append("forgot")
            operator.forget("runner-0001")  # ...and an operator forgets the runner right then

    dynamodb.meta.events.register("after-call.dynamodb.UpdateItem", forget_after_the_first_refusal)
    dynamodb_calls.reset()
    status, body, _ = answer(call(heartbeat_event(BEAT), dependencies))
    assert (refusals, status, body) == (["forgot"], 200, {"terminate": False})
    assert dynamodb_calls.calls == {"UpdateItem": 3}  # refused (later), refused (gone), created
    runner = store.get_runner("runner-0001")
    assert runner is not None
    assert (runner.heartbeat_count, runner.first_seen, runner.last_seen) == (1, clock.now, clock.now)
    assert runner.hostname == BEAT["hostname"]


def test_the_request_token_adds_28_bytes_and_no_write_unit_to_a_typical_runner(
    dependencies: Dependencies, dynamodb: Any
) -> None:
    beat = {"taskrunnerId": "i-0e4f5a6b-runner", "workerGroup": "etl-prod", "hostname": "ip-10-0-1-26.ec2.internal"}
    call(heartbeat_event(beat), dependencies)
    [item] = items(dynamodb)
    without = {name: value for name, value in item.items() if name != "requestToken"}
    assert item_size(item) - item_size(without) == 28  # "requestToken" and 16 characters
    assert write_units(None, item) == write_units(None, without) == 1  # the whole item is under 200 bytes
