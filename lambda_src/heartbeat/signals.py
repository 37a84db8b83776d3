"""Retire runners when AWS itself says their host is gone: EventBridge events in, retires out (opt-in).

Silence cannot tell a runner that is gone from one that is silent; AWS can. The stack routes
these events here with -c retireOnSignals=true (infra/signals.py):

- EC2 "EC2 Instance State-change Notification" whose state is terminated;
- Auto Scaling "EC2 Instance-terminate Lifecycle Action" (sent only for a group with a
  terminate lifecycle hook, while the instance still runs), except one whose Destination is the
  warm pool: that instance is stopped to come back, not gone;
- ECS "ECS Task State Change" whose lastStatus is STOPPED.

How a signal finds its runner (a convention, documented in docs/operations.md): the runner's
taskrunnerId is its EC2 instance id (i-0123456789abcdef0), or its ECS task's id (the last
part of the task ARN) or the task ARN itself. A signal that matches no runner changes nothing.
Events arrive on a best-effort basis: a runner whose signal is lost is flagged stale after its
threshold, as without this.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat.config import Config
from heartbeat.observability import MetricName, logger, metrics, trace_lambda_handler
from heartbeat.store import RunnerStore, UnknownRunner

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

EC2_STATE_CHANGE = ("aws.ec2", "EC2 Instance State-change Notification")
ASG_TERMINATE = ("aws.autoscaling", "EC2 Instance-terminate Lifecycle Action")
ECS_TASK_STATE_CHANGE = ("aws.ecs", "ECS Task State Change")


def runner_ids(event: dict[str, Any]) -> list[str]:
    """The taskrunnerIds a signal says are gone, by the convention above; [] for any other event."""
    kind = (event.get("source"), event.get("detail-type"))
    detail = event.get("detail") or {}
    if kind == EC2_STATE_CHANGE and detail.get("state") == "terminated":
        return [str(detail["instance-id"])] if detail.get("instance-id") else []
    if kind == ASG_TERMINATE and detail.get("Destination") != "WarmPool":
        return [str(detail["EC2InstanceId"])] if detail.get("EC2InstanceId") else []
    if kind == ECS_TASK_STATE_CHANGE and detail.get("lastStatus") == "STOPPED" and detail.get("taskArn"):
        arn = str(detail["taskArn"])
        return [arn.rsplit("/", 1)[-1], arn]
    return []


def retire_gone(store: RunnerStore, event: dict[str, Any], now: float) -> list[str]:
    """Retire the runners the signal names; returns those it matched."""
    by = f"{event.get('source')}: {event.get('detail-type')} (event {event.get('id')})"
    retired = []
    for taskrunner_id in runner_ids(event):
        try:
            store.retire(taskrunner_id, by=by, reason=None, now=now)
        except UnknownRunner:
            continue
        retired.append(taskrunner_id)
    return retired


@cache
def _store() -> RunnerStore:
    return RunnerStore(Config.from_env(os.environ).table_name)


def make_handler(store: Callable[[], RunnerStore], clock: Callable[[], float] = time.time) -> LambdaHandler:
    """The Lambda handler over the given store (tests pass their own), with logging, tracing and metrics."""

    @logger.inject_lambda_context
    @trace_lambda_handler
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # A failing store raises: Lambda retries the event, then sends it to the dead letters.
        retired = retire_gone(store(), event, clock())
        metrics.add_metric(name=MetricName.RUNNERS_RETIRED, unit=MetricUnit.Count, value=len(retired))
        if retired:
            logger.info(
                "Retired runners on an AWS signal", extra={"taskrunnerIds": retired, "eventId": event.get("id")}
            )
        return {"retired": retired}

    return lambda_handler


lambda_handler = make_handler(_store)
