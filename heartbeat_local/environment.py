"""Execution environments: gunicorn worker processes, each running one invocation at a time.

Each worker process is what Lambda calls an execution environment: it imports the handler
once (its cold start) and runs one invocation at a time, so Powertools' module-level
resolver never sees two requests at once. In front of that one slot, the worker's gthread
connection threads do API Gateway's part: gunicorn parses and frames each request, the
gateway here buffers the whole body under the cap before invoking, and answers malformed
requests itself in the awsJson envelope. A slow or stalled client holds a connection
thread, never the environment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker

from heartbeat_local.gateway import LocalLambdaContext, gateway_answer, proxy_event

# API Gateway's own payload limit; the handler refuses far less (64 KiB) itself.
GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
# The methods a REST API routes (ANY); API Gateway never passes another to the integration.
GATEWAY_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})
# A client that stalls mid-request is dropped after this long: it never holds a connection thread for good.
SOCKET_TIMEOUT_SECONDS = 10.0
# Connection threads per environment: they read requests while the environment runs another.
# A client stalled mid-request holds one until SOCKET_TIMEOUT_SECONDS: threads are cheap, so keep many.
CONNECTION_THREADS = 32
CONTENT_TYPE = "application/x-amz-json-1.1"

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
StartResponse = Callable[..., Any]


def envelope(code: str, message: str) -> bytes:
    """The awsJson error body, as the stack's gateway responses write it."""
    return json.dumps({"__type": code, "message": message}, separators=(",", ":")).encode()


def gateway_headers(code: str, length: int) -> list[tuple[str, str]]:
    return [
        ("Content-Type", CONTENT_TYPE),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("x-amzn-ErrorType", code),
        ("Content-Length", str(length)),
    ]


class Gateway:
    """The WSGI application: one request in, one invocation of the handler, its answer out."""

    def __init__(self, handler: LambdaHandler, access_log: bool, clear_metrics: Callable[[], None]) -> None:
        self._handler = handler
        self._clear_metrics = clear_metrics
        self._access_log = access_log
        self._environment = threading.Lock()  # the one invocation slot of this execution environment

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ["REQUEST_METHOD"]
        target = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
        codings = [c.strip().lower() for c in environ.get("HTTP_TRANSFER_ENCODING", "").split(",") if c.strip()]
        if method not in GATEWAY_METHODS:
            status, headers, body = self._refuse(
                405, "MethodNotAllowedException", f"{method} is not allowed here: send POST /", start_response
            )
        elif codings and codings != ["chunked"]:
            # gunicorn frames `gzip, chunked` as chunked and leaves the gzip to the application; nothing here
            # decodes it, so the request is refused (and its body never read) rather than handed on undecoded.
            status, headers, body = self._refuse(
                400, "BadRequestException", "Unsupported Transfer-Encoding: send the body as is", start_response, True
            )
        else:
            payload = self._read_body(environ)
            if payload is None:
                status, headers, body = self._refuse(
                    413, "RequestEntityTooLargeException", "Request Too Long", start_response, close=True
                )
            else:
                status, headers, body = self._invoke(environ, method, target, payload)
                start_response(f"{status} {_reason(status)}", headers)
        if self._access_log:
            operation = environ.get("HTTP_X_AMZ_TARGET", "-")
            elapsed = (time.perf_counter() - started) * 1000
            sys.stderr.write(f"{method} {target} {operation} {status} {elapsed:.1f}ms\n")
        return [body]

    def _read_body(self, environ: dict[str, Any]) -> bytes | None:
        """The whole body, or None when it is over the gateway's limit however it is framed."""
        declared = environ.get("CONTENT_LENGTH")
        if declared and int(declared) > GATEWAY_MAX_BODY_BYTES:  # gunicorn has checked it is a number
            return None
        stream = environ["wsgi.input"]
        chunks: list[bytes] = []
        total = 0
        while total <= GATEWAY_MAX_BODY_BYTES:
            chunk = stream.read(min(65536, GATEWAY_MAX_BODY_BYTES + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
        return None

    def _invoke(
        self, environ: dict[str, Any], method: str, target: str, payload: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [
            (name[5:].replace("_", "-").title(), value) for name, value in environ.items() if name.startswith("HTTP_")
        ]
        if environ.get("CONTENT_TYPE"):
            headers.append(("Content-Type", environ["CONTENT_TYPE"]))
        if environ.get("CONTENT_LENGTH"):
            headers.append(("Content-Length", environ["CONTENT_LENGTH"]))
        event = proxy_event(method, target, headers, payload, environ.get("REMOTE_ADDR") or "127.0.0.1")
        with self._environment:
            result = self._handler(event, LocalLambdaContext())
            # With metrics disabled, Powertools' log_metrics keeps what it did not print, and prints an EMF
            # blob once a metric holds 100 values: start each invocation with none, as a flush would.
            self._clear_metrics()
        return gateway_answer(result)

    @staticmethod
    def _refuse(
        status: int, code: str, message: str, start_response: StartResponse, close: bool = False
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        body = envelope(code, message)
        headers = gateway_headers(code, len(body))
        response = getattr(start_response, "__self__", None)  # gunicorn's Response
        if close and response is not None:
            # The unread rest of the body must not be read as the next request, nor drained.
            response.force_close()
        start_response(f"{status} {_reason(status)}", headers)
        return status, headers, body


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _status_for(exc: BaseException) -> tuple[int, str, str]:
    """What the gateway answers a request gunicorn could not parse or frame."""
    if isinstance(exc, (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)):
        return 500, "InternalServiceError", "Internal server error"  # our answer was bad, not the request
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return 431, "BadRequestException", f"Request header fields too large: {exc}"
    if isinstance(exc, http_errors.LimitRequestLine):
        return 414, "BadRequestException", f"Request line too long: {exc}"
    if isinstance(exc, http_errors.ParseException):
        return 400, "BadRequestException", f"Malformed request: {exc}"
    return 500, "InternalServiceError", "Internal server error"


class EnvironmentWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, answering what it cannot parse in the awsJson envelope."""

    def init_signals(self) -> None:
        super().init_signals()
        # Ctrl-C reaches every process of the terminal's group: finish in-flight requests, as on SIGTERM.
        signal.signal(signal.SIGINT, self.handle_exit)

    def enqueue_req(self, conn: Any) -> None:
        # A stalled client's read fails after this long instead of blocking a connection thread for good.
        seconds = int(SOCKET_TIMEOUT_SECONDS)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, 0))
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body are separate writes
        super().enqueue_req(conn)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, code, message = _status_for(exc)
        if status == 500:
            self.log.exception("Error handling request")
        else:
            self.log.warning("Refused a malformed request from %s: %s", (addr or ("-",))[0], exc)
        body = envelope(code, message)
        head = [f"HTTP/1.1 {status} {_reason(status)}", f"Date: {formatdate(usegmt=True)}"]
        head += [f"{name}: {value}" for name, value in gateway_headers(code, len(body))]
        head.append("Connection: close")
        with contextlib.suppress(OSError):  # the client is gone
            client.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


class _QuietStalls(logging.Filter):
    """A client that stalled past the socket timeout is dropped with one line, not a stack trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (BlockingIOError, TimeoutError)):
            record.msg, record.args, record.exc_info = "Dropped a client that stalled mid-request", (), None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class HeartbeatArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, telling the pool when every environment has booted."""

    def __init__(self, pool: EnvironmentPool) -> None:
        self._pool = pool
        super().__init__(pool)

    # Ctrl-C drains like SIGTERM: gunicorn's default is a quick stop that drops in-flight requests.
    def handle_int(self) -> None:
        self.handle_term()

    def manage_workers(self) -> None:
        super().manage_workers()
        self._pool.check_booted()  # the main loop comes here at least once a second


class EnvironmentPool(BaseApplication):  # type: ignore[misc]
    """gunicorn in this process, serving an already-bound socket with WORKERS environments.

    ``on_ready`` is called once every environment has imported the handler: a request sent
    from then on is accepted at once, and none is left in the listen queue if SIGTERM follows.
    """

    def __init__(
        self,
        listener_fd: int,
        workers: int,
        access_log: bool,
        switch_interval: float | None,
        on_ready: Callable[[], None],
    ) -> None:
        self._options = {
            "bind": [f"fd://{listener_fd}"],
            "workers": workers,
            "worker_class": f"{__name__}.EnvironmentWorker",
            "threads": CONNECTION_THREADS,
            "keepalive": 30,
            "graceful_timeout": 15,
            "timeout": 60,
            "loglevel": "warning",
            "accesslog": None,
            "control_socket_disable": True,
            "proc_name": "heartbeat-local",
        }
        self._access_log = access_log
        self._switch_interval = switch_interval
        self._workers = workers
        self._on_ready: Callable[[], None] | None = on_ready
        self._booted, self._boot_signal = os.pipe()  # each environment writes one byte once booted
        os.set_blocking(self._booted, False)
        self._booted_count = 0
        super().__init__()

    def check_booted(self) -> None:
        if self._on_ready is None:
            return
        with contextlib.suppress(BlockingIOError):
            self._booted_count += len(os.read(self._booted, 1024))
        if self._booted_count >= self._workers:
            self._on_ready()
            self._on_ready = None

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)
        self.cfg.set("post_fork", self._post_fork)
        self.cfg.set("post_worker_init", self._post_worker_init)

    def _post_fork(self, _arbiter: Any, _worker: Any) -> None:
        if self._switch_interval:
            sys.setswitchinterval(self._switch_interval)
        logging.getLogger("gunicorn.error").addFilter(_QuietStalls())

    def _post_worker_init(self, _worker: Any) -> None:
        os.write(self._boot_signal, b"1")

    def load(self) -> Gateway:
        """Runs in each worker: its cold start imports the handler, once."""
        from heartbeat.handler import lambda_handler
        from heartbeat.observability import logger, metrics
        from heartbeat_local.console import use_console_lines

        use_console_lines(logger)  # readable lines on the console; JSON stays Lambda's
        return Gateway(lambda_handler, self._access_log, metrics.clear_metrics)

    def run(self) -> None:
        HeartbeatArbiter(self).run()
