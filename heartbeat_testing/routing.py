"""How a client's ReportTaskRunnerHeartbeat reaches the kit: a route in front of moto's Data Pipeline.

``mock_aws`` answers every botocore request from its ``before-send`` stubber. The stubber finds
the service's handler in the service's routing table (``moto.datapipeline.urls.url_paths``)
and turns the handler's (status, headers, body) into the HTTP response botocore parses. moto
has no ReportTaskRunnerHeartbeat. So while a fleet runs, each route in that table first looks
at X-Amz-Target:
- a heartbeat goes to the real handler as API Gateway's REST proxy event, and its answer goes
  back as the gateway sends it;
- every other request goes on to moto's own handler, untouched.

Why this seam: botocore calls every ``before-send`` handler, so a handler of our own beside
moto's could not stop moto's from raising NotImplementedError for the operation. The routing
table is where moto itself decides who answers a request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from unittest import mock
from urllib.parse import urlsplit

from heartbeat_local.gateway import LocalLambdaContext, gateway_answer, proxy_event

HEARTBEAT_TARGET = "DataPipeline.ReportTaskRunnerHeartbeat"

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
MotoAnswer = tuple[int, Any, Any]


class MotoHandler(Protocol):
    """A handler in moto's routing table: the request, its URL and its headers in; status, headers, body out."""

    def __call__(self, request: Any, full_url: str, headers: Any) -> MotoAnswer: ...


def _header(headers: Any, name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def _body(request: Any) -> bytes:
    """The request's body bytes: moto hands over a werkzeug request (get_data), older 5.x botocore's own (body)."""
    body = request.get_data() if hasattr(request, "get_data") else request.body
    if body is None:
        return b""
    if hasattr(body, "read"):
        body = body.read()
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def answer_heartbeat(handler: LambdaHandler, request: Any, full_url: str, headers: Any) -> MotoAnswer:
    """The request through the handler as API Gateway's REST proxy integration passes it; its answer as sent back."""
    url = urlsplit(full_url)
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    pairs = [(str(k), v.decode() if isinstance(v, bytes) else str(v)) for k, v in headers.items()]
    event = proxy_event(str(request.method), target, pairs, _body(request))
    status, answer_headers, body = gateway_answer(handler(event, LocalLambdaContext()))
    return status, dict(answer_headers), body


def heartbeat_route(handler: LambdaHandler, moto_handler: MotoHandler) -> MotoHandler:
    """A route that answers ReportTaskRunnerHeartbeat with the handler and leaves every other request to moto's."""

    def route(request: Any, full_url: str, headers: Any) -> MotoAnswer:
        target = _header(headers, "X-Amz-Target")
        if target is None or target.strip() != HEARTBEAT_TARGET:
            return moto_handler(request, full_url, headers)
        return answer_heartbeat(handler, request, full_url, headers)

    return route


@contextmanager
def heartbeats_routed_to(handler: LambdaHandler) -> Iterator[None]:
    """While inside, every Data Pipeline route of moto answers heartbeats with the handler."""
    from moto.datapipeline import urls

    routes = {path: heartbeat_route(handler, moto_handler) for path, moto_handler in urls.url_paths.items()}
    with mock.patch.dict(urls.url_paths, routes):
        yield
