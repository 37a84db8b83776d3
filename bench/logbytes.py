"""Log bytes per heartbeat, from real runs of the handler on both front doors' events.

What is measured: the handler's own output (Powertools log lines and EMF metric lines) captured
while it serves each path a heartbeat can take, and the front door's access-log line filled in
from the same request and answer. What is not run here is written from AWS's documented formats,
with the values of the same request: Lambda's platform lines (START/END/REPORT and the X-Ray
line), which Lambda emits only at system log level INFO or DEBUG (the stack sets WARN, so none
are written: they are INFO events), and the ALB's access log entry (to S3, opt-in, never to
CloudWatch Logs).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from moto import mock_aws

from bench.canned import RUNNER_ATTRIBUTES
from heartbeat.config import (
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_STALE_AFTER_SECONDS,
    DEFAULT_SWEEP_INTERVAL_SECONDS,
    Config,
)
from heartbeat.handler import Dependencies, make_handler
from heartbeat.observability import SERVICE
from heartbeat.store import RunnerStore
from heartbeat.sweeper import sweep
from heartbeat_local.gateway import LocalLambdaContext
from heartbeat_local.server import create_table
from tests.support import heartbeat_event

# The stack's REST access-log format (AccessLogFormat.json_with_standard_fields with caller and user
# off); tests/infra checks that the synthesized stage carries exactly this.
REST_ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime",'
    '"httpMethod":"$context.httpMethod","resourcePath":"$context.resourcePath","status":"$context.status",'
    '"protocol":"$context.protocol","responseLength":"$context.responseLength"}'
)
# CloudWatch Logs counts 26 bytes per event on top of its message (PutLogEvents' batch size rule);
# the cost model bills them too, to err high.
EVENT_OVERHEAD_BYTES = 26
KEYS: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
TABLE = "logbytes"
THRESHOLD = DEFAULT_STALE_AFTER_SECONDS
RETENTION = DEFAULT_RETENTION_SECONDS
BEAT = {
    "taskrunnerId": str(RUNNER_ATTRIBUTES["taskrunnerId"]["S"]),
    "workerGroup": str(RUNNER_ATTRIBUTES["workerGroup"]["S"]),
    "hostname": str(RUNNER_ATTRIBUTES["hostname"]["S"]),
}


@contextlib.contextmanager
def lambda_output() -> Iterator[Callable[[], list[str]]]:
    """Everything the handler writes to stdout (Powertools' logger and EMF lines), as Lambda would see it."""
    stream = io.StringIO()
    handler = logging.getLogger(SERVICE).handlers[0]
    if not isinstance(handler, logging.StreamHandler):
        raise TypeError(f"Powertools' handler is a {type(handler).__name__}, not a stream handler")
    previous = handler.setStream(stream)
    try:
        with contextlib.redirect_stdout(stream):
            yield lambda: stream.getvalue().splitlines()
    finally:
        handler.setStream(previous)


def rest_access_log(event: dict[str, Any], result: dict[str, Any]) -> str:
    """The REST stage's access-log line for this request and answer."""
    context = event["requestContext"]
    values = {
        "$context.requestId": context["requestId"],
        "$context.identity.sourceIp": context["identity"]["sourceIp"],
        "$context.requestTime": context["requestTime"],
        "$context.httpMethod": event["httpMethod"],
        "$context.resourcePath": context["resourcePath"],
        "$context.status": str(result["statusCode"]),
        "$context.protocol": context["protocol"],
        "$context.responseLength": str(len(result["body"].encode())),
    }
    line = REST_ACCESS_LOG_FORMAT
    for name in sorted(values, key=len, reverse=True):  # $context.requestId before a shorter prefix
        line = line.replace(name, values[name])
    return line


def alb_access_log(event: dict[str, Any], result: dict[str, Any]) -> str:
    """The ALB's access-log entry (documented space-separated format) for this request, as S3 receives it."""
    headers = event.get("headers") or {}
    arn = event["requestContext"]["elb"]["targetGroupArn"]
    return " ".join([
        "https", "2026-11-24T12:00:00.123456Z", "app/heartbeat/50dc6c495c0c9188", "10.0.1.25:52814", "-",
        "0.001", "0.006", "0.000", str(result["statusCode"]), str(result["statusCode"]), "412", "251",
        '"POST https://internal-heartbeat-1234567890.us-east-1.elb.amazonaws.com:443/ HTTP/1.1"',
        f'"{headers.get("user-agent", "-")}"', "ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2", arn,
        f'"{headers.get("x-amzn-trace-id", "-")}"', '"internal-heartbeat-1234567890.us-east-1.elb.amazonaws.com"',
        '"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"', "0",
        "2026-11-24T12:00:00.116000Z", '"forward"', '"-"', '"-"', '"-"', '"-"', '"-"', '"-"',
        "TID_1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f",
    ])  # fmt: skip


def platform_lines_at_info(request_id: str) -> dict[str, str]:
    """Lambda's text-format platform lines for one invocation, at system log level INFO (not the stack's)."""
    return {
        "START": f"START RequestId: {request_id} Version: $LATEST",
        "END": f"END RequestId: {request_id}",
        "REPORT": (
            f"REPORT RequestId: {request_id}\tDuration: 4.81 ms\tBilled Duration: 5 ms\tMemory Size: 256 MB\t"
            "Max Memory Used: 91 MB\t\nXRAY TraceId: 1-6743a2b0-2c5f0e4b7d1a9f3e5b6c7d8e\t"
            "SegmentId: 2c5f0e4b7d1a9f3e\tSampled: true\t"
        ),
    }


def log_bytes() -> dict[str, Any]:
    """Bytes per heartbeat by source, for each path through the handler, on the REST and the ALB event."""
    rows = []
    with mock_aws():
        client = boto3.client("dynamodb", **KEYS)
        create_table(client, TABLE)
        clock = [1_795_521_600.0]
        store = RunnerStore(TABLE, client=client)
        config = Config(TABLE, stale_after_seconds=THRESHOLD, retention_seconds=RETENTION)
        handler = make_handler(lambda: Dependencies(config, store, lambda: clock[0]))

        def beat(path: str, shape: str, body: dict[str, Any] | str = BEAT) -> None:
            event = heartbeat_event(json.dumps(body).encode() if isinstance(body, dict) else body, shape=shape)
            with lambda_output() as output:
                result = handler(event, LocalLambdaContext())  # type: ignore[arg-type]
            lines = output()
            emf = [line for line in lines if line.startswith('{"_aws"')]
            application = [line for line in lines if line not in emf]
            access = rest_access_log(event, result) if shape == "rest" else alb_access_log(event, result)
            rows.append({
                "path": path, "front_door": shape, "status": result["statusCode"],
                "application_bytes": sum(len(line.encode()) for line in application),
                "application_lines": len(application),
                "emf_bytes": sum(len(line.encode()) for line in emf), "emf_lines": len(emf),
                "access_log_bytes": len(access.encode()),
                "access_log_to": "CloudWatch Logs" if shape == "rest" else "S3 (opt-in)",
            })  # fmt: skip

        for shape in ("rest", "alb"):
            store_id = f"{shape}-runner"
            runner = {**BEAT, "taskrunnerId": BEAT["taskrunnerId"] + "-" + store_id}
            beat("first heartbeat (new runner)", shape, runner)
            clock[0] += 900
            beat("steady-state heartbeat", shape, runner)
            beat("refused heartbeat (bad JSON)", shape, "{")
        # A flagged runner's next heartbeat: the terminate answer.
        clock[0] += THRESHOLD + 1
        for _ in range(int(THRESHOLD / DEFAULT_SWEEP_INTERVAL_SECONDS) + 2):
            clock[0] += DEFAULT_SWEEP_INTERVAL_SECONDS
            sweep(store, config, clock[0])
        for shape in ("rest", "alb"):
            runner = {**BEAT, "taskrunnerId": BEAT["taskrunnerId"] + f"-{shape}-runner"}
            beat("terminate answer (flagged runner)", shape, runner)
    platform = platform_lines_at_info(str(uuid.uuid4()))
    steady = {row["front_door"]: row for row in rows if row["path"] == "steady-state heartbeat"}
    per_heartbeat = {}
    for shape, row in steady.items():
        cloudwatch = row["application_bytes"] + row["emf_bytes"] + (row["access_log_bytes"] if shape == "rest" else 0)
        events = row["application_lines"] + row["emf_lines"] + (1 if shape == "rest" else 0)
        per_heartbeat[shape] = {
            "access_log": row["access_log_bytes"] if shape == "rest" else 0,
            "platform": 0,  # system log level WARN: START/END/REPORT are INFO events, not written
            "emf": row["emf_bytes"],
            "application": row["application_bytes"],
            "cloudwatch_bytes": cloudwatch,
            "cloudwatch_events": events,
            "billed_bytes": cloudwatch + EVENT_OVERHEAD_BYTES * events,
            "alb_access_log_to_s3": row["access_log_bytes"] if shape == "alb" else 0,
        }
    return {
        "paths": rows,
        "per_heartbeat": per_heartbeat,
        "platform_at_info_bytes": {name: len(line.encode()) for name, line in platform.items()},
        "event_overhead_bytes": EVENT_OVERHEAD_BYTES,
    }
