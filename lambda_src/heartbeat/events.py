"""Stale events: one EventBridge event per newly flagged runner, so operators can act on it.

Delivery is at least once. A flag and its event are not one atomic step, so the flag
records that its event is owed (``eventPending``) and the sweeper clears that only once
PutEvents has accepted the entry: a sweeper that dies between the two leaves the debt for
the next run, and nothing is lost. The price is a possible repeat after such a crash;
each event carries an ``eventId`` (runner and flag time) for consumers to drop repeats.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

SOURCE = "taskrunner.heartbeat"
DETAIL_TYPE = "Task Runner Stale"
BATCH_SIZE = 10  # PutEvents' limit
ATTEMPTS = 3


@dataclass(frozen=True)
class StaleRunner:
    """A flagged runner whose event is owed."""

    taskrunner_id: str
    last_seen: float
    stale_at: float
    stale_after_seconds: int
    hostname: str | None = None
    worker_group: str | None = None


def iso(epoch_seconds: float) -> str:
    """ISO 8601 in UTC, to the millisecond, rounded as the store keeps times.

    A stale event's eventId holds its flag time: the first publish has the sweep's own clock,
    a republish (after a failed or crashed sweep) the stored staleAt, which the store rounds
    to the millisecond (f"{t:.3f}"). Formatting from that same rounding keeps the eventId.
    """
    whole, millis = f"{epoch_seconds:.3f}".split(".")
    return datetime.fromtimestamp(int(whole), UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis}Z"


def detail(runner: StaleRunner) -> dict[str, Any]:
    """The event's detail, as docs/operations.md documents it."""
    return {
        "eventId": f"{runner.taskrunner_id}@{iso(runner.stale_at)}",
        "taskrunnerId": runner.taskrunner_id,
        "hostname": runner.hostname,
        "workerGroup": runner.worker_group,
        "lastSeen": iso(runner.last_seen),
        "staleAt": iso(runner.stale_at),
        "staleAfterSeconds": runner.stale_after_seconds,
    }


class StaleEventPublisher:
    """Publishes stale events in batches of ten, retrying the entries PutEvents refused."""

    def __init__(
        self, bus_name: str, client: EventBridgeClient | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if client is None:
            import boto3

            from heartbeat.clients import SWEEPER_CLIENT_CONFIG

            # The sweeper's patience (10 s a read): PutEvents has no idempotency token, so a read that times out
            # while EventBridge accepts the entries is resent and the events arrive twice.
            client = boto3.client("events", config=SWEEPER_CLIENT_CONFIG)
        self.bus_name = bus_name
        self.client = client
        self._sleep = sleep

    def publish(self, runners: Sequence[StaleRunner]) -> tuple[list[str], list[str]]:
        """Publish one event per runner; return the ids published and the ids still owed."""
        published: list[str] = []
        owed: list[str] = []
        for start in range(0, len(runners), BATCH_SIZE):
            done, failed = self._publish_batch(list(runners[start : start + BATCH_SIZE]))
            published += done
            owed += failed
        return published, owed

    def _publish_batch(self, batch: list[StaleRunner]) -> tuple[list[str], list[str]]:
        published: list[str] = []
        for attempt in range(ATTEMPTS):
            if attempt:
                self._sleep(0.2 * 2**attempt)
            entries: list[PutEventsRequestEntryTypeDef] = [
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    # As UTF-8, not \u escapes: EventBridge counts a request's entries in UTF-8 bytes (under 256 KB
                    # in all), and escaped, ten of the longest valid ids (12 bytes a character) came to 480 KB.
                    "Detail": json.dumps(detail(runner), ensure_ascii=False),
                    "EventBusName": self.bus_name,
                    "Time": datetime.fromtimestamp(float(f"{runner.stale_at:.3f}"), UTC),
                }
                for runner in batch
            ]
            try:
                results = self.client.put_events(Entries=entries)["Entries"]
            except (ClientError, BotoCoreError):
                continue  # the whole batch is still owed; try again
            # PutEvents answers entry by entry, in order; an entry with an ErrorCode was not accepted.
            published += [r.taskrunner_id for r, result in zip(batch, results, strict=True) if "EventId" in result]
            batch = [r for r, result in zip(batch, results, strict=True) if "EventId" not in result]
            if not batch:
                break
        return published, [runner.taskrunner_id for runner in batch]
