"""Reading the whole table: the sweeper's parallel, projected scan, and the operator's plain listing.

Both stream: memory stays flat however big the fleet.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from heartbeat.clients import SCAN_SEGMENTS
from heartbeat.runners import Runner, Status
from heartbeat.store.items import (
    FULL_ID_ATTRIBUTE,
    KEY_ATTRIBUTE,
    TTL_ATTRIBUTE,
    is_runner_item,
    number,
    taskrunner_id,
    to_runner,
)
from heartbeat.store.keys import KeyCensus
from heartbeat.store.table import Table, raise_store_error


@dataclass(frozen=True)
class SweepCandidate:
    """What the sweeper needs to know of an active runner, or of a flagged one that still owes its event."""

    taskrunner_id: str
    status: str
    last_seen: float
    worker_group: str | None = None
    hostname: str | None = None
    stale_at: float | None = None
    event_pending: bool = False
    reset_at: float | None = None  # an operator's last reset: silence counts from then at the earliest
    first_seen: float | None = None  # with heartbeat_count: the runner's beat period (plan.typical_period)
    heartbeat_count: int | None = None


StatusCounts = dict[tuple[str | None, str], int]  # (worker group, status) -> live runners


def sweep_candidates(
    table: Table,
    now: float,
    segments: int = SCAN_SEGMENTS,
    page_limit: int | None = None,
    census: KeyCensus | None = None,
    *,
    statuses: StatusCounts | None = None,
) -> Iterator[SweepCandidate]:
    """Every active, unexpired runner, and every flagged runner whose stale event is still owed.

    With a census, the same scan also counts each key's live runners (flagged ones included) in it.
    With statuses, it counts every live runner by worker group and status (the dashboard's gauges):
    the filter then lets every live item through, which costs no more read units (a Scan is charged
    for what it reads, before its filter), only the transfer of the stale, terminating and retired ones.
    """
    candidate = f"(#status = :active AND {TTL_ATTRIBUTE} > :now) OR attribute_exists(eventPending)"
    if statuses is not None:
        candidate += f" OR {TTL_ATTRIBUTE} > :now"
    projection = (
        f"taskrunnerId, {FULL_ID_ATTRIBUTE}, #status, lastSeen, workerGroup, hostname, staleAt, eventPending, resetAt, "
        "firstSeen, heartbeatCount"
    )
    if census is not None:
        candidate += f" OR (attribute_exists({KEY_ATTRIBUTE}) AND {TTL_ATTRIBUTE} > :now)"
        projection += f", {KEY_ATTRIBUTE}"
    if census is not None or statuses is not None:
        projection += f", {TTL_ATTRIBUTE}"
    items = _parallel_scan(
        table,
        segments,
        page_limit,
        ProjectionExpression=projection,
        FilterExpression=candidate,
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":active": {"S": Status.ACTIVE.value}, ":now": number(now)},
    )
    for item in items:
        live = TTL_ATTRIBUTE in item and float(item[TTL_ATTRIBUTE]["N"]) > now  # TTL projected when counting
        if statuses is not None and live and "status" in item and is_runner_item(item):
            group = (item.get("workerGroup", {}).get("S"), item["status"]["S"])
            statuses[group] = statuses.get(group, 0) + 1
        # A retired runner has left the fleet: it frees its key's slot at this census, as an expired one does.
        if census is not None and KEY_ATTRIBUTE in item and live and item["status"]["S"] != Status.RETIRED.value:
            census.saw(item[KEY_ATTRIBUTE]["S"], float(item["lastSeen"]["N"]))
        if (census is not None or statuses is not None) and not (
            ("eventPending" in item) or (live and item.get("status", {}).get("S") == Status.ACTIVE.value)
        ):
            continue  # counted, and nothing for the sweeper to judge
        yield SweepCandidate(
            taskrunner_id=taskrunner_id(item),
            status=item["status"]["S"],
            last_seen=float(item["lastSeen"]["N"]),
            worker_group=item.get("workerGroup", {}).get("S"),
            hostname=item.get("hostname", {}).get("S"),
            stale_at=float(item["staleAt"]["N"]) if "staleAt" in item else None,
            event_pending="eventPending" in item,
            reset_at=float(item["resetAt"]["N"]) if "resetAt" in item else None,
            first_seen=float(item["firstSeen"]["N"]) if "firstSeen" in item else None,
            heartbeat_count=int(item["heartbeatCount"]["N"]) if "heartbeatCount" in item else None,
        )


def runners(table: Table) -> Iterator[Runner]:
    """Every runner record, page by page (never the whole table in memory)."""
    for item in _items(table.client.get_paginator("scan").paginate(TableName=table.name)):
        if is_runner_item(item):
            yield to_runner(item)


def _items(pages: Any) -> Iterator[dict[str, Any]]:
    try:
        for page in pages:
            yield from page.get("Items", [])
    except (ClientError, BotoCoreError) as error:
        raise_store_error("scan", error)


def _parallel_scan(table: Table, segments: int, page_limit: int | None, **request: Any) -> Iterator[dict[str, Any]]:
    """The table's items from its scan segments read at once.

    Python threads wait on DynamoDB together (the GIL keeps their parsing serial, which
    lean_scan_items makes cheap). Each thread hands whole pages over a queue of one; a thread
    waits with its next page until the reader takes it, so at most one page per segment and
    two more are in memory, however big the table.
    """
    table.client.meta.events.register(
        "before-parse.dynamodb.Scan", lean_scan_items, unique_id="heartbeat-store-lean-scan"
    )
    pages: queue.Queue[list[dict[str, Any]] | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(page: list[dict[str, Any]] | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                pages.put(page, timeout=0.05)
            except queue.Full:
                continue
            return True
        return False

    def read(segment: int) -> None:
        arguments: dict[str, Any] = {"TableName": table.name, "Segment": segment, "TotalSegments": segments}
        if page_limit:
            arguments["Limit"] = page_limit
        try:
            for page in table.client.get_paginator("scan").paginate(**arguments, **request):
                if not hand_over(page.get("Items", [])):
                    return  # the sweep stopped reading
        except BaseException as error:  # handed to the reader, who raises it
            hand_over(error)
            return
        hand_over(None)

    threads = [threading.Thread(target=read, args=(n,), daemon=True) for n in range(segments)]
    for thread in threads:
        thread.start()
    try:
        finished = 0
        while finished < segments:
            page = pages.get()
            if page is None:
                finished += 1
            elif isinstance(page, list):
                yield from page
            else:
                raise_store_error("scan", page)
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def lean_scan_items(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """Hand a Scan's items over as DynamoDB sent them, parsed by json alone.

    botocore's shape-by-shape parse of each attribute value was three quarters of the sweeper's
    CPU, yet its result is the same JSON for every type this table stores (S, N, BOOL; only
    binary would differ). botocore parses the rest of the page (keys, counts) as usual; this is
    the hook it uses itself to override parsed fields (S3's Expires header).
    """
    if response_dict["status_code"] != 200:
        return
    page = json.loads(response_dict["body"])
    if "Items" in page:
        customized_response_dict["Items"] = page.pop("Items")
        response_dict["body"] = json.dumps(page).encode()
