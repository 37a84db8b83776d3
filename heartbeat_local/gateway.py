"""What API Gateway does around the Lambda handler, done locally.

A REST API Lambda-proxy integration with binary media type ``*/*`` (as the
deployed stack configures it) hands the handler the exact request bytes,
base64-encoded, and writes back whatever status, headers and body it returns.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

STAGE = "local"
# Headers the gateway writes itself (the HTTP server: Date, Connection, framing); the handler's never reach the client.
GATEWAY_OWNED_HEADERS = frozenset({"date", "connection", "content-length", "transfer-encoding", "keep-alive"})


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "heartbeat-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:heartbeat-local"
    log_group_name: str = "/aws/lambda/heartbeat-local"
    log_stream_name: str = "local"
    remaining_ms: int = 10_000  # the handler's timeout; the sweeper's context gives its own

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def proxy_event(
    method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """The REST API proxy event API Gateway would send for this request."""
    url = urlsplit(target)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query_multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query_multi.setdefault(name, []).append(value)
    request_id = str(uuid.uuid4())
    path = url.path or "/"
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query_multi.items()} or None,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            # The path the client called, as API Gateway puts it here: make serve serves its stage at the root,
            # as a custom domain mapped without a base path does, so it is the event's path (what clients sign).
            "path": path,
            "stage": STAGE,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent")},
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
        },
        "body": base64.b64encode(body).decode("ascii") if body else None,
        "isBase64Encoded": bool(body),
    }


def proxy_response(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body bytes from a Lambda proxy integration result."""
    headers: dict[str, list[str]] = {}
    for name, value in (result.get("headers") or {}).items():
        headers[name] = [str(value)]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = [str(v) for v in values]
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode("utf-8")
    return int(result["statusCode"]), [(k, v) for k, vs in headers.items() for v in vs], body


def gateway_answer(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """What the gateway sends back for a proxy integration result: its status, its headers less those the
    gateway writes itself, and its body with the Content-Length."""
    status, headers, body = proxy_response(result)
    kept = [(name, value) for name, value in headers if name.lower() not in GATEWAY_OWNED_HEADERS]
    return status, [*kept, ("Content-Length", str(len(body)))], body
