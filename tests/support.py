"""The tests' helpers and doubles, once: canonical events, a controllable clock, Lambda's context, request
counting, store faults and canned answers at botocore's hooks (the bench uses them too)."""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import json
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest, AWSResponse, HTTPHeaders
from botocore.credentials import Credentials

from heartbeat_local.gateway import LocalLambdaContext

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


# The example key the canonical events are signed with (tests/events), as an issued key would be.
EXAMPLE_KEY_ID = "HBAKEXAMPLEKEYABCDEF"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def event_header(event: dict[str, Any], name: str) -> str | None:
    """A header of an event of any shape, by name in any case (the last value of a repeated one)."""
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower() and values:
            return str(values[-1])
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def set_event_header(event: dict[str, Any], name: str, value: str | None) -> None:
    """Set (or with None, remove) a header in every header map the event has, as its front door would."""
    for headers in (event.get("headers"), event.get("multiValueHeaders")):
        if headers is None:
            continue
        for key in [k for k in headers if k.lower() == name.lower()]:
            del headers[key]
        if value is not None:
            spelled = name.lower() if "elb" in event["requestContext"] else name
            headers[spelled] = [value] if headers is event.get("multiValueHeaders") else value


def signed_path(event: dict[str, Any]) -> str:
    """The path the client called: API Gateway's requestContext.path (stage included), an ALB's path."""
    context = event["requestContext"]
    return str(event["path"] if "elb" in context else context.get("path") or event["path"])


def sign_event(
    event: dict[str, Any],
    key_id: str = EXAMPLE_KEY_ID,
    secret: str = EXAMPLE_SECRET,
    *,
    at: float | None = None,
    region: str = "us-east-1",
    service: str = "datapipeline",
) -> dict[str, Any]:
    """The event with the Authorization botocore's signer makes for its body, host, path and target, as a client would.

    at is the signing time (default: the event's X-Amz-Date, else the test clock's start).
    """
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8", "surrogatepass")
    host = event_header(event, "Host") or "localhost"
    headers = {name: event_header(event, name) for name in ("Content-Type", "X-Amz-Target")}
    request = AWSRequest(
        method=event["httpMethod"], url=f"https://{host}{signed_path(event)}", data=raw,
        headers={k: v for k, v in headers.items() if v is not None},
    )  # fmt: skip
    if at is None:
        sent = event_header(event, "X-Amz-Date")
        at = (
            datetime.datetime.strptime(sent, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC).timestamp()
            if sent
            else FakeClock().now
        )
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC).replace(tzinfo=None)
    signer = botocore.auth.SigV4Auth(Credentials(key_id, secret), service, region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):  # botocore reads its clock there
        signer.add_auth(request)
    set_event_header(event, "X-Amz-Date", str(request.headers["X-Amz-Date"]))
    set_event_header(event, "Authorization", str(request.headers["Authorization"]))
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


# Lambda's context as the handlers read it (Powertools' attributes): the one make serve passes them.
LambdaContext = LocalLambdaContext


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


class Fault:
    """Makes chosen DynamoDB calls fail before they are sent, counting the attempts, until cleared.

    For a client on a real HTTP DynamoDB (moto's server): a failed attempt never reaches it.
    """

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


class LostResponse:
    """DynamoDB applies the chosen calls, but the client never gets their answer; it sees the failure given.

    Each of the first `times` attempts is sent to the server as botocore prepared it, byte for byte, and
    its response is dropped: what a read timeout, a reset connection or a 500 after the write looks like.
    botocore then retries as it would against DynamoDB.
    """

    def __init__(self, client: Any, operation: str, failure: Callable[[], Any], times: int = 1) -> None:
        self.lost = 0
        self.times = times
        self._failure = failure
        client.meta.events.register(f"before-send.dynamodb.{operation}", self._on_send)

    def _on_send(self, request: Any, **_: Any) -> Any:
        if self.lost >= self.times:
            return None
        self.lost += 1
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        sent = urllib.request.Request(request.url, data=body, headers=headers, method=request.method)  # noqa: S310
        with contextlib.suppress(urllib.error.HTTPError):  # refused (a failed condition): lost either way
            urllib.request.urlopen(sent, timeout=10).read()  # noqa: S310 - the test's own loopback server
        return self._failure()


class _Raw:
    """An HTTP body as urllib3 streams it to botocore."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def canned_response(url: str, status: int, body: bytes, headers: dict[str, str] | None = None) -> AWSResponse:
    """An HTTP answer as botocore receives it, for a before-send hook to return: botocore parses it as sent."""
    return AWSResponse(url, status, HTTPHeaders.from_dict(headers or {}), _Raw(body))


def error_response(status: int, code: str) -> Callable[[], AWSResponse]:
    """A DynamoDB error answer, as botocore would receive it."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code}).encode()
    return lambda: canned_response("http://dynamodb", status, body, {"x-amzn-ErrorType": code})


def raise_(error: Exception) -> Callable[[], Any]:
    """A failure that raises the error, as botocore's HTTP layer would."""

    def fail() -> Any:
        raise error

    return fail


@contextlib.contextmanager
def dynamodb_clock(clock: Callable[[], float]) -> Iterator[None]:
    """DynamoDB's clock, as its answers' Date header tells it, reads `clock` (a simulated service time).

    Every botocore session created inside (heartbeat-ops builds its own) stamps each DynamoDB answer
    with that time, as moto's own stub does for its answers; the sessions' other handlers are untouched.
    """
    import email.utils

    import botocore.handlers

    def stamp(response_dict: dict[str, Any], **_: Any) -> None:
        response_dict["headers"]["Date"] = email.utils.formatdate(clock(), usegmt=True)

    entry = ("before-parse.dynamodb", stamp)
    botocore.handlers.BUILTIN_HANDLERS.append(entry)
    try:
        yield
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(entry)
