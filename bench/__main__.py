"""make bench: one table, and bench/results.json, from measurements taken side by side in one run.

BENCH_QUICK=1 runs tiny sizes in seconds and checks the deterministic counts (requests and
write units per heartbeat), exiting non-zero if they drift; timings are reported, never asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from bench import sweeper
from bench.capacity import item_size, write_units
from heartbeat.config import Config
from heartbeat.handler import Dependencies, make_handler
from heartbeat.store import CLIENT_CONFIG, RunnerStore
from heartbeat.sweeper import sweep
from heartbeat_local.gateway import LocalLambdaContext, proxy_event
from heartbeat_local.process import LocalProcess, local_endpoint
from heartbeat_local.server import create_table

ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK") == "1"
TABLE = "bench"
KEYS: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
THRESHOLD = 2700
RETENTION = 7 * 24 * 3600
# A realistic runner: EC2-style ids and host names.
BEAT = {
    "taskrunnerId": "i-0a1b2c3d4e5f67890-taskrunner",
    "workerGroup": "etl-workers-prod",
    "hostname": "ip-10-20-31-42.eu-west-1.compute.internal",
}
TARGET = {"X-Amz-Target": "DataPipeline.ReportTaskRunnerHeartbeat", "Content-Type": "application/x-amz-json-1.1"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Calls:
    """Counts DynamoDB API calls by operation, as botocore makes them."""

    def __init__(self, client: Any) -> None:
        self.counts: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1

    @contextlib.contextmanager
    def measuring(self) -> Iterator[Counter[str]]:
        self.counts.clear()
        snapshot: Counter[str] = Counter()
        yield snapshot
        snapshot.update(self.counts)


# 1. Requests and write units per heartbeat


def requests_per_heartbeat() -> dict[str, Any]:
    """Each path a heartbeat can take, through the real handler, with its DynamoDB requests and write units."""
    with mock_aws():
        client = boto3.client("dynamodb", **KEYS)
        observer = boto3.client("dynamodb", **KEYS)  # reads items outside the count
        create_table(client, TABLE)
        calls = Calls(client)
        clock = [1_795_521_600.0]
        store = RunnerStore(TABLE, client=client)
        config = Config(TABLE, stale_after_seconds=THRESHOLD, retention_seconds=RETENTION)
        handler = make_handler(lambda: Dependencies(config, store, lambda: clock[0]))
        runner_key = {"taskrunnerId": {"S": BEAT["taskrunnerId"]}}

        def item() -> dict[str, Any] | None:
            found: dict[str, Any] | None = observer.get_item(TableName=TABLE, Key=runner_key, ConsistentRead=True).get(
                "Item"
            )
            return found

        def beat(name: str) -> dict[str, Any]:
            before = item()
            event = proxy_event("POST", "/", TARGET.items(), json.dumps(BEAT).encode())
            with contextlib.redirect_stdout(open(os.devnull, "w")), calls.measuring() as counted:
                result = handler(event, LocalLambdaContext())  # type: ignore[arg-type]
            after = item()
            return {
                "path": name,
                "requests": dict(counted),
                "write_units": write_units(before, after) * sum(counted.values()),
                "item_bytes": item_size(after or {}),
                "terminate": json.loads(result["body"])["terminate"],
            }

        rows = [beat("first heartbeat")]
        clock[0] += 900
        rows.append(beat("steady-state heartbeat"))
        sweep(store, config, clock[0])
        clock[0] += THRESHOLD + 1  # silent past the threshold, no sweep since
        rows.append(beat("stale heartbeat (silent, not yet flagged)"))
        for _ in range(int(THRESHOLD / 300) + 2):  # the sweeper runs on schedule while the runner is silent
            clock[0] += 300
            sweep(store, config, clock[0])
        rows.append(beat("terminate answer (flagged runner)"))
        clock[0] += RETENTION + 1
        rows.append(beat("record past its TTL (runs afresh)"))
        return {"paths": rows}


def check_counts(result: dict[str, Any]) -> list[str]:
    """The deterministic targets: 1 UpdateItem and 1 write unit on every common path."""
    problems = []
    for row in result["paths"]:
        expected = {"UpdateItem": 1, "PutItem": 1} if row["path"].startswith("record past") else {"UpdateItem": 1}
        if row["requests"] != expected:
            problems.append(f"{row['path']}: {row['requests']} requests, expected {expected}")
        if row["write_units"] != sum(expected.values()):
            problems.append(f"{row['path']}: {row['write_units']} write units, expected {sum(expected.values())}")
    return problems


# 2. Handler overhead


def handler_overhead(iterations: int) -> dict[str, Any]:
    """lambda_handler on a REST event with DynamoDB answered by Stubber, beside json.loads + one stubbed call.

    Both go through one client configured as the deployed store's (CLIENT_CONFIG).
    """
    client = boto3.client("dynamodb", config=CLIENT_CONFIG, **KEYS)
    attributes = {
        "taskrunnerId": {"S": BEAT["taskrunnerId"]}, "status": {"S": "active"},
        "firstSeen": {"N": "1795521600.000"}, "lastSeen": {"N": "1795522500.000"},
        "heartbeatCount": {"N": "42"}, "expiresAt": {"N": "1796127300"},
        "hostname": {"S": BEAT["hostname"]}, "workerGroup": {"S": BEAT["workerGroup"]},
    }  # fmt: skip
    store = RunnerStore(TABLE, client=client)
    handler = make_handler(lambda: Dependencies(Config(TABLE), store, time.time))
    body = json.dumps(BEAT).encode()
    events = [proxy_event("POST", "/", TARGET.items(), body) for _ in range(iterations)]

    def timed(call: Callable[[int], object]) -> list[float]:
        stubber = Stubber(client)
        for _ in range(iterations + 20):
            stubber.add_response("update_item", {"Attributes": attributes})
        samples = []
        with stubber, contextlib.redirect_stdout(open(os.devnull, "w")):
            for i in range(20):
                call(i % iterations)  # warm up
            for i in range(iterations):
                started = time.perf_counter()
                call(i)
                samples.append((time.perf_counter() - started) * 1000)
        return samples

    def bare(_: int) -> object:
        request = json.loads(body)
        return client.update_item(
            TableName=TABLE, Key={"taskrunnerId": {"S": request["taskrunnerId"]}},
            UpdateExpression="SET lastSeen = :now", ExpressionAttributeValues={":now": {"N": "1"}},
        )  # fmt: skip

    baseline = timed(bare)
    full = timed(lambda i: handler(events[i], LocalLambdaContext()))  # type: ignore[arg-type]
    return {
        "iterations": iterations,
        "handler_ms": {"p50": statistics.median(full), "p99": percentile(full, 0.99)},
        "bare_ms": {"p50": statistics.median(baseline), "p99": percentile(baseline, 0.99)},
        "added_ms_p50": statistics.median(full) - statistics.median(baseline),
        "ratio_p50": statistics.median(full) / statistics.median(baseline),
    }


# 3. Cold start


def import_time(module: str, env: dict[str, str], extra: dict[str, str] | None = None) -> float:
    code = f"import time,sys; t=time.perf_counter(); import {module}; sys.stdout.write(repr(time.perf_counter()-t))"
    result = subprocess.run(
        [sys.executable, "-c", code], env={**env, **(extra or {})}, capture_output=True, text=True, check=True,
        timeout=120,
    )  # fmt: skip
    return float(result.stdout) * 1000


def cold_start(runs: int) -> dict[str, Any]:
    """Fresh-interpreter import times, interleaved so that machine noise hits each alike."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))},
        "PYTHONPATH": str(ROOT / "lambda_src"),
        # As the stack deploys it: in Lambda, X-Ray SDK subsegments off (sdkTracing=false).
        "AWS_LAMBDA_FUNCTION_NAME": "heartbeat-api",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": TABLE,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    cases = {
        "boto3": ("boto3", {}),
        "heartbeat.handler": ("heartbeat.handler", {}),
        "heartbeat.sweeper": ("heartbeat.sweeper", {}),
        "heartbeat.handler, sdkTracing": ("heartbeat.handler", {"POWERTOOLS_TRACE_DISABLED": "false"}),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (module, extra) in cases.items():
            samples[name].append(import_time(module, env, extra))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    return {
        "runs": runs,
        "import_ms": medians,
        "handler_vs_boto3": medians["heartbeat.handler"] / medians["boto3"],
        "sweeper_vs_boto3": medians["heartbeat.sweeper"] / medians["boto3"],
        "handler_with_sdk_tracing_vs_boto3": medians["heartbeat.handler, sdkTracing"] / medians["boto3"],
    }


# 4. Sweeper scale: bench/sweeper.py


# 5. Local endpoint throughput


def _drive(kind: str, running: LocalProcess, client_number: int, calls: int) -> list[float]:
    """One client's latencies (ms): heartbeats through the endpoint, or bare UpdateItem on its store."""
    session = boto3.session.Session()
    if kind == "heartbeat":
        pipeline = session.client("datapipeline", endpoint_url=running.url, **KEYS)

        def call(i: int) -> object:
            return pipeline.report_task_runner_heartbeat(taskrunnerId=f"bench-{client_number}-{i % 50}")
    else:
        dynamodb = session.client("dynamodb", endpoint_url=running.dynamodb_url, **KEYS)

        def call(i: int) -> object:
            return dynamodb.update_item(
                TableName=running.table, Key={"taskrunnerId": {"S": f"bare-{client_number}-{i % 50}"}},
                UpdateExpression="SET lastSeen = :now", ExpressionAttributeValues={":now": {"N": "1"}},
            )  # fmt: skip

    call(0)  # connect, and warm the client
    latencies = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def endpoint_throughput(levels: list[int], per_level: int) -> dict[str, Any]:
    """Heartbeats through `make serve`'s endpoint with N concurrent boto3 clients, beside bare UpdateItem."""
    rows = []
    with local_endpoint(Path(tempfile.mkdtemp()), ACCESS_LOG="0") as running:
        for concurrency in levels:
            for kind in ("heartbeat", "bare UpdateItem"):
                results: list[list[float]] = [[] for _ in range(concurrency)]

                def client(
                    n: int, kind: str = kind, results: list[list[float]] = results, c: int = concurrency
                ) -> None:
                    results[n] = _drive(kind, running, n, per_level // c)

                threads = [threading.Thread(target=client, args=(n,)) for n in range(concurrency)]
                started = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                elapsed = time.perf_counter() - started
                latencies = [x for r in results for x in r]
                rows.append({
                    "clients": concurrency, "kind": kind, "requests": len(latencies),
                    "per_second": len(latencies) / elapsed,
                    "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99),
                })  # fmt: skip
    return {"levels": rows}


# The table


def print_table(results: dict[str, Any]) -> None:
    print(f"\nmake bench{' (quick)' if QUICK else ''}: {results['machine']}\n")
    print("1. DynamoDB requests per heartbeat (target: 1 request, 1 write unit)")
    for row in results["requests"]["paths"]:
        requests = ", ".join(f"{n} {op}" for op, n in row["requests"].items())
        print(f"   {row['path']:<44} {requests:<26} {row['write_units']} WU  item {row['item_bytes']} B"
              f"  terminate={row['terminate']}")  # fmt: skip
    h = results["handler"]
    print(f"\n2. Handler overhead ({h['iterations']} calls, DynamoDB stubbed; target: under 0.5 ms added)")
    print(f"   lambda_handler           p50 {h['handler_ms']['p50']:.3f} ms   p99 {h['handler_ms']['p99']:.3f} ms")
    print(f"   json.loads + update_item p50 {h['bare_ms']['p50']:.3f} ms   p99 {h['bare_ms']['p99']:.3f} ms")
    print(f"   added by the handler     p50 {h['added_ms_p50']:.3f} ms   ratio {h['ratio_p50']:.2f}x")
    c = results["cold_start"]
    print(f"\n3. Cold start: fresh-interpreter import, median of {c['runs']} (target: handler <= 1.5x boto3)")
    for module, ms in c["import_ms"].items():
        print(f"   import {module:<31} {ms:8.1f} ms")
    print(f"   handler / boto3 {c['handler_vs_boto3']:.2f}x   sweeper / boto3 {c['sweeper_vs_boto3']:.2f}x"
          f"   handler with sdkTracing / boto3 {c['handler_with_sdk_tracing_vs_boto3']:.2f}x")  # fmt: skip
    sweeper.print_section(results["sweeper"])
    print("\n5. Local endpoint (make serve) with N concurrent boto3 clients")
    for row in results["local_endpoint"]["levels"]:
        print(f"   {row['clients']:>2} clients  {row['kind']:<16} {row['per_second']:7.1f}/s"
              f"   p50 {row['p50_ms']:7.2f} ms   p99 {row['p99_ms']:7.2f} ms")  # fmt: skip


def main() -> int:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "quick": QUICK,
    }
    results["requests"] = requests_per_heartbeat()
    results["handler"] = handler_overhead(300 if QUICK else 5000)
    results["cold_start"] = cold_start(2 if QUICK else 9)
    results["sweeper"] = sweeper.scale(QUICK)
    results["local_endpoint"] = endpoint_throughput([1, 8, 32] if not QUICK else [1, 8], 40 if QUICK else 640)
    results["seconds"] = time.perf_counter() - started
    print_table(results)
    out = Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results.json"))
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nWrote {out} in {results['seconds']:.0f} s")
    problems = check_counts(results["requests"])
    for problem in problems:
        print(f"COUNT MISMATCH: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
