"""The sweep's workers: each SQS work message (fan_out.py) is one share of a sweep's flags and owed events.

Run by Lambda's SQS event source mapping, at most its maximum concurrency at once. A message is
done when every runner it names has been written (flagged, or refused by its condition because a
heartbeat or a reset won) and its events offered to EventBridge. One the worker could not finish
before its deadline is reported failed (partial batch response) and comes back after the queue's
visibility timeout: its flags already written are refused by their condition and not repeated.
An event EventBridge refused stays owed in the table (eventPending) for the next sweep.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat.clients import SWEEPER_CLIENT_CONFIG
from heartbeat.config import Config
from heartbeat.events import StaleEventPublisher
from heartbeat.fan_out import Work
from heartbeat.flagging import Deadline, carry_out
from heartbeat.observability import MetricName, logger, metrics, trace_lambda_handler
from heartbeat.store import RunnerStore

# What a worker keeps of its invocation after its deadline: writes in flight, the last events.
RESERVE_SECONDS = 15.0


class WorkLeft(Exception):
    """The deadline passed before every runner of the message was written: SQS delivers it again."""


@cache
def _dependencies() -> tuple[RunnerStore, StaleEventPublisher]:
    import boto3

    config = Config.from_env(os.environ)
    client = boto3.client("dynamodb", config=SWEEPER_CLIENT_CONFIG)
    return RunnerStore(config.table_name, client=client), StaleEventPublisher(config.event_bus_name)


def work(
    body: str,
    store: RunnerStore,
    events: StaleEventPublisher | None,
    deadline: Deadline,
    claim_until: float | None = None,
) -> None:
    """Carry out one work message; WorkLeft if the deadline cut it short.

    claim_until: the invocation's end, when the claims on its events lapse (flagging.carry_out).
    """
    message = Work.from_body(body)
    outcome = carry_out(message.orders, message.owed, store, events, deadline, claim_until=claim_until)
    left = len(message.orders) - outcome.attempted
    metrics.add_metric(name=MetricName.RUNNERS_FLAGGED, unit=MetricUnit.Count, value=outcome.flagged)
    metrics.add_metric(name=MetricName.EVENTS_PUBLISHED, unit=MetricUnit.Count, value=outcome.events_published)
    logger.info(
        "Work message done" if not left else "Work message cut short: it comes back",
        extra={"orders": len(message.orders), "owed": len(message.owed), "left": left, **asdict(outcome)},
    )
    if left:
        raise WorkLeft(f"{left} runners not reached before the deadline")


@logger.inject_lambda_context
@trace_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store, events = _dependencies()
    invocation = context.get_remaining_time_in_millis() / 1000
    deadline = Deadline(max(0.0, invocation - RESERVE_SECONDS), time.monotonic)
    ends_at = time.time() + invocation

    def record_handler(record: SQSRecord) -> None:
        work(record.body, store, events, deadline, claim_until=ends_at)

    return dict(
        process_partial_response(
            event=event,
            record_handler=record_handler,
            # A message cut short is reported, not raised: it comes back alone, and the function has not failed.
            processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
            context=context,
        )
    )
