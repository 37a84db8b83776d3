"""Unmodified clients with a key issued by `heartbeat-ops keys create`, against `make serve` with AUTH_MODE=sigv4.

boto3, the AWS CLI (environment credentials and a profile), the AWS SDK for JavaScript v3, boto 2
(which states region and service from the host name) and requests-aws4auth (which signs
x-amz-content-sha256) each sign their own way; each answers 200. Each refusal raises the named
error in boto3 and in the JS SDK, none retried by botocore, and stores nothing.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from heartbeat_local.process import FAKE_AWS, ROOT, LocalProcess
from tests.endtoend.test_clients import AWS_CLI, heartbeat, js_sdk

pytestmark = pytest.mark.clients

Credentials = dict[str, str]


SERVE_SETTINGS = {"AUTH_MODE": "sigv4"}  # make serve's environment for the endpoint fixture (conftest.py)


def ops(endpoint: LocalProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "heartbeat_ops", *args, "--endpoint-url", endpoint.dynamodb_url,
         "--table", endpoint.table],
        cwd=ROOT, env={**os.environ, **FAKE_AWS}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def issue(endpoint: LocalProcess, *scope: str) -> Credentials:
    """A key from `heartbeat-ops keys create --json`, as an operator would hand it to a runner's host."""
    created = ops(endpoint, "keys", "create", "--json", *scope)
    assert created.returncode == 0, created.stderr
    credentials: Credentials = json.loads(created.stdout)
    assert set(credentials) == {"accessKeyId", "secretAccessKey"}
    return credentials


@pytest.fixture(scope="module")
def key(endpoint: LocalProcess) -> Credentials:
    return issue(endpoint)


def datapipeline(endpoint: LocalProcess, credentials: Credentials | None, attempts: int = 3, **config: Any) -> Any:
    """boto3's client as a runner configures it: standard retries (3 attempts), the issued key."""
    keys = {"aws_access_key_id": "HBAKAAAAAAAAAAAAAAAA", "aws_secret_access_key": "x" * 40}
    if credentials:
        keys = {
            "aws_access_key_id": credentials["accessKeyId"],
            "aws_secret_access_key": credentials["secretAccessKey"],
        }
    retries = {"mode": "standard", "total_max_attempts": attempts}
    return boto3.client(
        "datapipeline", endpoint_url=endpoint.url, region_name="us-east-1",
        config=BotoConfig(retries=retries, **config), **keys,
    )  # fmt: skip


def stored(endpoint: LocalProcess, runner_id: str) -> dict[str, Any] | None:
    item = endpoint.dynamodb().get_item(TableName=endpoint.table, Key={"taskrunnerId": {"S": runner_id}})
    return item.get("Item")


# Each signs its own way, and each is answered.


def test_boto3_with_an_issued_key_is_answered_and_its_runner_bound_to_the_key(
    endpoint: LocalProcess, key: Credentials
) -> None:
    response = datapipeline(endpoint, key).report_task_runner_heartbeat(taskrunnerId="boto3-1", workerGroup="wg")
    assert response["terminate"] is False
    item = stored(endpoint, "boto3-1")
    assert item is not None
    assert item["keyId"]["S"] == key["accessKeyId"]


def aws_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [AWS_CLI, "datapipeline", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**base, "AWS_DEFAULT_REGION": "us-east-1", "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "1",
             "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, **env},
    )  # fmt: skip


def test_the_aws_cli_with_environment_credentials(endpoint: LocalProcess, key: Credentials) -> None:
    result = aws_cli(
        "report-task-runner-heartbeat", "--taskrunner-id", "cli-env-1", "--endpoint-url", endpoint.url,
        AWS_ACCESS_KEY_ID=key["accessKeyId"], AWS_SECRET_ACCESS_KEY=key["secretAccessKey"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"terminate": False}


def test_the_aws_cli_with_a_profile(endpoint: LocalProcess, key: Credentials, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[runner]\naws_access_key_id = {key['accessKeyId']}\naws_secret_access_key = {key['secretAccessKey']}\n"
    )
    result = aws_cli(
        "report-task-runner-heartbeat", "--taskrunner-id", "cli-profile-1", "--profile", "runner",
        AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_ENDPOINT_URL_DATA_PIPELINE=endpoint.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stored(endpoint, "cli-profile-1") is not None


def test_the_aws_cli_names_the_error_for_an_unissued_key(endpoint: LocalProcess) -> None:
    result = aws_cli(
        "report-task-runner-heartbeat", "--taskrunner-id", "cli-forged", "--endpoint-url", endpoint.url,
        AWS_ACCESS_KEY_ID="HBAKAAAAAAAAAAAAAAAA", AWS_SECRET_ACCESS_KEY="x" * 40,
    )  # fmt: skip
    assert result.returncode == 255
    assert "An error occurred (UnrecognizedClientException) when calling the ReportTaskRunnerHeartbeat" in (
        result.stderr
    )
    assert stored(endpoint, "cli-forged") is None


def js(endpoint: LocalProcess, credentials: Credentials, cases: list[dict[str, Any]], **options: Any) -> Any:
    env = {"AWS_ACCESS_KEY_ID": credentials["accessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["secretAccessKey"]}
    with mock.patch.dict(os.environ, env):
        return js_sdk(endpoint.url, cases, options or None)


def test_the_js_sdk_v3_with_an_issued_key(endpoint: LocalProcess, key: Credentials) -> None:
    [ok] = js(endpoint, key, [heartbeat(taskrunnerId="js-1", workerGroup="wg", hostname="h")])
    assert (ok["ok"], ok["output"], ok["status"]) == (True, {"terminate": False}, 200)
    assert stored(endpoint, "js-1") is not None


def test_the_js_sdk_corrects_a_skewed_clock_from_the_date_header_and_retries(
    endpoint: LocalProcess, key: Credentials
) -> None:
    # Its clock 10 minutes behind: the first attempt is refused as expired, the SDK takes the time from the
    # answer's Date header, signs again and is answered.
    [ok] = js(endpoint, key, [heartbeat(taskrunnerId="js-skewed")], maxAttempts=3, systemClockOffset=-600_000)
    assert (ok["ok"], ok["attempts"]) == (True, 2), ok


@pytest.mark.filterwarnings("ignore:the imp module is deprecated:DeprecationWarning")
def test_boto_2_which_states_region_and_service_from_the_host_name(endpoint: LocalProcess, key: Credentials) -> None:
    # boto 2 imports the imp module, which Python 3.12 removed: there it cannot run at all.
    layer1 = pytest.importorskip("boto.datapipeline.layer1", reason="boto 2 needs the imp module (Python < 3.12)")
    from boto.regioninfo import RegionInfo

    sent: list[str] = []
    DataPipelineConnection = layer1.DataPipelineConnection  # noqa: N806 - the class, as boto 2 names it

    host, port = endpoint.url.removeprefix("http://").split(":")
    connection = DataPipelineConnection(
        aws_access_key_id=key["accessKeyId"], aws_secret_access_key=key["secretAccessKey"],
        region=RegionInfo(name="us-east-1", endpoint=host), is_secure=False, port=int(port),
    )  # fmt: skip
    sign = connection._auth_handler.add_auth

    def recorded(request: Any, **kwargs: Any) -> Any:
        signed = sign(request, **kwargs)
        sent.append(request.headers["Authorization"])
        return signed

    connection._auth_handler.add_auth = recorded
    assert connection.report_task_runner_heartbeat("boto2-1", worker_group="wg") == {"terminate": False}
    assert stored(endpoint, "boto2-1") is not None
    assert "/0/127/aws4_request," in sent[0]  # region "0", service "127", from 127.0.0.1: accepted as stated


def test_requests_aws4auth_which_signs_the_payload_hash_header(endpoint: LocalProcess, key: Credentials) -> None:
    import requests
    from requests_aws4auth import AWS4Auth

    auth = AWS4Auth(key["accessKeyId"], key["secretAccessKey"], "us-east-1", "datapipeline")
    response = requests.post(
        endpoint.url + "/", data=json.dumps({"taskrunnerId": "aws4auth-1"}), auth=auth, timeout=30,
        headers={"X-Amz-Target": "DataPipeline.ReportTaskRunnerHeartbeat",
                 "Content-Type": "application/x-amz-json-1.1"},
    )  # fmt: skip
    assert "x-amz-content-sha256" in response.request.headers["Authorization"]
    assert (response.status_code, response.json()) == (200, {"terminate": False})


# Each refusal: the named error in boto3 (none retried) and in the JS SDK v3, and nothing stored.


def expired(_: Any) -> Any:
    """Sign as a client whose clock is 10 minutes behind."""
    moment = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    return mock.patch("botocore.auth.get_current_datetime", return_value=moment)


def malformed(client: Any) -> Any:
    def replace(request: Any, **_: Any) -> None:
        request.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential"

    client.meta.events.register("before-send.data-pipeline", replace)
    return mock.patch.dict({})


@pytest.fixture(scope="module")
def scoped(endpoint: LocalProcess) -> Credentials:
    return issue(endpoint, "--worker-group", "etl", "--max-runners", "1")


CASES = {
    "unsigned": ("MissingAuthenticationTokenException", 403),
    "malformed": ("IncompleteSignatureException", 400),
    "unissued": ("UnrecognizedClientException", 400),
    "wrong-secret": ("InvalidSignatureException", 400),
    "expired": ("InvalidSignatureException", 400),
    "another-keys-runner": ("AccessDeniedException", 400),
    "out-of-scope": ("AccessDeniedException", 400),
    "at-cap": ("LimitExceededException", 400),
}


@pytest.mark.parametrize("case", CASES)
def test_boto3_raises_the_named_error_unretried_and_nothing_is_stored(
    endpoint: LocalProcess, key: Credentials, scoped: Credentials, case: str
) -> None:
    code, status = CASES[case]
    runner_id = f"boto3-{case}"
    body: dict[str, Any] = {"taskrunnerId": runner_id, "workerGroup": "etl"}
    credentials: Credentials | None = key
    config: dict[str, Any] = {}
    context: Any = mock.patch.dict({})
    if case == "unsigned":
        config["signature_version"] = UNSIGNED
    elif case == "unissued":
        credentials = None
    elif case == "wrong-secret":
        credentials = {**key, "secretAccessKey": key["secretAccessKey"][::-1]}
    elif case == "another-keys-runner":
        datapipeline(endpoint, scoped).report_task_runner_heartbeat(taskrunnerId=runner_id, workerGroup="etl")
    elif case == "out-of-scope":
        credentials, body["workerGroup"] = scoped, "fast"
    elif case == "at-cap":
        credentials = issue(endpoint, "--max-runners", "1")
        datapipeline(endpoint, credentials).report_task_runner_heartbeat(taskrunnerId="boto3-at-cap-first")
    before = stored(endpoint, runner_id)
    client = datapipeline(endpoint, credentials, **config)
    if case == "malformed":
        context = malformed(client)
    elif case == "expired":
        context = expired(client)
    with context, pytest.raises(ClientError) as excinfo:
        client.report_task_runner_heartbeat(**body)
    error = excinfo.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)
    # botocore retries none of these, but LimitExceededException, which it (and the JS SDK) classes as
    # throttling: each retry is refused again, storing nothing (docs/authentication.md).
    assert error["ResponseMetadata"]["RetryAttempts"] == (2 if case == "at-cap" else 0)
    assert stored(endpoint, runner_id) == before


def test_the_js_sdk_v3_names_each_error(endpoint: LocalProcess, key: Credentials) -> None:
    scoped = issue(endpoint, "--worker-group", "etl")
    datapipeline(endpoint, scoped).report_task_runner_heartbeat(taskrunnerId="js-theirs", workerGroup="etl")
    capped = issue(endpoint, "--max-runners", "1")
    datapipeline(endpoint, capped).report_task_runner_heartbeat(taskrunnerId="js-capped-first")
    results = {
        "unsigned": js(endpoint, key, [{**heartbeat(taskrunnerId="js-unsigned"), "authorization": ""}]),
        "malformed": js(
            endpoint, key, [{**heartbeat(taskrunnerId="js-malformed"), "authorization": "AWS4-HMAC-SHA256 x"}]
        ),
        "unissued": js(endpoint, {"accessKeyId": "HBAKAAAAAAAAAAAAAAAA", "secretAccessKey": "x" * 40},
                       [heartbeat(taskrunnerId="js-unissued")]),
        "wrong-secret": js(endpoint, {**key, "secretAccessKey": key["secretAccessKey"][::-1]},
                           [heartbeat(taskrunnerId="js-wrong")]),
        "expired": js(endpoint, key, [heartbeat(taskrunnerId="js-expired")], systemClockOffset=-600_000),
        "another-keys-runner": js(endpoint, key, [heartbeat(taskrunnerId="js-theirs", workerGroup="etl")]),
        "out-of-scope": js(endpoint, scoped, [heartbeat(taskrunnerId="js-scope", workerGroup="fast")]),
        "at-cap": js(endpoint, capped, [heartbeat(taskrunnerId="js-capped-second")]),
    }  # fmt: skip
    for case, [result] in results.items():
        code, status = CASES[case]
        assert (result["ok"], result["name"], result["status"]) == (False, code, status), (case, result)
    for runner_id in ("js-unsigned", "js-malformed", "js-unissued", "js-wrong", "js-expired", "js-scope"):
        assert stored(endpoint, runner_id) is None
    assert stored(endpoint, "js-capped-second") is None


# The three attacks against make serve: an outsider without a key, and an insider with one of its own.


def test_attacks_against_make_serve_change_nothing_of_the_fleet(endpoint: LocalProcess) -> None:
    fleet = issue(endpoint, "--worker-group", "etl", "--worker-group", "fast")
    insider = issue(endpoint, "--worker-group", "batch", "--max-runners", "5")
    runner = datapipeline(endpoint, fleet)
    runner.report_task_runner_heartbeat(taskrunnerId="victim-1", workerGroup="etl", hostname="h")
    victim = stored(endpoint, "victim-1")
    outsider = datapipeline(endpoint, None, attempts=1, signature_version=UNSIGNED)
    own_key = datapipeline(endpoint, insider, attempts=1)
    codes: dict[str, int] = {}

    def attempt(client: Any, **body: Any) -> None:
        try:
            client.report_task_runner_heartbeat(**body)
            codes["answered"] = codes.get("answered", 0) + 1
        except ClientError as error:
            code = error.response["Error"]["Code"]
            codes[code] = codes.get(code, 0) + 1

    for n in range(101):  # blind the sweeper: never-seen ids
        attempt(outsider, taskrunnerId=f"ghost-{n}", workerGroup="etl")
        attempt(own_key, taskrunnerId=f"insider-ghost-{n}", workerGroup="batch")
    for client in (outsider, own_key):
        attempt(client, taskrunnerId="victim-1", workerGroup="etl")  # keep a dead runner alive
        attempt(client, taskrunnerId="victim-1", workerGroup="fast")  # move it to a short threshold
    assert codes == {
        "MissingAuthenticationTokenException": 103, "answered": 5, "LimitExceededException": 96,
        "AccessDeniedException": 2,
    }  # fmt: skip
    assert stored(endpoint, "victim-1") == victim
    assert all(stored(endpoint, f"ghost-{n}") is None for n in range(101))
    assert sum(stored(endpoint, f"insider-ghost-{n}") is not None for n in range(101)) == 5
