"""Sweeper scale: what one sweep costs per 100,000 runners, and what 1M and 10M would take.

Three measurements, each of the real ``sweep()`` on a store with a real botocore client:

1. Time per 100k runners by segment count. DynamoDB is answered at botocore's ``before-send``
   with the exact Scan pages it would send (the projected attributes, paged at 1 MB of scanned
   item data per segment), after a fixed wait per page that stands for DynamoDB's service time.
   CPU seconds are what the sweeper itself spends (signing, parsing, the guard's loop); wall
   seconds show how segments overlap the waits. moto is not timed: its own scan is slower than
   DynamoDB by orders of magnitude and would measure moto.
2. Read units and HTTP attempts per 100k runners, on moto: every Scan attempt counted at
   ``before-send``, every item it read by ``ScannedCount``, each runner flagged once.
3. Peak memory (tracemalloc) of a sweep at two fleet sizes, to show it stays flat.

The estimate for N runners is the larger of the CPU time (measured CPU per runner times N, on
one vCPU: a 1,769 MB Lambda) and the scan's wait (N's 1 MB pages times the per-page wait,
divided among the segments), the two overlapping because the segments' threads wait while the
main thread parses. Figures, not assertions; the quick run uses small fleets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from bench.capacity import READ_UNIT_BYTES, item_size, scan_read_units
from heartbeat.clients import CLIENT_CONFIG, SCAN_SEGMENTS
from heartbeat.config import DEFAULT_RETENTION_SECONDS, DEFAULT_STALE_AFTER_SECONDS, Config
from heartbeat.observability import SERVICE
from heartbeat.store import RunnerStore, SweepState
from heartbeat.sweeper import sweep
from heartbeat_local.server import create_table
from tests.support import canned_response

TABLE = "bench"
KEYS: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
THRESHOLD = DEFAULT_STALE_AFTER_SECONDS
RETENTION = DEFAULT_RETENTION_SECONDS
NOW = 1_795_521_600.0
PAGE_BYTES = 1024 * 1024  # a Scan page: at most 1 MB of scanned item data (DynamoDB's Scan documentation)
# DynamoDB's service time for one 1 MB Scan page: an assumption, not a measurement (no AWS here).
# One partition serves at most 3,000 read units a second (24 MB/s eventually consistent), so one
# segment can never beat 1 MB per 42 ms; 200 ms is a conservative figure. Override to re-estimate.
PAGE_WAIT_MS = float(os.environ.get("SWEEP_PAGE_WAIT_MS", "200"))
LAMBDA_VCPUS = 1.0  # at 1,769 MB a Lambda function has one vCPU's worth of CPU


def runner_item(i: int, stale: bool) -> dict[str, Any]:
    """Runner i's full record as the table holds it (EC2-style ids and host names)."""
    last_seen = NOW - (THRESHOLD + 600 if stale else 300)
    return {
        "taskrunnerId": {"S": f"i-{i:017x}-taskrunner"}, "status": {"S": "active"},
        "firstSeen": {"N": f"{NOW - 86_400:.3f}"}, "lastSeen": {"N": f"{last_seen:.3f}"},
        "heartbeatCount": {"N": "96"}, "expiresAt": {"N": str(int(last_seen) + RETENTION)},
        "hostname": {"S": f"ip-10-{i % 250}-{i // 250 % 250}-{i % 199}.eu-west-1.compute.internal"},
        "workerGroup": {"S": "etl-workers-prod"},
    }  # fmt: skip


PROJECTED = (  # what the sweeper's scan asks for (store/scan.py), the TTL included: it counts live runners by status
    "taskrunnerId", "status", "lastSeen", "workerGroup", "hostname", "staleAt", "eventPending", "resetAt", "firstSeen",
    "heartbeatCount", "expiresAt",
)  # fmt: skip
ITEM_BYTES = item_size(runner_item(0, stale=False))
ITEMS_PER_PAGE = PAGE_BYTES // ITEM_BYTES


def pages_for(runners: int, segments: int) -> int:
    """Scan pages (requests) for a table of this many runners read in this many segments."""
    return segments * math.ceil(math.ceil(runners / segments) / ITEMS_PER_PAGE)


class CannedTable:
    """Answers the sweeper's DynamoDB requests at before-send as DynamoDB would, without a table.

    Runner i is in segment i % segments; every stale_every-th runner is silent past the threshold.
    Pages are built on request; keep_pages keeps them for the next sweep (timing, so that the
    harness's own work stays out of the wall time), else they are dropped (memory, so that the
    harness holds no fleet).
    """

    def __init__(self, client: Any, runners: int, stale_every: int, page_wait: float, keep_pages: bool) -> None:
        self.runners, self.stale_every, self.page_wait = runners, stale_every, page_wait
        self.flags = 0
        self.pages: dict[bytes, bytes] | None = {} if keep_pages else None
        client.meta.events.register("before-send.dynamodb", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        operation = request.headers["X-Amz-Target"].decode().split(".")[-1]
        body: dict[str, Any] = {}
        if operation == "Scan":
            raw = self.pages.get(request.body) if self.pages is not None else None
            if raw is None:
                raw = self._page(json.loads(request.body))
                if self.pages is not None:
                    self.pages[request.body] = raw
            time.sleep(self.page_wait)
            return _response(request.url, raw)
        elif operation == "GetItem":  # the sweeper's state: it has been running on schedule
            body = {"Item": {"lastSweepAt": {"N": f"{NOW - 300:.3f}"}, "watchingSince": {"N": f"{NOW - 86_400:.3f}"}}}
        elif operation == "UpdateItem":
            self.flags += 1
        return _response(request.url, json.dumps(body).encode())

    def _page(self, scan: dict[str, Any]) -> bytes:
        """One page of one segment, written as text item by item (the harness must stay light)."""
        segment, segments = scan["Segment"], scan["TotalSegments"]
        start = int(scan.get("ExclusiveStartKey", {}).get("n", {"N": str(segment - segments)})["N"]) + segments
        size = min(scan.get("Limit", ITEMS_PER_PAGE), ITEMS_PER_PAGE)
        numbers = range(start, min(self.runners, start + size * segments), segments)
        items = ",".join(
            json.dumps({k: v for k, v in runner_item(i, (i + 1) % self.stale_every == 0).items() if k in PROJECTED})
            for i in numbers
        )
        more = numbers and numbers[-1] + segments < self.runners
        last = f', "LastEvaluatedKey": {{"n": {{"N": "{numbers[-1]}"}}}}' if more else ""
        return f'{{"Items": [{items}], "Count": {len(numbers)}, "ScannedCount": {len(numbers)}{last}}}'.encode()


def _response(url: str, body: bytes) -> AWSResponse:
    return canned_response(url, 200, body, {"x-amzn-RequestId": "bench"})


def canned_sweep(
    runners: int,
    segments: int,
    stale_every: int,
    page_wait: float,
    *,
    keep_pages: bool = True,
    page_limit: int | None = None,
) -> dict[str, Any]:
    """The second of two sweeps over a canned table: its wall and CPU seconds, and its flags."""
    client = boto3.client("dynamodb", config=CLIENT_CONFIG, **KEYS)
    table = CannedTable(client, runners, stale_every, page_wait, keep_pages)
    store = RunnerStore(TABLE, client=client)
    store.scan_segments, store.scan_page_limit = segments, page_limit
    config = Config(TABLE, stale_after_seconds=THRESHOLD, retention_seconds=RETENTION, mass_stale_fraction=1)
    sweep(store, config, NOW)  # warm: botocore loads its models and builds its parsers once
    table.flags = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    report = sweep(store, config, NOW)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"examined": report.examined, "flagged": table.flags, "wall_seconds": wall, "cpu_seconds": cpu}


def time_per_100k(runners: int, segment_counts: list[int], page_wait: float) -> list[dict[str, Any]]:
    """A sweep that flags nobody new (the steady state), per segment count, scaled to 100k runners."""
    rows = []
    for segments in segment_counts:
        run = canned_sweep(runners, segments, stale_every=runners + 1, page_wait=page_wait)
        scale = 100_000 / runners
        rows.append({
            "segments": segments, "runners": runners, "scan_requests": pages_for(runners, segments),
            "seconds_per_100k": run["wall_seconds"] * scale, "cpu_seconds_per_100k": run["cpu_seconds"] * scale,
        })  # fmt: skip
    return rows


def botocore_parse_per_100k(runners: int) -> float:
    """CPU seconds per 100k runners with botocore parsing every item value, as before the lean parse."""
    with mock.patch("heartbeat.store.scan.lean_scan_items", return_value=None):
        run = canned_sweep(runners, SCAN_SEGMENTS, stale_every=runners + 1, page_wait=0)
    return float(run["cpu_seconds"]) * 100_000 / runners


def cost_per_flag(runners: int, flags: int) -> float:
    """CPU seconds the sweeper spends per runner it flags (one conditional UpdateItem each), from two sweeps."""
    quiet = canned_sweep(runners, SCAN_SEGMENTS, stale_every=runners + 1, page_wait=0)
    flagging = canned_sweep(runners, SCAN_SEGMENTS, stale_every=runners // flags, page_wait=0)
    return float(max(0.0, flagging["cpu_seconds"] - quiet["cpu_seconds"]) / flagging["flagged"])


def peak_memory_mb(runners: int, page_limit: int | None) -> float:
    """tracemalloc's peak during a steady-state sweep of this many runners, harness included.

    The scan's share is flat; the sweeper also keeps each runner it will flag (about 0.6 KB).
    """
    tracemalloc.start()
    try:
        canned_sweep(
            runners, SCAN_SEGMENTS, stale_every=runners + 1, page_wait=0, keep_pages=False, page_limit=page_limit
        )
        return float(tracemalloc.get_traced_memory()[1] / 1e6)
    finally:
        tracemalloc.stop()


def moto_counts(runners: int, segment_counts: list[int]) -> dict[str, Any]:
    """On moto: Scan HTTP attempts, items read and candidates per segment count; then one sweep's flags."""
    rows = []
    with mock_aws():
        client = boto3.client("dynamodb", **KEYS)
        create_table(client, TABLE)
        sizes: list[int] = []
        batch: list[Any] = []
        for i in range(runners):
            item = runner_item(i, stale=i % 100 == 0)
            sizes.append(item_size(item))
            batch.append({"PutRequest": {"Item": item}})
            if len(batch) == 25 or i == runners - 1:
                client.batch_write_item(RequestItems={TABLE: batch})
                batch = []
        attempts: Counter[str] = Counter()
        scanned = [0]

        def count_attempt(request: Any, **_: Any) -> None:
            attempts[request.headers["X-Amz-Target"].decode().split(".")[-1]] += 1

        def count_scanned(parsed: dict[str, Any], **_: Any) -> None:
            scanned[0] += parsed.get("ScannedCount", 0)

        client.meta.events.register("before-send.dynamodb", count_attempt)
        client.meta.events.register("after-call.dynamodb.Scan", count_scanned)
        store = RunnerStore(TABLE, client=client)
        store.save_sweep_state(SweepState(last_sweep_at=NOW - 300, watching_since=NOW - 86_400))
        for segments in segment_counts:
            store.scan_segments = segments
            attempts.clear()
            scanned[0] = 0
            candidates = [c.taskrunner_id for c in store.sweep_candidates(NOW)]
            rows.append({
                "segments": segments, "runners": runners, "scan_attempts": attempts["Scan"],
                "items_read": scanned[0], "candidates": len(candidates), "distinct": len(set(candidates)),
            })  # fmt: skip
        config = Config(TABLE, stale_after_seconds=THRESHOLD, retention_seconds=RETENTION)
        attempts.clear()
        report = sweep(store, config, NOW)
    return {
        "scans": rows,
        "sweep": {"stale": report.stale, "flagged": report.flagged, "update_attempts": attempts["UpdateItem"]},
        "read_units": scan_read_units(sizes),
    }


def scale(quick: bool) -> dict[str, Any]:
    """Every sweeper figure make bench reports, under the stable keys the cost model reads."""
    with _quiet_logs():
        return _scale(quick)


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """The sweeper's log lines (one per flag) go nowhere: the bench prints its table on stdout."""
    handlers = [h for h in logging.getLogger(SERVICE).handlers if isinstance(h, logging.StreamHandler)]
    with open(os.devnull, "w") as devnull:
        streams = [h.setStream(devnull) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                handler.setStream(stream)


def _scale(quick: bool) -> dict[str, Any]:
    runners = 10_000 if quick else 100_000
    segment_counts = [1, 8] if quick else [1, 2, 4, 8, 16]
    page_wait = PAGE_WAIT_MS / 1000
    timings = time_per_100k(runners, segment_counts, page_wait)
    at_default = next(row for row in timings if row["segments"] == SCAN_SEGMENTS)
    cpu_per_runner = float(at_default["cpu_seconds_per_100k"]) / 100_000
    moto = moto_counts(500 if quick else 10_000, [1, 4, 8])
    # Both sizes past the scan's window (a page per segment and two more: about 57,000 runners at
    # 8 segments of 1 MB pages); the quick run shrinks the pages to 250 runners to stay short.
    memory_sizes = (5_000, 20_000) if quick else (100_000, 400_000)
    memory_page_limit = 250 if quick else None

    def estimate(fleet: int) -> float:
        cpu = cpu_per_runner * fleet / LAMBDA_VCPUS
        wait = pages_for(fleet, SCAN_SEGMENTS) * page_wait / SCAN_SEGMENTS
        return max(cpu, wait)

    return {
        "segments_default": SCAN_SEGMENTS,
        "by_segments": timings,
        "seconds_per_100k": at_default["seconds_per_100k"],
        "cpu_seconds_per_100k": cpu_per_runner * 100_000,
        "read_units_per_100k": moto["read_units"] * 100_000 / moto["scans"][0]["runners"],
        "scan_requests_per_100k": pages_for(100_000, SCAN_SEGMENTS),
        "cpu_seconds_per_100k_botocore_parse": botocore_parse_per_100k(runners // 2),
        "cpu_seconds_per_flag": cost_per_flag(runners // 10, 100),
        "estimate_1m_seconds": estimate(1_000_000),
        "estimate_10m_seconds": estimate(10_000_000),
        "peak_memory_mb": {str(size): peak_memory_mb(size, memory_page_limit) for size in memory_sizes},
        "peak_memory_page_limit": memory_page_limit,
        "moto": {"scans": moto["scans"], "sweep": moto["sweep"]},
        "assumptions": {
            "page_wait_ms": PAGE_WAIT_MS, "page_bytes": PAGE_BYTES, "item_bytes": ITEM_BYTES,
            "read_unit_bytes": READ_UNIT_BYTES, "lambda_vcpus": LAMBDA_VCPUS, "lambda_memory_mb": 1769,
        },
    }  # fmt: skip


def print_section(result: dict[str, Any]) -> None:
    """The sweeper's part of make bench's table."""
    a = result["assumptions"]
    print(f"\n4. Sweeper scale ({a['item_bytes']} B records; DynamoDB answered with canned 1 MB pages after"
          f" {a['page_wait_ms']:.0f} ms each)")  # fmt: skip
    for row in result["by_segments"]:
        print(f"   {row['segments']:>2} segments: {row['seconds_per_100k']:6.2f} s wall,"
              f" {row['cpu_seconds_per_100k']:5.2f} s CPU per 100k runners  ({row['scan_requests']} Scan requests"
              f" for {row['runners']:,})")  # fmt: skip
    print(f"   CPU per 100k runners with botocore parsing each value (before): "
          f"{result['cpu_seconds_per_100k_botocore_parse']:.2f} s")  # fmt: skip
    print(f"   read units per 100k runners {result['read_units_per_100k']:.1f}   CPU per flagged runner"
          f" {result['cpu_seconds_per_flag'] * 1000:.2f} ms")  # fmt: skip
    for row in result["moto"]["scans"]:
        print(f"   moto, {row['segments']} segments: {row['scan_attempts']} Scan attempts read"
              f" {row['items_read']:,} items ({row['runners']:,} runners and the sweeper's state),"
              f" {row['candidates']:,} candidates, {row['distinct']:,} distinct")  # fmt: skip
    sweep = result["moto"]["sweep"]
    print(f"   moto sweep: {sweep['stale']} stale, {sweep['flagged']} flagged, {sweep['update_attempts']} UpdateItem")
    memory = ", ".join(f"{int(size):,} runners {mb:.1f} MB" for size, mb in result["peak_memory_mb"].items())
    pages = f", {result['peak_memory_page_limit']}-runner pages" if result["peak_memory_page_limit"] else ""
    print(f"   peak memory (tracemalloc{pages}): {memory}")
    print(f"   estimate at {result['segments_default']} segments, one vCPU (1,769 MB):"
          f" 1M {result['estimate_1m_seconds']:.0f} s, 10M {result['estimate_10m_seconds']:.0f} s")  # fmt: skip
