"""Logger, Metrics and Tracer, shared by both functions.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE when set.

Tracing: Powertools' Tracer imports the X-Ray SDK even when disabled, and that import
(which builds a botocore session for X-Ray) is the largest part of a cold start. So the
Tracer is built only when tracing is wanted (in Lambda, POWERTOOLS_TRACE_DISABLED not
set); otherwise the handlers' tracing decorator does nothing. Lambda's own active tracing
records each invocation either way.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "taskrunner-heartbeat")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TaskRunnerHeartbeat")

# RFC 3339 timestamps: Lambda's log-level filtering (JSON log format) reads a line's "level" only when its
# "timestamp" is RFC 3339, and files every other line as INFO; a stricter level would then drop ERROR lines too.
logger = Logger(service=SERVICE, use_rfc3339=True)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_wanted(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Tracer's own rule: on in Lambda unless POWERTOOLS_TRACE_DISABLED says otherwise."""
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true", "yes", "on")
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and not disabled


def _tracing_decorator() -> Callable[[Handler], Handler]:
    if not tracing_wanted():
        return lambda handler: handler
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=SERVICE)
    return tracer.capture_lambda_handler  # type: ignore[return-value]


trace_lambda_handler = _tracing_decorator()

# A refused request to an unknown path records no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")


class MetricName:
    """One name per thing counted, as the dashboard and alarms use them."""

    NEW_RUNNERS = "NewRunners"
    TERMINATE_ANSWERS = "TerminateAnswers"
    VALIDATION_ERRORS = "ValidationErrors"
    AUTH_REFUSALS = "AuthRefusals"
    STORE_ERRORS = "StoreErrors"
    INTERNAL_ERRORS = "InternalErrors"
    RUNNERS_EXAMINED = "RunnersExamined"
    RUNNERS_STALE = "RunnersStale"
    RUNNERS_FLAGGED = "RunnersFlagged"
    RUNNERS_IN_GRACE = "RunnersInGrace"  # past their threshold, not flagged: a hold, a new watch or a reset
    RUNNERS_RETIRED = "RunnersRetired"  # by an AWS signal (heartbeat.signals)
    SCOPES_HELD = "ScopesHeld"  # the guard held the fleet or worker groups: nobody there is flagged
    SCOPES_PARTIAL = "ScopesPartial"  # most of a scope silent while the rest is heard: flagged (retire on purpose)
    SHORT_THRESHOLDS = "ShortThresholds"  # worker groups whose threshold is under twice their beat period
    SWEEPS_COMPLETED = "SweepsCompleted"
    EVENTS_PUBLISHED = "StaleEventsPublished"
    EVENTS_OWED = "StaleEventsOwed"
    RUNNERS = "Runners"  # a gauge per worker group and status, dimensions WORKER_GROUP_GAUGE_DIMENSIONS


# The per-worker-group gauges: each (service, workerGroup, status) is one custom metric, billed monthly,
# so the sweeper names at most this many worker groups (the largest) and adds up the rest as OTHER_GROUPS:
# at most (20 + 1) x 4 statuses = 84 metrics per stack, however many worker groups the fleet has.
WORKER_GROUP_GAUGE_DIMENSIONS = ("service", "workerGroup", "status")
WORKER_GROUPS_GAUGED = 20
OTHER_GROUPS = "(other)"
NO_GROUP = "(none)"
