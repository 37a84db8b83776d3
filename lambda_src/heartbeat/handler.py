"""The API handler: API Gateway REST proxy or Application Load Balancer events in, awsJson 1.1 answers out.

Thin by design: it routes on X-Amz-Target, turns the body into a request, asks
the store and the rules, and maps every error to its awsJson envelope in one place.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import ALBResolver, APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat import protocol
from heartbeat.access_keys import SigningKey, check_worker_group
from heartbeat.authentication import authenticate
from heartbeat.config import AuthMode, Config
from heartbeat.errors import (
    INTERNAL_ERROR_MESSAGE,
    AccessDeniedException,
    IncompleteSignatureException,
    InternalServiceError,
    InvalidRequestException,
    InvalidSignatureException,
    LimitExceededException,
    MethodNotAllowedException,
    MissingAuthenticationTokenException,
    NotFoundException,
    SerializationException,
    ServiceError,
    UnknownOperationException,
    UnrecognizedClientException,
)
from heartbeat.key_cache import KeyCache
from heartbeat.key_secrets import KeySecrets, SecretsUnavailable
from heartbeat.model import parse_heartbeat
from heartbeat.observability import MetricName, logger, metrics, trace_lambda_handler
from heartbeat.runners import should_terminate
from heartbeat.store import RunnerStore, StoreError
from heartbeat.store.keys import KeyTable

ResolverT = TypeVar("ResolverT", bound=ApiGatewayResolver)


# The refusals of a caller without a valid key, or beyond what its key allows: counted apart from bad input.
AUTH_REFUSALS = (
    MissingAuthenticationTokenException,
    IncompleteSignatureException,
    InvalidSignatureException,
    UnrecognizedClientException,
    AccessDeniedException,
    LimitExceededException,
)


@dataclass(frozen=True)
class Dependencies:
    """What a request needs from outside: configuration, the store, the clock, and the keys to verify against.

    keys is None when authentication is off (AUTH_MODE=none).
    """

    config: Config
    store: RunnerStore
    clock: Callable[[], float] = field(default=time.time)
    keys: KeyCache | None = None


@cache
def default_dependencies() -> Dependencies:
    """Built once per cold start, on the first request, from the environment."""
    config = Config.from_env(os.environ)
    keys = None
    if config.auth_mode is AuthMode.SIGV4:
        config.require_keys()
        store = RunnerStore(config.table_name, keys_table_name=config.keys_table_name)
        keys = KeyCache(KeyTable(config.keys_table_name, store.client), KeySecrets(config.keys_kms_key_id or None))
    else:
        store = RunnerStore(config.table_name)
    return Dependencies(config=config, store=store, keys=keys)


def report_task_runner_heartbeat(
    event: BaseProxyEvent, dependencies: Dependencies, request_id: str, signer: SigningKey | None
) -> Response[str]:
    """ReportTaskRunnerHeartbeat: record that the runner is alive; tell it whether to stop.

    A steady heartbeat writes no log line and no metric: the front door's and Lambda's own
    metrics count requests and errors for free. Only rare events (a new runner, a terminate
    answer, a refusal, a failure) are logged and counted.
    """
    document = protocol.parse_object(protocol.body_bytes(event.body, bool(event.is_base64_encoded)))
    request = parse_heartbeat(document)
    if signer is not None:
        check_worker_group(signer.key, request.worker_group)
    now = dependencies.clock()
    runner = dependencies.store.record_heartbeat(
        request, now, dependencies.config.retention_seconds, key=signer.key if signer else None
    )
    terminate = should_terminate(runner)
    if runner.heartbeat_count == 1:
        metrics.add_metric(name=MetricName.NEW_RUNNERS, unit=MetricUnit.Count, value=1)
        logger.info("New runner", extra={"taskrunnerId": request.taskrunner_id, "workerGroup": request.worker_group})
    if terminate:
        metrics.add_metric(name=MetricName.TERMINATE_ANSWERS, unit=MetricUnit.Count, value=1)
        logger.info("Told runner to terminate", extra={"taskrunnerId": request.taskrunner_id, "status": runner.status})
    return protocol.success({"terminate": terminate}, request_id)


Operation = Callable[[BaseProxyEvent, Dependencies, str, SigningKey | None], Response[str]]

# Routing on X-Amz-Target: every operation this endpoint serves, by its target.
OPERATIONS: dict[str, Operation] = {
    protocol.TARGET_PREFIX + "ReportTaskRunnerHeartbeat": report_task_runner_heartbeat,
}


def header(event: BaseProxyEvent, name: str) -> str | None:
    """A request header by name, in any case, from whichever shape the event has.

    An ALB sends `headers` or `multiValueHeaders` (never both), API Gateway both. A repeated
    header reads as its last value, as both put it in their single-value shape.
    """
    wanted = name.lower()
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted and values:
            return str(values[-1])
    value = event.headers.get(name)
    return None if value is None else str(value)


def _serve(app: ResolverT) -> ResolverT:
    """The routes and the one error mapping, the same for every front door."""

    def request_id() -> str:
        return str(app.context["request_id"])

    def not_served() -> NotFoundException:
        return NotFoundException(f"Nothing is served at {app.current_event.path}: send POST /")

    # Powertools matches a route with re.match("^/$"), and "$" also matches before a final newline,
    # so "/\n" would reach the routes below: they check the path is the root ("/", or "//" as the
    # resolver reads it) and nothing else.
    @app.post("/")
    def dispatch() -> Response[str]:
        if app.current_event.path.strip("/"):
            raise not_served()
        dependencies: Dependencies = app.context["dependencies"]()
        # As AWS does, the signature is checked before anything else about the request.
        signer = None
        if dependencies.keys is not None:
            signer = authenticate(app.current_event, dependencies.keys, dependencies.clock())
        target = header(app.current_event, protocol.TARGET_HEADER)
        if not target:
            raise UnknownOperationException(f"Missing {protocol.TARGET_HEADER} header")
        operation = OPERATIONS.get(target.strip())
        if operation is None:
            raise UnknownOperationException(
                f"Unknown operation {target.strip()!r}: this endpoint serves ReportTaskRunnerHeartbeat only"
            )
        return operation(app.current_event, dependencies, request_id(), signer)

    @app.route("/", method=["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    def wrong_method() -> Response[str]:
        if app.current_event.path.strip("/"):
            raise not_served()
        raise MethodNotAllowedException(f"{app.current_event.http_method} is not allowed here: send POST /")

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        return protocol.error(not_served(), request_id())

    @app.exception_handler(ServiceError)  # type: ignore[untyped-decorator]
    def service_error(exc: ServiceError) -> Response[str]:
        if isinstance(exc, (InvalidRequestException, SerializationException)):
            metrics.add_metric(name=MetricName.VALIDATION_ERRORS, unit=MetricUnit.Count, value=1)
        elif isinstance(exc, AUTH_REFUSALS):
            metrics.add_metric(name=MetricName.AUTH_REFUSALS, unit=MetricUnit.Count, value=1)
        logger.info("Request refused", extra={"errorType": exc.code, "errorMessage": exc.message})
        return protocol.error(exc, request_id())

    @app.exception_handler(StoreError)  # type: ignore[untyped-decorator]
    def store_error(exc: StoreError) -> Response[str]:
        metrics.add_metric(name=MetricName.STORE_ERRORS, unit=MetricUnit.Count, value=1)
        logger.exception("The runner store failed; answered InternalServiceError so the client retries")
        return protocol.error(InternalServiceError(INTERNAL_ERROR_MESSAGE), request_id())

    @app.exception_handler(SecretsUnavailable)  # type: ignore[untyped-decorator]
    def secrets_error(exc: SecretsUnavailable) -> Response[str]:
        metrics.add_metric(name=MetricName.INTERNAL_ERRORS, unit=MetricUnit.Count, value=1)
        logger.exception("KMS failed to open a key's secret; answered InternalServiceError so the client retries")
        return protocol.error(InternalServiceError(INTERNAL_ERROR_MESSAGE), request_id())

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def unexpected_error(exc: Exception) -> Response[str]:
        metrics.add_metric(name=MetricName.INTERNAL_ERRORS, unit=MetricUnit.Count, value=1)
        logger.exception("Unexpected error; answered InternalServiceError")
        return protocol.error(InternalServiceError(INTERNAL_ERROR_MESSAGE), request_id())

    return app


# One resolver per front door, each serving the same routes; a resolver keeps the current event
# on itself, so each serves one request at a time (as Lambda runs them).
REST_API = _serve(APIGatewayRestResolver())
LOAD_BALANCER = _serve(ALBResolver())


def is_load_balancer_event(event: dict[str, Any]) -> bool:
    """An Application Load Balancer (Lambda target) event: its request context names the target group."""
    return "elb" in (event.get("requestContext") or {})


LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def make_handler(dependencies: Callable[[], Dependencies]) -> LambdaHandler:
    """A Lambda handler over the given dependencies (tests pass their own), with logging, tracing and metrics."""

    @logger.inject_lambda_context
    @trace_lambda_handler
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if is_load_balancer_event(event):
            # An ALB sends no request id: each request gets its own, answered and logged alike.
            app: ApiGatewayResolver = LOAD_BALANCER
            request_id = str(uuid.uuid4())
        else:
            app = REST_API
            request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
        logger.set_correlation_id(request_id)
        app.append_context(dependencies=dependencies, request_id=request_id)  # type: ignore[no-untyped-call]
        response = app.resolve(event, context)
        if app is LOAD_BALANCER:
            # The reason phrase the ALB answers with (its documented response carries one).
            response["statusDescription"] = f"{response['statusCode']} {HTTPStatus(response['statusCode']).phrase}"
        return response

    return lambda_handler


lambda_handler = make_handler(default_dependencies)
