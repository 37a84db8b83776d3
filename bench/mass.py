"""Mass flags: the real sweeper and its workers against DynamoDB, EventBridge and SQS with a modelled round trip.

Every request goes through botocore as in Lambda (serialized, signed, its answer parsed) and is
answered at ``before-send`` by a canned service that keeps the fleet's state: which runners are
flagged and which still owe their event, so each sweep's Scan pages show the earlier sweeps' work
and each conditional write is refused as DynamoDB would refuse it. Every answer waits ``RTT``
(5 ms) first; a 1 MB Scan page waits ``bench.sweeper.PAGE_WAIT_MS``. Sleeping releases the GIL, as
a socket wait does. The canned services' own CPU (building pages, reading requests) is measured on
their threads and taken out of the sweeper's CPU.

Rows (each in a fresh interpreter, so its peak RSS is its own):

- flag writes a second by pool size: store.flag_stale alone, then whole flags (the write, its
  share of a PutEvents and the clear of its debt);
- a fleet with a share of it dead, swept on schedule (one invocation every 5 minutes, each with
  the Lambda deadline: 300 s timeout less the 30 s reserve) until every dead runner is flagged and
  every event published: with the work queue (what the stack deploys) and, for comparison,
  without (one function). Between two sweeps the workers drain the queue here one message after
  another; in AWS up to WORKERS run at once, so their wall time is shared out by that many.

Figures, not assertions. ``python -m bench.mass ROW ...`` runs one row and prints it as JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config as BotoConfig

from bench.sweeper import ITEMS_PER_PAGE, PAGE_WAIT_MS
from heartbeat.clients import FLAG_CONCURRENCY, SWEEPER_CLIENT_CONFIG
from heartbeat.config import Config
from heartbeat.events import StaleEventPublisher
from heartbeat.fan_out import LANES, WorkQueue
from heartbeat.flag_worker import RESERVE_SECONDS as WORKER_RESERVE_SECONDS
from heartbeat.flag_worker import WorkLeft, work
from heartbeat.flagging import Deadline, FlagOrder, carry_out
from heartbeat.observability import metrics
from heartbeat.spool import Spool
from heartbeat.store import RunnerStore
from heartbeat.sweeper import RESERVE_SECONDS, sweep

RTT = float(os.environ.get("BENCH_RTT_MS", "5")) / 1000
PAGE_WAIT = PAGE_WAIT_MS / 1000
KEYS: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
TABLE = "bench"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bench-work"
THRESHOLD = 2700
RETENTION = 7 * 24 * 3600
INTERVAL = 300  # the schedule
LAMBDA_TIMEOUT = 300  # the sweeper's (infra/stack.py)
WORKER_TIMEOUT = 60  # the workers' (infra/stack.py)
WORKERS = 8  # the workers' maximum concurrency (infra/stack.py)
T0 = 1_795_521_600.0
SEGMENTS_OF = "segments"
JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "bench"}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def _answer(url: str, body: bytes, status: int = 200) -> AWSResponse:
    headers: Any = JSON_HEADERS
    return AWSResponse(url, status, headers, _Raw(body))


CONDITION_FAILED = json.dumps(
    {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "failed"}
).encode()


class CannedFleet:
    """DynamoDB, EventBridge and SQS for one fleet: runner i is `i-<i as 17 hex digits>-taskrunner`.

    Runner i is dead (silent since long before the bench) when i % dead_every == 0, else beating
    (last seen up to 300 s before the current sweep). flagged and pending hold the table's flags
    and owed events; the work queue's messages wait in a spool.
    """

    def __init__(self, runners: int, dead_every: int) -> None:
        self.runners, self.dead_every = runners, dead_every
        self.now = T0
        self.flagged = bytearray(runners)
        self.pending = bytearray(runners)
        self.state: dict[str, Any] | None = {
            "lastSweepAt": {"N": f"{T0 - INTERVAL:.3f}"},
            "watchingSince": {"N": f"{T0 - 86_400:.3f}"},
        }
        self.requests: Counter[str] = Counter()
        self.handed_out = 0  # the lease item's record of the lanes handed to the workers
        self.events = 0
        self.messages = Spool()
        self.harness_cpu = 0.0
        self.lock = threading.Lock()

    def dead(self, i: int) -> bool:
        return i % self.dead_every == 0

    def attach(self, dynamodb: Any, events: Any, sqs: Any) -> None:
        dynamodb.meta.events.register("before-send.dynamodb", self._dynamodb)
        events.meta.events.register("before-send.events", self._events)
        sqs.meta.events.register("before-send.sqs", self._sqs)

    @contextlib.contextmanager
    def _harness(self) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            spent = time.thread_time() - started
            with self.lock:
                self.harness_cpu += spent

    def _dynamodb(self, request: Any, **_: Any) -> AWSResponse:
        with self._harness():
            operation = request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1]
            body = json.loads(request.body)
            page = self._page(body) if operation == "Scan" else self._item_request(operation, body)
            if operation == "UpdateItem":
                expression = body["UpdateExpression"]
                kind = "clear" if expression.startswith("REMOVE eventPending") else "flag"
                kind = (
                    "claim"
                    if "eventClaimUntil = :until" in expression or "REMOVE eventClaimUntil" in expression
                    else kind
                )
                kind = "lease" if body["Key"]["taskrunnerId"]["S"].endswith("sweeper-lease") else kind
                operation = f"UpdateItem ({kind})"
        with self.lock:
            self.requests[operation] += 1
        time.sleep(PAGE_WAIT if operation == "Scan" else RTT)
        if page == b"failed":
            return _answer(request.url, CONDITION_FAILED, 400)
        return _answer(request.url, page)

    def _item_request(self, operation: str, body: dict[str, Any]) -> bytes:  # noqa: PLR0911 - one answer per case
        key = body.get("Key", body.get("Item", {})).get("taskrunnerId", {}).get("S", "")
        if operation == "GetItem":
            return json.dumps({"Item": self.state} if self.state else {}).encode()
        if operation == "PutItem":
            if key.endswith("sweeper-state"):
                self.state = body["Item"]
            return b"{}"
        if operation != "UpdateItem":
            return b"{}"
        if key.endswith("sweeper-lease"):  # taken, renewed or given back: one sweeper, so always granted
            lanes = body["ExpressionAttributeValues"].get(":lanes")
            if lanes is not None:
                self.handed_out = int(lanes["N"])
            return json.dumps({"Attributes": {"handedOut": {"N": str(self.handed_out)}}}).encode()
        i = int(key[2:19], 16)
        with self.lock:
            if "eventClaimUntil = :until" in body["UpdateExpression"] or body["UpdateExpression"].startswith(
                "REMOVE eventClaimUntil"
            ):  # an owed event's claim taken or given up: granted while it is owed (one publisher here)
                return b"{}" if self.pending[i] else b"failed"
            if body["UpdateExpression"].startswith("REMOVE eventPending"):
                if not self.pending[i]:
                    return b"failed"
                self.pending[i] = 0
                return b"{}"
            if self.flagged[i] or not self.dead(i):
                return b"failed"
            self.flagged[i] = self.pending[i] = 1
        return b"{}"

    def _page(self, scan: dict[str, Any]) -> bytes:
        """One page of one segment, filtered as the sweeper's FilterExpression would be."""
        segment, segments = scan["Segment"], scan["TotalSegments"]
        start = int(scan.get("ExclusiveStartKey", {}).get("n", {"N": str(segment - segments)})["N"]) + segments
        numbers = range(start, min(self.runners, start + ITEMS_PER_PAGE * segments), segments)
        now = self.now
        items = []
        for i in numbers:
            flagged, pending = self.flagged[i], self.pending[i]
            if flagged and not pending:
                continue
            last_seen = T0 - THRESHOLD - 600 if self.dead(i) else now - (i % 300)
            status = "stale" if flagged else "active"
            items.append(
                f'{{"taskrunnerId":{{"S":"i-{i:017x}-taskrunner"}},"status":{{"S":"{status}"}},'
                f'"lastSeen":{{"N":"{last_seen:.3f}"}},"expiresAt":{{"N":"{int(last_seen) + RETENTION}"}},'
                f'"workerGroup":{{"S":"etl-workers-prod"}},'
                f'"hostname":{{"S":"ip-10-{i % 250}-{i // 250 % 250}-{i % 199}.eu-west-1.compute.internal"}}'
                + (f',"staleAt":{{"N":"{now:.3f}"}},"eventPending":{{"BOOL":true}}' if flagged else "")
                + "}"
            )
        more = numbers and numbers[-1] + segments < self.runners
        last = f',"LastEvaluatedKey":{{"n":{{"N":"{numbers[-1]}"}}}}' if more else ""
        return f'{{"Items":[{",".join(items)}],"Count":{len(items)},"ScannedCount":{len(numbers)}{last}}}'.encode()

    def _events(self, request: Any, **_: Any) -> AWSResponse:
        with self._harness():
            entries = len(json.loads(request.body)["Entries"])
        with self.lock:
            self.requests["PutEvents"] += 1
            self.events += entries
        time.sleep(RTT)
        answer = {"FailedEntryCount": 0, "Entries": [{"EventId": "bench"}] * entries}
        headers: Any = {"Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 200, headers, _Raw(json.dumps(answer).encode()))

    def _sqs(self, request: Any, **_: Any) -> AWSResponse:
        with self._harness():
            operation = request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1]
            body = json.loads(request.body)
            if operation == "SendMessage":
                self.messages.append((body["MessageBody"],))
                digest = hashlib.md5(body["MessageBody"].encode()).hexdigest()  # noqa: S324 - SQS's own checksum
                answer: dict[str, Any] = {"MessageId": str(len(self.messages)), "MD5OfMessageBody": digest}
            else:  # GetQueueAttributes: the workers drain the queue between two sweeps here
                answer = {"Attributes": {"ApproximateNumberOfMessages": str(len(self.messages))}}
        with self.lock:
            self.requests[operation] += 1
        time.sleep(RTT)
        headers: Any = {"Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 200, headers, _Raw(json.dumps(answer).encode()))

    def left(self) -> tuple[int, int]:
        """Dead runners not yet flagged, and events still owed."""
        dead = range(0, self.runners, self.dead_every)
        return sum(1 for i in dead if not self.flagged[i]), sum(self.pending)


def _clients(pool: int) -> tuple[Any, Any, Any]:
    config = SWEEPER_CLIENT_CONFIG.merge(BotoConfig(max_pool_connections=pool))
    return (
        boto3.client("dynamodb", config=config, **KEYS),
        boto3.client("events", config=config, **KEYS),
        boto3.client("sqs", config=config, **KEYS),
    )


def _cpu() -> float:
    return time.process_time()


def rates(concurrencies: list[int], writes: int) -> list[dict[str, Any]]:
    """Flag writes a second through one process, by pool size: the write alone, then a whole flag with its event."""
    rows = []
    for concurrency in concurrencies:
        fleet = CannedFleet(writes, 1)
        dynamodb, events, sqs = _clients(max(concurrency, 10) + 2)
        fleet.attach(dynamodb, events, sqs)
        store = RunnerStore(TABLE, client=dynamodb)
        store.flag_stale("i-00000000000000000-taskrunner", T0, T0, T0)  # warm: botocore builds its parsers once
        fleet.flagged[0] = fleet.pending[0] = 0
        fleet.harness_cpu = 0.0
        half = writes // 2
        started, cpu = time.perf_counter(), _cpu()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda i, s=store: s.flag_stale(f"i-{i:017x}-taskrunner", T0, T0, T0), range(half)))
        writes_wall, writes_cpu, harness = time.perf_counter() - started, _cpu() - cpu, fleet.harness_cpu
        orders = (
            FlagOrder(f"i-{i:017x}-taskrunner", T0 - 4000, THRESHOLD, T0, T0 - THRESHOLD) for i in range(half, writes)
        )
        publisher = StaleEventPublisher("default", events)
        started, cpu = time.perf_counter(), _cpu()
        outcome = carry_out(orders, [], store, publisher, Deadline.never(), concurrency=concurrency)
        flags_wall, flags_cpu = time.perf_counter() - started, _cpu() - cpu - (fleet.harness_cpu - harness)
        rows.append({
            "concurrency": concurrency,
            "writes_per_second": half / writes_wall, "cpu_ms_per_write": (writes_cpu - harness) / half * 1000,
            "flags_per_second": outcome.flagged / flags_wall, "cpu_ms_per_flag": flags_cpu / outcome.flagged * 1000,
            "events": fleet.events,
        })  # fmt: skip
    return rows


def mass(runners: int, dead_every: int, *, override_guard: bool, fan_out: bool, max_sweeps: int) -> dict[str, Any]:
    """Sweep a fleet on schedule until every dead runner is flagged and every event out; one row per invocation."""
    fleet = CannedFleet(runners, dead_every)
    dynamodb, events, sqs = _clients(max(FLAG_CONCURRENCY, 8) + 2)
    fleet.attach(dynamodb, events, sqs)
    store = RunnerStore(TABLE, client=dynamodb)
    publisher = StaleEventPublisher("default", events)
    queue = WorkQueue(QUEUE_URL, sqs) if fan_out else None
    config = Config(TABLE, stale_after_seconds=THRESHOLD, retention_seconds=RETENTION)
    invocations: list[dict[str, Any]] = []
    for n in range(max_sweeps):
        fleet.now = T0 + n * INTERVAL
        before, harness = Counter(fleet.requests), fleet.harness_cpu
        started, cpu = time.perf_counter(), _cpu()
        deadline = Deadline(LAMBDA_TIMEOUT - RESERVE_SECONDS, overrun=RESERVE_SECONDS)  # as in Lambda
        report = sweep(
            store, config, fleet.now, publisher, override_guard=override_guard, deadline=deadline, work_queue=queue
        )
        sweeper_row = {
            "kind": "sweep", "at": n * INTERVAL, "wall": time.perf_counter() - started,
            "cpu": _cpu() - cpu - (fleet.harness_cpu - harness), "flagged": report.flagged,
            "fanned_out": report.fanned_out, "messages": report.work_messages, "left": report.left,
            "events": report.events_published, "examined": report.examined, "stale": report.stale,
            "requests": dict(fleet.requests - before),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # so far: the sweeps' own
        }  # fmt: skip
        invocations.append(sweeper_row)
        workers = _drain(fleet, store, publisher)
        if workers:
            invocations.append({"kind": "workers", "at": n * INTERVAL, **workers})
        if fleet.left() == (0, 0):
            break
    dead_left, owed = fleet.left()
    return {
        "runners": runners, "dead": len(range(0, runners, dead_every)), "override_guard": override_guard,
        "fan_out": fan_out, "invocations": invocations, "requests": dict(fleet.requests), "events": fleet.events,
        "dead_left": dead_left, "events_owed": owed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def _drain(fleet: CannedFleet, store: RunnerStore, publisher: StaleEventPublisher) -> dict[str, Any] | None:
    """Run a worker invocation per queued message, one after another; their times, to be shared among WORKERS."""
    if not len(fleet.messages):
        return None
    walls, cpus, before, flagged = [], [], Counter(fleet.requests), sum(fleet.flagged)
    messages, fleet.messages = fleet.messages, Spool()
    for (body,) in messages:
        harness = fleet.harness_cpu
        started, cpu = time.perf_counter(), _cpu()
        with contextlib.suppress(WorkLeft):
            work(body, store, publisher, Deadline(WORKER_TIMEOUT - WORKER_RESERVE_SECONDS))
        metrics.clear_metrics()  # in Lambda each invocation flushes its own; here they would pile up on stdout
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu() - cpu - (fleet.harness_cpu - harness))
    messages.close()
    return {
        "count": len(walls), "wall": sum(walls), "cpu": sum(cpus), "longest": max(walls),
        "flagged": sum(fleet.flagged) - flagged, "requests": dict(fleet.requests - before),
    }  # fmt: skip


def timeline(
    runners: int,
    stale: int,
    *,
    scan_us: float,
    stale_us: float,
    flag_ms: float,
    by_lanes: bool = True,
    workers: int = WORKERS,
    lanes: int = LANES,
) -> int | None:
    """Seconds from a mass death to its last flag, in a model of the deployed loop fed with measured costs.

    A sweep every INTERVAL scans (runners x scan_us), then hands out orders (stale_us each) until
    its deadline, whole lanes in order; the workers take the queue first in, first out, at
    `workers` flags every flag_ms. by_lanes: a sweep finding the queue busy goes on from the first
    lane not handed out (as deployed); else it sends nothing until the queue is empty (as before
    lanes). A lane cut short by the deadline is sent again whole: the orders of it still queued
    are then repeats, which cost a worker as much as a flag (conservatively) and flag nobody.
    None: not done within six hours.
    """
    left = [stale // lanes + (1 if lane < stale % lanes else 0) for lane in range(lanes)]  # not flagged yet
    queue: deque[list[int]] = deque()  # [lane, orders, of which repeats], oldest first
    budget = LAMBDA_TIMEOUT - RESERVE_SECONDS
    per_second, cursor, sending, carry = workers / (flag_ms / 1000), 0, deque[list[int]](), 0.0
    for t in range(6 * 3600):
        if t % INTERVAL == 0:
            busy = bool(queue or sending)
            cursor = cursor if busy and by_lanes else 0
            if not busy or by_lanes:
                room = max(0.0, budget - runners * scan_us / 1e6) / (stale_us / 1e6)  # orders this sweep sends
                queued_by_lane = Counter[int]()
                for lane, orders, repeats in [*queue, *sending]:
                    queued_by_lane[lane] += orders - repeats
                at = t + runners * scan_us / 1e6  # the lanes reach the queue one after another, once sent
                while cursor < lanes and room > 0:
                    orders = min(left[cursor], int(room))
                    at += orders * stale_us / 1e6
                    sending.append([cursor, orders, min(orders, queued_by_lane[cursor]), int(at)])
                    room -= orders
                    if orders < left[cursor]:
                        break  # cut short: this lane again next time
                    cursor += 1
        while sending and sending[0][3] <= t:  # handed out: in the queue
            queue.append(sending.popleft()[:3])
        carry += per_second
        while queue and carry >= 1:
            lane, orders, repeats = queue[0]
            taken = min(orders, int(carry))
            carry -= taken
            flags = max(0, taken - repeats)
            left[lane] -= min(flags, left[lane])
            queue[0] = [lane, orders - taken, max(0, repeats - taken)]
            if queue[0][1] == 0:
                queue.popleft()
        if not queue:
            carry = 0.0  # idle workers bank no time
        if not any(left):
            return t + 1
    return None


def _run(row: list[str]) -> dict[str, Any]:
    """One row in a fresh interpreter (its own peak RSS)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.mass", *row], check=True, capture_output=True, text=True, env=os.environ
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def scale(quick: bool) -> dict[str, Any]:
    """Every mass-flag figure make bench reports."""
    runners = 4_000 if quick else 1_000_000
    figures = {
        "rtt_ms": RTT * 1000, "page_wait_ms": PAGE_WAIT_MS, "workers": WORKERS, "runners": runners,
        "rates": _run(["rates", "1,4,8,16,32" if not quick else "1,8", "600" if quick else "6000"]),
        "tenth_one_function": _run(["mass", str(runners), "10", "guarded", "inline"]),
        "tenth": _run(["mass", str(runners), "10", "guarded", "fan-out"]),
        "all_overridden": _run(["mass", str(runners), "1", "override", "fan-out"]),
    }  # fmt: skip
    figures["ten_million"] = extrapolate(figures)
    return figures


def costs(figures: dict[str, Any]) -> dict[str, float]:
    """The measured unit costs, from the first sweep of the two 1M rows and the all-dead row's workers.

    A sweep's CPU is runners x a + stale x b, so the 10%-dead and the all-dead rows give a (a
    runner scanned) and b (a stale runner spooled, judged and handed out).
    """
    n = figures["runners"]
    tenth = next(i for i in figures["tenth"]["invocations"] if i["kind"] == "sweep")["cpu"]
    every = next(i for i in figures["all_overridden"]["invocations"] if i["kind"] == "sweep")["cpu"]
    b = (every - tenth) / (0.9 * n)
    workers = totals(figures["all_overridden"])
    return {
        "scan_us": (tenth / n - 0.1 * b) * 1e6,
        "stale_us": b * 1e6,
        "flag_ms": workers["cpu_workers"] / figures["all_overridden"]["dead"] * 1000,
    }


def extrapolate(figures: dict[str, Any]) -> dict[str, Any] | None:
    """10M runners, from the measured unit costs through timeline(): as deployed, and as before lanes.

    None when the rows did not hand their flags to the workers (the quick run's fleets are too small).
    """
    sweeps = [
        next(i for i in figures[key]["invocations"] if i["kind"] == "sweep") for key in ("tenth", "all_overridden")
    ]
    if not all(sweep["fanned_out"] for sweep in sweeps):
        return None
    unit = costs(figures)
    rows: dict[str, Any] = {"unit": unit}
    for key, stale in (("tenth", 1_000_000), ("all", 10_000_000)):
        for by_lanes in (True, False):
            seconds = timeline(
                10_000_000, stale, scan_us=unit["scan_us"], stale_us=unit["stale_us"], flag_ms=unit["flag_ms"],
                by_lanes=by_lanes,
            )  # fmt: skip
            rows[f"{key}{'' if by_lanes else '_before_lanes'}"] = seconds
    return rows


def one_sweep(runners: int, dead_every: int) -> int:
    """One sweep of the fleet with its flags all handed to the workers (none written): its CPU, less the canned
    services', and its peak RSS. Run with every runner dead, then with one, it gives a sweep's cost per runner
    scanned and per stale runner handed out (docs/performance.md)."""
    import heartbeat.sweeper

    heartbeat.sweeper.INLINE_FLAGS_PER_SECOND = 0  # a deadline that never comes: hand everything out
    fleet = CannedFleet(runners, dead_every)
    dynamodb, events, sqs = _clients(FLAG_CONCURRENCY + 2)
    fleet.attach(dynamodb, events, sqs)
    store = RunnerStore(TABLE, client=dynamodb)
    config = Config(TABLE, stale_after_seconds=THRESHOLD, retention_seconds=RETENTION)
    started, cpu = time.perf_counter(), _cpu()
    report = sweep(
        store, config, T0, StaleEventPublisher("default", events), override_guard=True, deadline=Deadline(86_400),
        work_queue=WorkQueue(QUEUE_URL, sqs),
    )  # fmt: skip
    print(json.dumps({
        "runners": runners, "stale": report.stale, "fanned_out": report.fanned_out, "messages": report.work_messages,
        "cpu": _cpu() - cpu - fleet.harness_cpu, "wall": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip
    return 0


def main(argv: list[str]) -> int:
    import logging

    from heartbeat.observability import SERVICE

    # The sweeper's log lines (one per flag) are written, as in Lambda, but to nowhere: stdout carries the JSON.
    for handler in logging.getLogger(SERVICE).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the life of this process
    if argv[0] == "sweep-memory":  # one sweep's peak RSS, no workers: flat in the number of stale runners?
        fleet = CannedFleet(int(argv[1]), int(argv[2]))
        dynamodb, events, sqs = _clients(FLAG_CONCURRENCY + 2)
        fleet.attach(dynamodb, events, sqs)
        store = RunnerStore(TABLE, client=dynamodb)
        config = Config(TABLE, stale_after_seconds=THRESHOLD, retention_seconds=RETENTION)
        publisher, queue = StaleEventPublisher("default", events), WorkQueue(QUEUE_URL, sqs)
        tracemalloc.start()
        deadline = Deadline(LAMBDA_TIMEOUT - RESERVE_SECONDS, overrun=RESERVE_SECONDS)  # as in Lambda
        report = sweep(store, config, T0, publisher, override_guard=True, deadline=deadline, work_queue=queue)
        print(json.dumps({
            "stale": report.stale, "fanned_out": report.fanned_out, "flagged": report.flagged,
            "traced_peak_mb": tracemalloc.get_traced_memory()[1] / 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }))  # fmt: skip
        return 0
    if argv[0] == "one-sweep":  # one sweep's CPU with every flag handed to the workers: the unit costs a and b
        return one_sweep(int(argv[1]), int(argv[2]))
    if argv[0] == "rates":
        result: Any = rates([int(c) for c in argv[1].split(",")], int(argv[2]))
    else:
        runners, dead_every, guard, mode = int(argv[1]), int(argv[2]), argv[3], argv[4]
        result = mass(runners, dead_every, override_guard=guard == "override", fan_out=mode == "fan-out", max_sweeps=40)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


ROWS = (
    ("tenth_one_function", "10% dead, one function (no work queue)"),
    ("tenth", "10% dead, with the workers (as deployed)"),
    ("all_overridden", "100% dead, guard overridden, with the workers"),
)


def check_counts(result: dict[str, Any]) -> list[str]:
    """Every dead runner flagged with one write and one event, and nothing left owed: else a problem each."""
    problems = []
    for key, label in ROWS:
        row = result[key]
        writes = row["requests"].get("UpdateItem (flag)", 0)
        if (row["dead_left"], row["events_owed"], row["events"], writes) != (0, 0, row["dead"], row["dead"]):
            problems.append(
                f"mass flags, {label}: {row['dead_left']} dead left, {row['events_owed']} events owed, "
                f"{row['events']} events and {writes} flag writes for {row['dead']} dead runners"
            )
    return problems


def totals(row: dict[str, Any]) -> dict[str, Any]:
    """One row's totals, and its wall time in AWS: each sweep, then its workers' time shared among WORKERS."""
    sweeps = [i for i in row["invocations"] if i["kind"] == "sweep"]
    workers = [i for i in row["invocations"] if i["kind"] == "workers"]
    in_aws = sum(i["wall"] for i in sweeps) + sum(max(w["wall"] / WORKERS, w["longest"]) for w in workers)
    return {
        "sweeps": len(sweeps),
        "worker_invocations": sum(w["count"] for w in workers),
        "wall_here": sum(i["wall"] for i in row["invocations"]),
        "wall_in_aws": in_aws,
        "cpu_sweeps": sum(i["cpu"] for i in sweeps),
        "cpu_workers": sum(w["cpu"] for w in workers),
        "requests": sum(row["requests"].values()),
        "first_sweep_to_last_flag": sweeps[-1]["at"] if sweeps else 0,
    }


def print_section(result: dict[str, Any]) -> None:
    """The mass-flag part of make bench's table."""
    print(
        f"\n7. Mass flags: the real sweeper and workers; DynamoDB, EventBridge and SQS answered after"
        f" {result['rtt_ms']:.0f} ms (a 1 MB Scan page after {result['page_wait_ms']:.0f} ms),"
        f" {result['runners']:,} runners"
    )
    for row in result["rates"]:
        print(
            f"   {row['concurrency']:>2} writers: {row['writes_per_second']:6.0f} flag writes/s"
            f" ({row['cpu_ms_per_write']:.2f} ms CPU each), {row['flags_per_second']:5.0f} whole flags/s with"
            f" their events ({row['cpu_ms_per_flag']:.2f} ms CPU each)"
        )
    print(f"   {'row':<48} {'sweeps':>6} {'workers':>7} {'wall here':>10} {'wall in AWS':>11} {'CPU':>8}"
          f" {'requests':>9} {'peak RSS':>9}")  # fmt: skip
    for key, label in ROWS:
        row, t = result[key], totals(result[key])
        print(
            f"   {label:<48} {t['sweeps']:>6} {t['worker_invocations']:>7} {t['wall_here']:>9.0f}s"
            f" {t['wall_in_aws']:>10.0f}s {t['cpu_sweeps'] + t['cpu_workers']:>7.0f}s {t['requests']:>9,}"
            f" {row['peak_rss_mb']:>7.0f}MB"
        )

    ten = result.get("ten_million")
    if ten:
        unit = ten["unit"]

        def minutes(seconds: int | None) -> str:
            return "over 6 h" if seconds is None else f"{seconds / 60:.0f} min"

        print(
            f"   10M runners, extrapolated (bench.mass.timeline) from a = {unit['scan_us']:.1f} us a runner scanned,"
            f" b = {unit['stale_us']:.1f} us a stale runner, {unit['flag_ms']:.2f} ms a flag, {WORKERS} workers:"
        )
        print(
            f"     10% newly stale: {minutes(ten['tenth'])} to the last flag;"
            f" 100% stale, guard overridden: {minutes(ten['all'])}"
            f" (before lanes: {minutes(ten['tenth_before_lanes'])} and {minutes(ten['all_before_lanes'])})"
        )
