"""Logger, Metrics and Tracer, shared by both functions.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE when set. The Tracer turns itself off outside Lambda
or when POWERTOOLS_TRACE_DISABLED is set.
"""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "taskrunner-heartbeat")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TaskRunnerHeartbeat")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)

# A refused request to an unknown path records no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")


class MetricName:
    """One name per thing counted, as the dashboard and alarms use them."""

    HEARTBEATS = "Heartbeats"
    NEW_RUNNERS = "NewRunners"
    TERMINATE_ANSWERS = "TerminateAnswers"
    VALIDATION_ERRORS = "ValidationErrors"
    STORE_ERRORS = "StoreErrors"
    INTERNAL_ERRORS = "InternalErrors"
    RUNNERS_EXAMINED = "RunnersExamined"
    RUNNERS_STALE = "RunnersStale"
    RUNNERS_FLAGGED = "RunnersFlagged"
    SWEEP_GUARD_TRIPPED = "SweepGuardTripped"
    SWEEPS_COMPLETED = "SweepsCompleted"
