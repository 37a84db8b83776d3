"""Helpers shared by the tests: canonical events, a controllable clock, request counting."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"
TARGET = "DataPipeline.ReportTaskRunnerHeartbeat"
TARGET_HEADER = "X-Amz-Target"


def load_event(name: str) -> dict[str, Any]:
    """A canonical event from tests/events, as a fresh copy."""
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


# The front doors' event shapes every handler test runs on: API Gateway's REST proxy, and an ALB
# target group with multi-value headers off (the default, as the stack deploys it). Header and
# routing tests also run on "alb-multivalue" (the target group's multi-value option on).
EVENT_SHAPES = ("rest", "alb")
ALL_SHAPES = (*EVENT_SHAPES, "alb-multivalue")


def heartbeat_event(
    body: dict[str, Any] | str | bytes | None = None,
    *,
    target: str | None = TARGET,
    method: str = "POST",
    path: str = "/",
    base64_body: bool = False,
    shape: str = "rest",
) -> dict[str, Any]:
    """A canonical event of the given shape, with the body, target, method and path given.

    A dict body is sent as JSON, a str or bytes as is (bytes base64-encoded, as both front doors
    send an application/x-amz-json-1.1 body); each REST event gets its own request id.
    """
    event = load_event("heartbeat_alb" if shape.startswith("alb") else "heartbeat_rest")
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, bytes) or (base64_body and body is not None):
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    elif shape.startswith("alb"):
        event["body"], event["isBase64Encoded"] = body or "", False  # an ALB sends "" for no body
    else:
        event["body"], event["isBase64Encoded"] = body, False
    event["httpMethod"] = method
    event["path"] = path
    if shape == "rest":
        event["requestContext"]["httpMethod"] = method
        event["resource"] = event["requestContext"]["resourcePath"] = path
        event["requestContext"]["requestId"] = str(uuid.uuid4())
    header_maps = [event["headers"], event.get("multiValueHeaders") or {}]
    for headers in header_maps:
        for name in [n for n in headers if n.lower() == TARGET_HEADER.lower()]:
            del headers[name]
    if target is not None:
        name = "X-Amz-Target" if shape == "rest" else "x-amz-target"  # an ALB passes names in lower case
        event["headers"][name] = target
        if shape == "rest":
            event["multiValueHeaders"][name] = [target]
    if shape == "alb-multivalue":
        event["multiValueHeaders"] = {name: [value] for name, value in event.pop("headers").items()}
        event["multiValueQueryStringParameters"] = event.pop("queryStringParameters")
    return event


def request_id_sent(event: dict[str, Any]) -> str | None:
    """The request id the front door put in the event: API Gateway's; an ALB sends none."""
    request_id: str | None = event["requestContext"].get("requestId")
    return request_id


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: float = 1_795_521_600.0  # 2026-11-24T12:00:00Z

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class LambdaContext:
    """The attributes of Lambda's context that Powertools reads."""

    function_name: str = "heartbeat-api"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:heartbeat-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class RequestCounter:
    """Counts the API calls a botocore client makes, by operation name."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def reset(self) -> None:
        self.calls.clear()


def answer(result: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, decoded JSON body and headers (single- and multi-value merged) of a proxy result."""
    headers = dict(result.get("headers") or {})
    for name, values in (result.get("multiValueHeaders") or {}).items():
        assert len(values) == 1, f"header {name} sent {len(values)} times"
        headers[name] = values[0]
    return result["statusCode"], json.loads(result["body"]), headers
