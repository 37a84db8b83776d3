"""Fan-out: a sweep's flags handed to workers through an SQS queue, when one function cannot write them in time.

The sweep judges the whole fleet in one function (the census is complete before anyone is judged),
so only the writing is fanned out: the runners to flag, and the events owed from earlier sweeps,
go out as work messages of up to CHUNK_ORDERS rows. Lambda's SQS event source mapping runs
the workers (flag_worker.py) at most its maximum concurrency at once; a message a worker did not
finish comes back after the queue's visibility timeout, and its flags are conditional, so a
repeat only re-checks them. While the queue still holds work, sweeps send none and flag none (the
runners in it are still active and stale, and would be written twice), and publish no owed
event (a worker may be publishing it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from heartbeat.events import StaleRunner
from heartbeat.flagging import Deadline, FlagOrder, event_from_row, event_to_row
from heartbeat.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

CHUNK_ORDERS = 1000  # runners a work message names at most: about 2 s of one worker's writes
CHUNK_BYTES = 192 * 1024  # and at most this much JSON, under SQS's 256 KB message limit
BACKLOG_ATTRIBUTES: tuple[QueueAttributeNameType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class Work:
    """One work message: runners to flag, and owed events to publish."""

    orders: list[FlagOrder]
    owed: list[StaleRunner]

    @classmethod
    def from_body(cls, body: str) -> Work:
        document = json.loads(body)
        return cls(
            [FlagOrder.from_row(row) for row in document.get("orders", [])],
            [event_from_row(row) for row in document.get("owed", [])],
        )


class WorkQueue:
    """The workers' SQS queue, as the sweep sees it."""

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        if client is None:
            import boto3

            from heartbeat.clients import CLIENT_CONFIG

            client = boto3.client("sqs", config=CLIENT_CONFIG)
        self.queue_url = queue_url
        self.client = client

    def backlog(self) -> int | None:
        """Messages still in the queue: waiting, being worked on, or delayed (SQS's approximate counts).

        None when SQS did not answer: the sweep then writes its flags itself, so that a queue it
        cannot reach never stops it (nor the state it saves).
        """
        try:
            attributes = self.client.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=list(BACKLOG_ATTRIBUTES),
            )["Attributes"]
        except (ClientError, BotoCoreError) as error:
            logger.error(
                "The work queue did not answer: this sweep writes its flags itself", extra={"error": str(error)}
            )
            return None
        return sum(int(attributes.get(name) or 0) for name in BACKLOG_ATTRIBUTES)

    def send(
        self, orders: Iterable[FlagOrder], owed: Iterable[StaleRunner], deadline: Deadline, *, late: bool = False
    ) -> Sent:
        """Send the orders, then the owed events, as work messages, starting none once the deadline has passed."""
        sent = Sent()
        for body, order_rows, owed_rows in chunks(orders, owed):
            # Late (the scan used the time up): one message still goes, so that each sweep makes progress.
            if deadline.passed() and not (late and sent.messages == 0):
                break
            try:
                self.client.send_message(QueueUrl=self.queue_url, MessageBody=body)
            except (ClientError, BotoCoreError) as error:
                # The rest is left: its runners are still stale and its events still owed, for the next sweep.
                logger.error("The work queue refused work: the next sweep sends the rest", extra={"error": str(error)})
                break
            sent.messages += 1
            sent.orders += order_rows
            sent.owed += owed_rows
        return sent


@dataclass
class Sent:
    """What WorkQueue.send handed to the workers."""

    messages: int = 0
    orders: int = 0
    owed: int = 0


def chunks(orders: Iterable[FlagOrder], owed: Iterable[StaleRunner]) -> Iterator[tuple[str, int, int]]:
    """Message bodies, with their counts of orders and owed events: CHUNK_ORDERS rows and CHUNK_BYTES at most.

    The orders come first; the rows are streamed.

    Each row is encoded once, as ASCII JSON: SQS refuses some characters a taskrunnerId may hold
    (U+FFFE, lone surrogates), and escaped none is left.
    """
    order_rows: list[str] = []
    owed_rows: list[str] = []
    size = 0
    for is_order, row in _tagged(orders, owed):
        encoded = json.dumps(row, separators=(",", ":"))
        full = len(order_rows) + len(owed_rows) >= CHUNK_ORDERS or size + len(encoded) + 1 > CHUNK_BYTES
        if (order_rows or owed_rows) and full:
            yield _body(order_rows, owed_rows), len(order_rows), len(owed_rows)
            order_rows, owed_rows, size = [], [], 0
        (order_rows if is_order else owed_rows).append(encoded)
        size += len(encoded) + 1
    if order_rows or owed_rows:
        yield _body(order_rows, owed_rows), len(order_rows), len(owed_rows)


def _tagged(orders: Iterable[FlagOrder], owed: Iterable[StaleRunner]) -> Iterator[tuple[bool, tuple[Any, ...]]]:
    for order in orders:
        yield True, order.to_row()
    for runner in owed:
        yield False, event_to_row(runner)


def _body(order_rows: list[str], owed_rows: list[str]) -> str:
    return '{"orders":[' + ",".join(order_rows) + '],"owed":[' + ",".join(owed_rows) + "]}"
