"""The API handler: API Gateway REST proxy events in, awsJson 1.1 answers out.

Thin by design: it routes on X-Amz-Target, turns the body into a request, asks
the store and the rules, and maps every error to its awsJson envelope in one place.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat import protocol
from heartbeat.config import Config
from heartbeat.errors import (
    INTERNAL_ERROR_MESSAGE,
    InternalServiceError,
    InvalidRequestException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ServiceError,
    UnknownOperationException,
)
from heartbeat.model import parse_heartbeat
from heartbeat.observability import MetricName, logger, metrics, trace_lambda_handler
from heartbeat.runners import should_terminate
from heartbeat.store import RunnerStore, StoreError


@dataclass(frozen=True)
class Dependencies:
    """What a request needs from outside: configuration, the store and the clock."""

    config: Config
    store: RunnerStore
    clock: Callable[[], float] = field(default=time.time)


@cache
def default_dependencies() -> Dependencies:
    """Built once per cold start, on the first request, from the environment."""
    config = Config.from_env(os.environ)
    return Dependencies(config=config, store=RunnerStore(config.table_name))


app = APIGatewayRestResolver()


def _dependencies() -> Dependencies:
    provider: Callable[[], Dependencies] = app.context["dependencies"]
    return provider()


def _request_id() -> str:
    return app.current_event.request_context.request_id or ""


def report_task_runner_heartbeat() -> Response[str]:
    """ReportTaskRunnerHeartbeat: record that the runner is alive; tell it whether to stop."""
    event = app.current_event
    document = protocol.parse_object(protocol.body_bytes(event.body, bool(event.is_base64_encoded)))
    request = parse_heartbeat(document)
    dependencies = _dependencies()
    now = dependencies.clock()
    runner = dependencies.store.record_heartbeat(request, now, dependencies.config.retention_seconds)
    terminate = should_terminate(runner)
    metrics.add_metric(name=MetricName.HEARTBEATS, unit=MetricUnit.Count, value=1)
    if runner.heartbeat_count == 1:
        metrics.add_metric(name=MetricName.NEW_RUNNERS, unit=MetricUnit.Count, value=1)
        logger.info("New runner", extra={"taskrunnerId": request.taskrunner_id, "workerGroup": request.worker_group})
    if terminate:
        metrics.add_metric(name=MetricName.TERMINATE_ANSWERS, unit=MetricUnit.Count, value=1)
        logger.info("Told runner to terminate", extra={"taskrunnerId": request.taskrunner_id, "status": runner.status})
    return protocol.success({"terminate": terminate}, _request_id())


# Routing on X-Amz-Target: every operation this endpoint serves, by its target.
OPERATIONS: dict[str, Callable[[], Response[str]]] = {
    protocol.TARGET_PREFIX + "ReportTaskRunnerHeartbeat": report_task_runner_heartbeat,
}


@app.post("/")
def dispatch() -> Response[str]:
    target = app.current_event.headers.get(protocol.TARGET_HEADER)
    if not target:
        raise UnknownOperationException(f"Missing {protocol.TARGET_HEADER} header")
    operation = OPERATIONS.get(target.strip())
    if operation is None:
        raise UnknownOperationException(
            f"Unknown operation {target.strip()!r}: this endpoint serves ReportTaskRunnerHeartbeat only"
        )
    return operation()


@app.route("/", method=["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def wrong_method() -> Response[str]:
    raise MethodNotAllowedException(f"{app.current_event.http_method} is not allowed here: send POST /")


@app.not_found
def not_found(_: Exception) -> Response[str]:
    return protocol.error(
        NotFoundException(f"Nothing is served at {app.current_event.path}: send POST /"), _request_id()
    )


@app.exception_handler(ServiceError)  # type: ignore[untyped-decorator]
def service_error(exc: ServiceError) -> Response[str]:
    if isinstance(exc, (InvalidRequestException, SerializationException)):
        metrics.add_metric(name=MetricName.VALIDATION_ERRORS, unit=MetricUnit.Count, value=1)
    logger.info("Request refused", extra={"errorType": exc.code, "errorMessage": exc.message})
    return protocol.error(exc, _request_id())


@app.exception_handler(StoreError)  # type: ignore[untyped-decorator]
def store_error(exc: StoreError) -> Response[str]:
    metrics.add_metric(name=MetricName.STORE_ERRORS, unit=MetricUnit.Count, value=1)
    logger.exception("The runner store failed; answered InternalServiceError so the client retries")
    return protocol.error(InternalServiceError(INTERNAL_ERROR_MESSAGE), _request_id())


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def unexpected_error(exc: Exception) -> Response[str]:
    metrics.add_metric(name=MetricName.INTERNAL_ERRORS, unit=MetricUnit.Count, value=1)
    logger.exception("Unexpected error; answered InternalServiceError")
    return protocol.error(InternalServiceError(INTERNAL_ERROR_MESSAGE), _request_id())


LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def make_handler(dependencies: Callable[[], Dependencies]) -> LambdaHandler:
    """A Lambda handler over the given dependencies (tests pass their own), with logging, tracing and metrics."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @trace_lambda_handler
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        app.append_context(dependencies=dependencies)  # type: ignore[no-untyped-call]
        return app.resolve(event, context)

    return lambda_handler


lambda_handler = make_handler(default_dependencies)
