"""The local endpoint: a threaded HTTP server in front of the real Lambda handlers.

Each request becomes an API Gateway REST proxy event for ``heartbeat.handler.lambda_handler``;
the sweeper's own ``lambda_handler`` runs on a timer. DynamoDB is moto's server,
embedded and in memory, unless an external one is given.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from heartbeat_local.gateway import LocalLambdaContext, proxy_event, proxy_response

# API Gateway's own payload limit; the handler refuses far less (64 KiB) itself.
GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
# A client that stalls mid-request is dropped after this long, so it never holds a worker.
SOCKET_TIMEOUT_SECONDS = 10.0
DEFAULT_TABLE_NAME = "taskrunner-heartbeat"


@dataclass(frozen=True)
class ServeSettings:
    """How to serve, from the environment (see the README's Local section)."""

    host: str = "127.0.0.1"
    port: int = 8080
    sweep_interval_seconds: float = 60.0
    table_name: str = DEFAULT_TABLE_NAME
    dynamodb_endpoint: str | None = None  # None: embedded moto
    dynamodb_port: int = 0  # embedded store's port; 0 picks a free one
    access_log: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServeSettings:
        external = env.get("AWS_ENDPOINT_URL_DYNAMODB") or None
        if external and not env.get("TABLE_NAME"):
            raise SystemExit("AWS_ENDPOINT_URL_DYNAMODB is set: set TABLE_NAME to the table to use there too")
        return cls(
            host=env.get("HOST", "127.0.0.1"),
            port=_number(env, "PORT", 8080, int),
            sweep_interval_seconds=_number(env, "SWEEP_INTERVAL_SECONDS", 60.0, float),
            table_name=env.get("TABLE_NAME") or DEFAULT_TABLE_NAME,
            dynamodb_endpoint=external,
            dynamodb_port=_number(env, "DYNAMODB_PORT", 0, int),
            access_log=env.get("ACCESS_LOG", "1") not in ("0", "false", "no"),
        )


def _number(env: Mapping[str, str], name: str, default: Any, kind: Callable[[str], Any]) -> Any:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise SystemExit(f"{name} must not be negative, got {raw!r}")
    return value


def create_table(client: Any, table_name: str) -> None:
    """The table as the stack defines it: on-demand, keyed on taskrunnerId, TTL on expiresAt."""
    from heartbeat.store import TTL_ATTRIBUTE

    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "taskrunnerId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "taskrunnerId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _HTTPServer
    timeout = SOCKET_TIMEOUT_SECONDS

    def _serve(self) -> None:
        self.server.track(+1)
        try:
            self._serve_one()
        finally:
            self.server.track(-1)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _serve_one(self) -> None:
        started = time.perf_counter()
        body = self._read_body()
        if body is None:
            return
        event = proxy_event(self.command, self.path, self.headers.items(), body, self.client_address[0])
        result = self.server.invoke(event)
        status, headers, payload = proxy_response(result)
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        if self.server.access_log:
            target = self.headers.get("X-Amz-Target", "-")
            elapsed = (time.perf_counter() - started) * 1000
            sys.stderr.write(f"{self.command} {self.path} {target} {status} {elapsed:.1f}ms\n")

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._gateway_error(400, "BadRequestException", "Invalid Content-Length")
            return None
        if length > GATEWAY_MAX_BODY_BYTES:
            self._gateway_error(413, "RequestEntityTooLargeException", "Request Too Long")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            total += size
            if total > GATEWAY_MAX_BODY_BYTES:
                self._gateway_error(413, "RequestEntityTooLargeException", "Request Too Long")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _gateway_error(self, status: int, code: str, message: str) -> None:
        """An error from the gateway itself, in the awsJson envelope as the stack's gateway responses write it."""
        payload = json.dumps({"__type": code, "message": message}, separators=(",", ":")).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Date", self.date_time_string())
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one access line per request is written by _serve_one


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold up shutdown
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default of 5 resets clients that connect together

    def __init__(self, address: tuple[str, int], invoke: Callable[[dict[str, Any]], dict[str, Any]], access_log: bool):
        super().__init__(address, _Handler)
        self.invoke = invoke
        self.access_log = access_log
        self._in_flight = 0
        self._idle = threading.Condition()

    def track(self, delta: int) -> None:
        with self._idle:
            self._in_flight += delta
            if self._in_flight == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)


class LocalEndpoint:
    """The endpoint, its store and its sweeper, started and stopped together."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self._moto: Any = None
        self._http: _HTTPServer | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.dynamodb_endpoint = settings.dynamodb_endpoint

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the endpoint is not started")
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Start the store (if embedded), point the handlers at it, then serve."""
        if self.dynamodb_endpoint is None:
            self._start_embedded_store()
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = str(self.dynamodb_endpoint)
        if self._moto is not None:  # the embedded moto serves the sweeper's stale events too
            os.environ["AWS_ENDPOINT_URL_EVENTS"] = str(self.dynamodb_endpoint)
        os.environ["TABLE_NAME"] = self.settings.table_name
        # Metrics are CloudWatch EMF lines on stdout; locally they only bury the logs.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        # Check the configuration now, so a bad value stops start-up with its name.
        from heartbeat.config import Config

        Config.from_env(os.environ)
        from heartbeat.handler import lambda_handler

        self._http = _HTTPServer(
            (self.settings.host, self.settings.port),
            lambda event: lambda_handler(event, LocalLambdaContext()),  # type: ignore[arg-type]
            self.settings.access_log,
        )
        self._spawn(self._http.serve_forever, "http")
        if self.settings.sweep_interval_seconds > 0:
            self._spawn(self._sweep_forever, "sweeper")

    def _start_embedded_store(self) -> None:
        import boto3

        # The embedded store takes any credentials; never send real ones to it.
        os.environ["AWS_ACCESS_KEY_ID"] = "local"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "local"  # noqa: S105 - a placeholder for the local store
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        self._moto = EmbeddedDynamoDB(port=self.settings.dynamodb_port)
        self.dynamodb_endpoint = self._moto.endpoint
        create_table(boto3.client("dynamodb", endpoint_url=self.dynamodb_endpoint), self.settings.table_name)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _sweep_forever(self) -> None:
        from heartbeat.sweeper import lambda_handler

        while not self._stop.wait(self.settings.sweep_interval_seconds):
            try:
                lambda_handler({"source": "local.schedule"}, LocalLambdaContext(function_name="sweeper-local"))
            except Exception:  # the sweeper has logged it; the next run tries again
                logging.getLogger(__name__).exception("Sweep failed")

    def stop(self, drain_seconds: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish, then stop the sweeper and the store."""
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.wait_idle(drain_seconds)
            self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=drain_seconds)
        if self._moto is not None:
            self._moto.stop()


class EmbeddedDynamoDB:
    """moto's DynamoDB as an HTTP server on loopback, one request at a time.

    DynamoDB makes each single-item operation atomic; moto's in-memory backend does not
    guard against threads interleaving, so the embedded store serves requests one by one
    (under the GIL that costs little throughput) and concurrent heartbeats lose no update.
    """

    def __init__(self, port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            with lock:
                return list(app(environ, start_response))

        self._server = make_server("127.0.0.1", port, serialized, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="dynamodb", daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
