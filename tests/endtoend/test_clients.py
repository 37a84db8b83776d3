"""Drop-in: unmodified AWS clients against the local endpoint (``make serve``) see AWS's answers.

boto3's datapipeline client, the AWS CLI and the AWS SDK for JavaScript v3, each
pointed at the endpoint with nothing changed but the endpoint URL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ParamValidationError

from heartbeat_local.process import FAKE_AWS, ROOT, LocalProcess, local_endpoint

pytestmark = pytest.mark.clients

AWS_CLI = str(Path(sys.executable).parent / "aws")
JS_CASES = ROOT / "tests" / "js" / "heartbeat_cases.mjs"
TOO_LONG = "x" * 1025
LENGTH_MESSAGE = (
    "1 validation error detected: Value at 'taskrunnerId' failed to satisfy constraint: "
    "Member must have length less than or equal to 1024"
)


@pytest.fixture(scope="module")
def broken_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    """An endpoint whose table has gone: every heartbeat meets a failing store."""
    with local_endpoint(tmp_path_factory.mktemp("broken")) as running:
        running.dynamodb().delete_table(TableName=running.table)
        yield running


def datapipeline(url: str, validate: bool = True, attempts: int = 1) -> Any:
    config = BotoConfig(parameter_validation=validate, retries={"mode": "standard", "total_max_attempts": attempts})
    return boto3.client(
        "datapipeline",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def stored(endpoint: LocalProcess, runner_id: str) -> dict[str, Any] | None:
    item = endpoint.dynamodb().get_item(TableName=endpoint.table, Key={"taskrunnerId": {"S": runner_id}})
    return item.get("Item")


# boto3


def test_boto3_heartbeat_returns_terminate_false_and_is_stored(endpoint: LocalProcess) -> None:
    client = datapipeline(endpoint.url)
    response = client.report_task_runner_heartbeat(taskrunnerId="boto-1", workerGroup="wg", hostname="h1")
    assert response["terminate"] is False
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1"
    assert response["ResponseMetadata"]["RequestId"]
    item = stored(endpoint, "boto-1")
    assert item is not None
    assert (item["workerGroup"]["S"], item["hostname"]["S"], item["heartbeatCount"]["N"]) == ("wg", "h1", "1")


def test_boto3_raises_modeled_invalid_request_exception(endpoint: LocalProcess) -> None:
    client = datapipeline(endpoint.url)
    with pytest.raises(client.exceptions.InvalidRequestException) as excinfo:
        client.report_task_runner_heartbeat(taskrunnerId=TOO_LONG)
    assert excinfo.value.response["Error"]["Message"] == LENGTH_MESSAGE
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert stored(endpoint, TOO_LONG) is None


def test_boto3_pattern_violation_passes_client_validation_and_is_refused_by_the_server(endpoint: LocalProcess) -> None:
    client = datapipeline(endpoint.url)  # botocore checks lengths, never patterns
    with pytest.raises(client.exceptions.InvalidRequestException, match="regular expression pattern"):
        client.report_task_runner_heartbeat(taskrunnerId="bad\x07id")


def test_boto3_client_side_validation_catches_empty_id_before_sending(endpoint: LocalProcess) -> None:
    with pytest.raises(ParamValidationError):
        datapipeline(endpoint.url).report_task_runner_heartbeat(taskrunnerId="")


def test_boto3_without_client_validation_gets_the_server_s_length_error(endpoint: LocalProcess) -> None:
    client = datapipeline(endpoint.url, validate=False)
    with pytest.raises(client.exceptions.InvalidRequestException) as excinfo:
        client.report_task_runner_heartbeat(taskrunnerId="")
    assert "Member must have length greater than or equal to 1" in excinfo.value.response["Error"]["Message"]


def test_boto3_without_client_validation_gets_serialization_exception_for_wrong_type(endpoint: LocalProcess) -> None:
    client = datapipeline(endpoint.url, validate=False)
    with pytest.raises(ClientError) as excinfo:
        client.report_task_runner_heartbeat(taskrunnerId=12345)
    assert excinfo.value.response["Error"]["Code"] == "SerializationException"


def test_boto3_other_operation_gets_unknown_operation_exception(endpoint: LocalProcess) -> None:
    with pytest.raises(ClientError) as excinfo:
        datapipeline(endpoint.url).poll_for_task(workerGroup="wg")
    assert excinfo.value.response["Error"]["Code"] == "UnknownOperationException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_boto3_raises_internal_service_error_after_its_retries(broken_endpoint: LocalProcess) -> None:
    before = broken_endpoint.output().count(" 500 ")
    client = datapipeline(broken_endpoint.url, attempts=3)
    with pytest.raises(client.exceptions.InternalServiceError) as excinfo:
        client.report_task_runner_heartbeat(taskrunnerId="boto-broken")
    assert excinfo.value.response["Error"]["Message"] == "An internal error occurred. Please retry the request."
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert broken_endpoint.output().count(" 500 ") - before == 3  # the client retried the 500, as it should


# The AWS CLI


def aws_cli(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **FAKE_AWS, "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "1", **extra_env}
    return subprocess.run(
        [AWS_CLI, "datapipeline", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_cli_heartbeat_prints_terminate_false(endpoint: LocalProcess) -> None:
    result = aws_cli(
        "report-task-runner-heartbeat", "--taskrunner-id", "cli-1", "--worker-group", "wg",
        "--endpoint-url", endpoint.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"terminate": False}


def test_cli_reaches_the_endpoint_from_the_environment_alone(endpoint: LocalProcess) -> None:
    result = aws_cli(
        "report-task-runner-heartbeat", "--taskrunner-id", "cli-env", AWS_ENDPOINT_URL_DATA_PIPELINE=endpoint.url
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"terminate": False}
    assert stored(endpoint, "cli-env") is not None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["report-task-runner-heartbeat", "--taskrunner-id", TOO_LONG], "InvalidRequestException", LENGTH_MESSAGE),
        (["report-task-runner-heartbeat", "--taskrunner-id", "r", "--hostname", "a\x01b"], "InvalidRequestException",
         "regular expression pattern"),
        (["poll-for-task", "--worker-group", "wg"], "UnknownOperationException", "PollForTask"),
    ],
)  # fmt: skip
def test_cli_errors_name_the_exception(endpoint: LocalProcess, args: list[str], code: str, message: str) -> None:
    result = aws_cli(*args, "--endpoint-url", endpoint.url)
    assert result.returncode in {254, 255}
    assert f"An error occurred ({code}) when calling the" in result.stderr
    assert message in result.stderr


def test_cli_internal_service_error(broken_endpoint: LocalProcess) -> None:
    result = aws_cli("report-task-runner-heartbeat", "--taskrunner-id", "cli-broken", "--endpoint-url",
                     broken_endpoint.url)  # fmt: skip
    assert result.returncode == 255
    assert "An error occurred (InternalServiceError) when calling the ReportTaskRunnerHeartbeat operation" in (
        result.stderr
    )


# The AWS SDK for JavaScript v3


def js_sdk(url: str, cases: list[dict[str, Any]], options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each case run by the JS SDK v3 (tests/js/heartbeat_cases.mjs), with the client options given."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the JS SDK tests"
    assert (ROOT / "node_modules" / "@aws-sdk" / "client-data-pipeline").is_dir(), "run 'npm ci' (make test does)"
    result = subprocess.run(
        [node, str(JS_CASES), url, json.dumps(cases), json.dumps(options or {})],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def heartbeat(**members: Any) -> dict[str, Any]:
    return {"command": "ReportTaskRunnerHeartbeat", "input": members}


def test_js_sdk_success_and_each_error(endpoint: LocalProcess) -> None:
    ok, too_long, wrong_type, empty, other_op = js_sdk(
        endpoint.url,
        [
            heartbeat(taskrunnerId="js-1", workerGroup="wg", hostname="h"),
            heartbeat(taskrunnerId=TOO_LONG),
            heartbeat(taskrunnerId=["js"]),
            heartbeat(),
            {"command": "PollForTask", "input": {"workerGroup": "wg"}},
        ],
    )
    assert ok["ok"]
    assert ok["output"] == {"terminate": False}
    assert ok["status"] == 200
    assert ok["requestId"]  # read from x-amzn-RequestId
    assert stored(endpoint, "js-1") is not None
    assert (too_long["name"], too_long["message"], too_long["fault"], too_long["status"]) == (
        "InvalidRequestException", LENGTH_MESSAGE, "client", 400,
    )  # fmt: skip
    assert (wrong_type["name"], wrong_type["status"]) == ("SerializationException", 400)
    assert (empty["name"], empty["status"]) == ("InvalidRequestException", 400)
    assert "Member must not be null" in empty["message"]
    assert (other_op["name"], other_op["status"]) == ("UnknownOperationException", 400)


def test_js_sdk_internal_service_error(broken_endpoint: LocalProcess) -> None:
    [failed] = js_sdk(broken_endpoint.url, [heartbeat(taskrunnerId="js-broken")])
    assert (failed["name"], failed["fault"], failed["status"]) == ("InternalServiceError", "server", 500)


# The stale -> terminate story through the running endpoint, with a short threshold


def test_silent_runner_is_told_to_terminate_while_a_live_one_is_not(tmp_path: Path) -> None:
    with local_endpoint(tmp_path, STALE_AFTER_SECONDS="2", RETENTION_SECONDS="3600",
                        SWEEP_INTERVAL_SECONDS="0.2") as running:  # fmt: skip
        client = datapipeline(running.url)
        assert client.report_task_runner_heartbeat(taskrunnerId="silent")["terminate"] is False
        live_answers = []
        silent_answer = False
        for _ in range(100):  # at most 20 s; the silent runner is due to be flagged after about 2.4 s
            live_answers.append(client.report_task_runner_heartbeat(taskrunnerId="live")["terminate"])
            item = stored(running, "silent")
            if item is not None and item["status"]["S"] == "stale":
                silent_answer = client.report_task_runner_heartbeat(taskrunnerId="silent")["terminate"]
                break
            time.sleep(0.2)
        assert silent_answer is True
        assert client.report_task_runner_heartbeat(taskrunnerId="silent")["terminate"] is True  # sticky
        assert not any(live_answers)
        assert client.report_task_runner_heartbeat(taskrunnerId="live")["terminate"] is False


# The drain story through make serve and the operator CLI


def heartbeat_ops(endpoint: LocalProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **FAKE_AWS}
    return subprocess.run(
        [sys.executable, "-m", "heartbeat_ops", "runners", *args, "--endpoint-url", endpoint.dynamodb_url,
         "--table", endpoint.table],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_drain_terminate_then_reset_through_the_cli(endpoint: LocalProcess) -> None:
    client = datapipeline(endpoint.url)
    assert client.report_task_runner_heartbeat(taskrunnerId="drain-1", workerGroup="wg")["terminate"] is False
    terminated = heartbeat_ops(endpoint, "terminate", "drain-1", "--reason", "patching the host")
    assert terminated.returncode == 0, terminated.stderr
    assert client.report_task_runner_heartbeat(taskrunnerId="drain-1", workerGroup="wg")["terminate"] is True
    shown = heartbeat_ops(endpoint, "show", "drain-1")
    assert "status                terminating" in shown.stdout
    assert "terminateReason       patching the host" in shown.stdout
    assert heartbeat_ops(endpoint, "reset", "drain-1").returncode == 0
    assert client.report_task_runner_heartbeat(taskrunnerId="drain-1", workerGroup="wg")["terminate"] is False
    missing = heartbeat_ops(endpoint, "terminate", "nobody")
    assert (missing.returncode, missing.stderr) == (1, f"error: no runner 'nobody' in table '{endpoint.table}'\n")


def test_cli_needs_no_aws_configuration_against_make_serve(endpoint: LocalProcess, tmp_path: Path) -> None:
    datapipeline(endpoint.url).report_task_runner_heartbeat(taskrunnerId="unconfigured-1")
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    bare.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    result = subprocess.run(
        [sys.executable, "-m", "heartbeat_ops", "runners", "show", "unconfigured-1", "--endpoint-url",
         endpoint.dynamodb_url, "--table", endpoint.table],
        cwd=ROOT, env=bare, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "taskrunnerId" in result.stdout
    assert "unconfigured-1" in result.stdout
