"""Fan-out: a sweep's flags handed to workers through an SQS queue, when one function cannot write them in time.

The sweep judges the whole fleet in one function (the census is complete before anyone is judged),
so only the writing is fanned out: the runners to flag, and the events owed from earlier sweeps,
go out as work messages of up to CHUNK_ORDERS rows. Lambda's SQS event source mapping runs
the workers (flag_worker.py) at most its maximum concurrency at once; a message a worker did not
finish comes back after the queue's visibility timeout, and its flags are conditional, so a
repeat only re-checks them.

Work is handed out by lanes, so that a sweep never hands out what the queue already holds: a
runner's lane is a hash of its id (lane_of), and sweeps hand out whole lanes in order while the
lease item records the first lane not handed out yet. While the queue still holds work, the next
sweep goes on from that lane (it judges the whole fleet all the same, and leaves the lanes below
alone: their runners are still active and stale, but already in a message); once the queue is
empty, the next sweep starts again from lane 0. So a mass death of any size keeps the workers fed
at every sweep, instead of waiting for the queue to drain between two hand-outs. Events owed from
before go out whatever the queue holds: whoever publishes one takes its claim first (store/flags.py),
so a worker and a sweep never both publish it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
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
# A sweep cut short by its deadline in the middle of a lane hands that lane out again at its next
# sweep (the repeated flags are refused by their condition): at most 1/LANES of the work, wasted.
LANES = 64
BACKLOG_ATTRIBUTES: tuple[QueueAttributeNameType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def lane_of(taskrunner_id: str) -> int:
    """A runner's lane: the same in every sweep and every process (Python's own hash() is salted per process)."""
    return zlib.crc32(taskrunner_id.encode("utf-8", "surrogatepass")) % LANES


@dataclass(frozen=True)
class Handout:
    """Which of its flags a sweep takes on, and how: the decision of handout(), carried out by the sweeper."""

    first_lane: int  # lanes below it are the workers' (still in their queue): this sweep leaves them alone
    fan_out: bool  # hand the flags of lanes from first_lane on to the workers; else write them itself
    handed_out: int  # what to record as the first lane not handed out, if this sweep hands none out


def handout(backlog: int | None, handed_out: int, due_by_lane: Sequence[int], capacity: float) -> Handout:
    """Decide what a sweep does with its flags, from the workers' queue and what earlier sweeps handed out.

    backlog: messages in the queue (None: no queue, or it did not answer, so the sweep writes every
    flag itself); handed_out: the first lane the sweeps had not handed out, as the lease recorded;
    due_by_lane: runners past their threshold in each lane; capacity: flags this sweep can write
    before its deadline (inline_capacity).
    """
    if backlog is None:  # what the queue holds is unknown: the record stands for the next sweep that sees it
        return Handout(first_lane=0, fan_out=False, handed_out=handed_out)
    first = min(max(handed_out, 0), LANES) if backlog else 0  # an empty queue: everything handed out is done
    due = sum(due_by_lane[first:])
    return Handout(first_lane=first, fan_out=due > capacity, handed_out=first)


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
                return sent
            try:
                self.client.send_message(QueueUrl=self.queue_url, MessageBody=body)
            except (ClientError, BotoCoreError) as error:
                # The rest is left: its runners are still stale and its events still owed, for the next sweep.
                logger.error("The work queue refused work: the next sweep sends the rest", extra={"error": str(error)})
                return sent
            sent.messages += 1
            sent.orders += order_rows
            sent.owed += owed_rows
        sent.complete = True
        return sent


@dataclass
class Sent:
    """What WorkQueue.send handed to the workers."""

    messages: int = 0
    orders: int = 0
    owed: int = 0
    complete: bool = False  # every order and owed event given was sent

    def __add__(self, other: Sent) -> Sent:
        return Sent(self.messages + other.messages, self.orders + other.orders, self.owed + other.owed, other.complete)


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
        encoded = _encode(row)
        full = len(order_rows) + len(owed_rows) >= CHUNK_ORDERS or size + len(encoded) + 1 > CHUNK_BYTES
        if (order_rows or owed_rows) and full:
            yield _body(order_rows, owed_rows), len(order_rows), len(owed_rows)
            order_rows, owed_rows, size = [], [], 0
        (order_rows if is_order else owed_rows).append(encoded)
        size += len(encoded) + 1
    if order_rows or owed_rows:
        yield _body(order_rows, owed_rows), len(order_rows), len(owed_rows)


_encode = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps's own, built once (a million rows a sweep)


def _tagged(orders: Iterable[FlagOrder], owed: Iterable[StaleRunner]) -> Iterator[tuple[bool, tuple[Any, ...]]]:
    for order in orders:
        yield True, order.to_row()
    for runner in owed:
        yield False, event_to_row(runner)


def _body(order_rows: list[str], owed_rows: list[str]) -> str:
    return '{"orders":[' + ",".join(order_rows) + '],"owed":[' + ",".join(owed_rows) + "]}"
