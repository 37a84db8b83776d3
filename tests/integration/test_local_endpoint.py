"""The local endpoint itself (what ``make serve`` runs): start-up, HTTP details, shutdown."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from heartbeat_local.process import FAKE_AWS, ROOT, local_endpoint


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("POST", "/", body=body, headers=headers)
    response = connection.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return result


def test_bad_setting_stops_start_up_naming_the_variable() -> None:
    env = {**os.environ, **FAKE_AWS, "PYTHONPATH": f"{ROOT / 'lambda_src'}{os.pathsep}{ROOT}", "PORT": "0",
           "STALE_AFTER_SECONDS": "5", "RETENTION_SECONDS": "5"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "heartbeat_local"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "RETENTION_SECONDS (5) must exceed STALE_AFTER_SECONDS (5)" in result.stderr


def test_raw_http_answer_has_exactly_the_protocol_headers(tmp_path: Path) -> None:
    with local_endpoint(tmp_path) as running:
        status, headers, body = post(
            running.url,
            b'{"taskrunnerId":"raw-1"}',
            {"X-Amz-Target": "DataPipeline.ReportTaskRunnerHeartbeat", "Content-Type": "application/x-amz-json-1.1"},
        )
    assert (status, body) == (200, b'{"terminate":false}')
    assert set(headers) == {"Content-Type", "Date", "x-amzn-RequestId", "Content-Length"}
    assert headers["Content-Type"] == "application/x-amz-json-1.1"


def test_body_over_64_kib_is_refused_with_413_and_nothing_stored(tmp_path: Path) -> None:
    with local_endpoint(tmp_path) as running:
        body = json.dumps({"taskrunnerId": "big", "pad": "x" * 70_000}).encode()
        status, headers, payload = post(running.url, body, {"X-Amz-Target": "DataPipeline.ReportTaskRunnerHeartbeat"})
        item = running.dynamodb().get_item(TableName=running.table, Key={"taskrunnerId": {"S": "big"}})
    assert (status, headers["x-amzn-ErrorType"]) == (413, "RequestEntityTooLargeException")
    assert json.loads(payload)["__type"] == "RequestEntityTooLargeException"
    assert "Item" not in item


def test_sigterm_stops_the_endpoint_cleanly(tmp_path: Path) -> None:
    with local_endpoint(tmp_path) as running:
        process = running.process
    assert process.returncode == 0
    assert "Stopping: finishing in-flight requests" in running.output()


def test_body_over_the_gateway_limit_is_refused_by_the_gateway_in_awsjson(tmp_path: Path) -> None:
    with local_endpoint(tmp_path) as running:
        parts = urlsplit(running.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.putrequest("POST", "/")
        connection.putheader("X-Amz-Target", "DataPipeline.ReportTaskRunnerHeartbeat")
        connection.putheader("Content-Length", str(11 * 1024 * 1024))  # over API Gateway's 10 MB, never sent
        connection.endheaders()
        response = connection.getresponse()
        body = json.loads(response.read())
        headers = dict(response.getheaders())
        connection.close()
    assert (response.status, body["__type"], headers["x-amzn-ErrorType"]) == (
        413, "RequestEntityTooLargeException", "RequestEntityTooLargeException",
    )  # fmt: skip
    assert headers["Date"]
    assert headers["x-amzn-RequestId"]
