"""make bench: one table, and bench/results.json, from measurements taken side by side in one run.

BENCH_QUICK=1 runs tiny sizes in seconds and checks the deterministic counts (requests and
write units per heartbeat), exiting non-zero if they drift; timings are reported, never asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from bench import auth, mass, sweeper, wire
from bench.canned import RUNNER_ATTRIBUTES, Attempts, CannedDynamoDB, canned_endpoint
from bench.capacity import item_size, write_units
from bench.logbytes import log_bytes
from heartbeat.clients import CLIENT_CONFIG
from heartbeat.config import (
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_STALE_AFTER_SECONDS,
    DEFAULT_SWEEP_INTERVAL_SECONDS,
    Config,
)
from heartbeat.handler import Dependencies, make_handler
from heartbeat.store import RunnerStore
from heartbeat.sweeper import sweep
from heartbeat_local.gateway import LocalLambdaContext, proxy_event
from heartbeat_local.process import LocalProcess, local_endpoint
from heartbeat_local.server import create_table
from tests.support import heartbeat_event

ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK") == "1"
TABLE = "bench"
KEYS: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
THRESHOLD = DEFAULT_STALE_AFTER_SECONDS
RETENTION = DEFAULT_RETENTION_SECONDS
SWEEP_INTERVAL = DEFAULT_SWEEP_INTERVAL_SECONDS
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


# DynamoDB requests are counted as HTTP attempts (botocore's before-send), so a retry counts.
Calls = Attempts


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
        for _ in range(int(THRESHOLD / SWEEP_INTERVAL) + 2):  # the sweeper runs on schedule while the runner is silent
            clock[0] += SWEEP_INTERVAL
            sweep(store, config, clock[0])
        rows.append(beat("terminate answer (flagged runner)"))
        clock[0] += RETENTION + 1
        rows.append(beat("record past its TTL (runs afresh)"))
    return {"paths": rows, "retried": retried_heartbeat()}


def retried_heartbeat() -> dict[str, Any]:
    """A heartbeat whose first UpdateItem is throttled: one API call, two HTTP attempts, one answer."""
    client = boto3.client("dynamodb", config=CLIENT_CONFIG, **KEYS)
    CannedDynamoDB(client, throttle_first=1)
    attempts = Attempts(client)
    api_calls: Counter[str] = Counter()
    client.meta.events.register("before-call.dynamodb", lambda model, **_: api_calls.update([model.name]))
    store = RunnerStore(TABLE, client=client)
    handler = make_handler(lambda: Dependencies(Config(TABLE), store, time.time))
    event = proxy_event("POST", "/", TARGET.items(), json.dumps(BEAT).encode())
    with contextlib.redirect_stdout(open(os.devnull, "w")), attempts.measuring() as counted:
        result = handler(event, LocalLambdaContext())  # type: ignore[arg-type]
    return {"api_calls": dict(api_calls), "attempts": dict(counted), "status": result["statusCode"]}


def check_counts(result: dict[str, Any]) -> list[str]:
    """The deterministic targets: 1 UpdateItem and 1 write unit on every common path; retries counted."""
    problems = []
    retried = result["retried"]
    if (retried["api_calls"], retried["attempts"], retried["status"]) != ({"UpdateItem": 1}, {"UpdateItem": 2}, 200):
        problems.append(f"throttled-once heartbeat: {retried}, expected 1 call, 2 attempts, 200")
    for row in result["paths"]:
        expected = {"UpdateItem": 1, "PutItem": 1} if row["path"].startswith("record past") else {"UpdateItem": 1}
        if row["requests"] != expected:
            problems.append(f"{row['path']}: {row['requests']} requests, expected {expected}")
        if row["write_units"] != sum(expected.values()):
            problems.append(f"{row['path']}: {row['write_units']} write units, expected {sum(expected.values())}")
    return problems


# 2. Handler overhead


def handler_overhead(iterations: int) -> dict[str, Any]:
    """lambda_handler on a REST and an ALB event beside json.loads + one UpdateItem, DynamoDB answered two ways.

    Stubber answers before the request is built (no serializing, signing or parsing); the canned
    HTTP answer comes at before-send, so the request is signed and the answer parsed as in Lambda.
    Every side uses one client configured as the deployed store's (CLIENT_CONFIG).
    """
    body = json.dumps(BEAT).encode()
    events = {
        "rest": [proxy_event("POST", "/", TARGET.items(), body) for _ in range(iterations)],
        "alb": [heartbeat_event(body, shape="alb") for _ in range(iterations)],
    }

    def timed(answering: str, call: Callable[[Any, int], object]) -> list[float]:
        client = boto3.client("dynamodb", config=CLIENT_CONFIG, **KEYS)
        stubber = Stubber(client)
        if answering == "stubber":
            for _ in range(iterations + 20):
                stubber.add_response("update_item", {"Attributes": RUNNER_ATTRIBUTES})
            stubber.activate()
        else:
            CannedDynamoDB(client)
        samples = []
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            for i in range(20):
                call(client, i % iterations)  # warm up
            for i in range(iterations):
                started = time.perf_counter()
                call(client, i)
                samples.append((time.perf_counter() - started) * 1000)
        return samples

    def bare(client: Any, _: int) -> object:
        request = json.loads(body)
        return client.update_item(
            TableName=TABLE, Key={"taskrunnerId": {"S": request["taskrunnerId"]}},
            UpdateExpression="SET lastSeen = :now", ExpressionAttributeValues={":now": {"N": "1"}},
        )  # fmt: skip

    def through_handler(shape: str) -> Callable[[Any, int], object]:
        handlers: dict[int, Any] = {}

        def call(client: Any, i: int) -> object:
            handler = handlers.get(id(client))
            if handler is None:
                store = RunnerStore(TABLE, client=client)
                handler = handlers[id(client)] = make_handler(lambda: Dependencies(Config(TABLE), store, time.time))
            return handler(events[shape][i], LocalLambdaContext())  # type: ignore[arg-type]

        return call

    rows: dict[str, Any] = {"iterations": iterations}
    for answering in ("stubber", "canned_http"):
        baseline = timed(answering, bare)
        row: dict[str, Any] = {"bare_ms": {"p50": statistics.median(baseline), "p99": percentile(baseline, 0.99)}}
        for shape in ("rest", "alb"):
            full = timed(answering, through_handler(shape))
            row[f"handler_{shape}_ms"] = {"p50": statistics.median(full), "p99": percentile(full, 0.99)}
            row[f"added_{shape}_ms_p50"] = statistics.median(full) - statistics.median(baseline)
        rows[answering] = row
    return rows


# 3. Cold start

_HANDLER_COLD = """
import json, sys, time, uuid
event = json.loads(sys.argv[1])
class Context:
    function_name = "heartbeat-api"; function_version = "$LATEST"; memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:heartbeat-api"
    aws_request_id = str(uuid.uuid4())
started = time.perf_counter()
import heartbeat.handler
imported = time.perf_counter()
result = heartbeat.handler.lambda_handler(event, Context())
done = time.perf_counter()
assert result["statusCode"] == 200, result
sys.stdout.write(json.dumps([(imported - started) * 1000, (done - started) * 1000]))
"""
_BARE_COLD = """
import json, sys, time
started = time.perf_counter()
import boto3
imported = time.perf_counter()
client = boto3.client("dynamodb")
client.update_item(
    TableName="bench", Key={"taskrunnerId": {"S": "i-0a1b2c3d4e5f67890-taskrunner"}},
    UpdateExpression="SET lastSeen = :now", ExpressionAttributeValues={":now": {"N": "1"}}, ReturnValues="ALL_NEW",
)
done = time.perf_counter()
sys.stdout.write(json.dumps([(imported - started) * 1000, (done - started) * 1000]))
"""


def _fresh(code: str, env: dict[str, str], *args: str) -> list[float]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    times: list[float] = json.loads(result.stdout.splitlines()[-1])
    return times


def _instructions(code: str, env: dict[str, str], *args: str) -> int:
    """Instructions executed by one fresh interpreter running code, counted by callgrind: the same on every run
    (hash seed fixed), whatever else the machine is doing."""
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", code, *args],
            env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True, check=True, timeout=1800,
        )  # fmt: skip
        lines = out.read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith(("summary:", "totals:")))


def cold_start(runs: int, count_instructions: bool) -> dict[str, Any]:
    """Import + first request in a fresh interpreter, beside import boto3 + client + one UpdateItem.

    Both send their request over a loopback socket to an endpoint answering a canned UpdateItem
    response, so connecting, signing and parsing are in both. Wall clock: the median of interleaved
    runs, so machine noise hits each alike, and noisy all the same on a shared machine. Instructions
    (callgrind, when valgrind is installed): one run of each, deterministic.
    """
    with canned_endpoint() as url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))},
            "PYTHONPATH": str(ROOT / "lambda_src"),
            # As the stack deploys it: in Lambda, X-Ray SDK subsegments off (sdkTracing=false).
            "AWS_LAMBDA_FUNCTION_NAME": "heartbeat-api",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL_DYNAMODB": url,
            "TABLE_NAME": TABLE,
            "POWERTOOLS_TRACE_DISABLED": "true",
            # The canned endpoint answers UpdateItem only. With sigv4 the first heartbeat would also read its key
            # and open its secret (section 7 counts those); the auth modules' imports are measured either way.
            "AUTH_MODE": "none",
        }
        event = json.dumps(proxy_event("POST", "/", TARGET.items(), json.dumps(BEAT).encode()))
        samples: dict[str, list[list[float]]] = {"handler": [], "bare": []}
        for _ in range(runs):
            samples["handler"].append(_fresh(_HANDLER_COLD, env, event))
            samples["bare"].append(_fresh(_BARE_COLD, env))
        instructions: dict[str, Any] = {"counted": False, "why_not": "quick run" if not count_instructions else ""}
        if count_instructions and shutil.which("valgrind") is None:
            instructions["why_not"] = "valgrind is not installed"
        elif count_instructions:
            handler, bare = _instructions(_HANDLER_COLD, env, event), _instructions(_BARE_COLD, env)
            instructions = {"counted": True, "handler": handler, "bare": bare, "ratio": handler / bare}
    median = {
        f"{name}_{part}_ms": statistics.median(run[index] for run in runs_)
        for name, runs_ in samples.items()
        for index, part in enumerate(("import", "first_request"))
    }
    return {
        "runs": runs,
        **median,
        "ratio": median["handler_first_request_ms"] / median["bare_first_request_ms"],
        "import_ratio": median["handler_import_ms"] / median["bare_import_ms"],
        "instructions": instructions,
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


# 7. Bytes on the wire per heartbeat: bench/wire.py


def wire_bytes() -> dict[str, Any]:
    """One heartbeat on a new TLS connection, through a TLS front to make serve's endpoint, counted both ways."""
    with local_endpoint(Path(tempfile.mkdtemp()), ACCESS_LOG="0") as running:
        return wire.heartbeat_bytes(running.url)


# The table


def print_table(results: dict[str, Any]) -> None:
    print(f"\nmake bench{' (quick)' if QUICK else ''}: {results['machine']}\n")
    print("1. DynamoDB requests per heartbeat (target: 1 request, 1 write unit)")
    for row in results["requests"]["paths"]:
        requests = ", ".join(f"{n} {op}" for op, n in row["requests"].items())
        print(f"   {row['path']:<44} {requests:<26} {row['write_units']} WU  item {row['item_bytes']} B"
              f"  terminate={row['terminate']}")  # fmt: skip
    h = results["handler"]
    print(f"\n2. Handler overhead ({h['iterations']} calls a side; target: under 0.5 ms added)")
    for answering, label in (("stubber", "DynamoDB stubbed (Stubber)"), ("canned_http", "canned HTTP answer")):
        row = h[answering]
        print(f"   {label}:")
        print(f"     json.loads + update_item  p50 {row['bare_ms']['p50']:.3f} ms   p99 {row['bare_ms']['p99']:.3f} ms")
        for shape in ("rest", "alb"):
            ms = row[f"handler_{shape}_ms"]
            print(f"     lambda_handler, {shape:<4} event p50 {ms['p50']:.3f} ms   p99 {ms['p99']:.3f} ms"
                  f"   added p50 {row[f'added_{shape}_ms_p50']:.3f} ms")  # fmt: skip
    c = results["cold_start"]
    print(f"\n3. Cold start: fresh interpreter, import + first request (target: <= {COLD_START_TARGET}x)")
    counted = c["instructions"]
    if counted["counted"]:
        print(f"   instructions (callgrind)  heartbeat.handler + first heartbeat {counted['handler']:,}"
              f"   boto3 + client + one UpdateItem {counted['bare']:,}   ratio {counted['ratio']:.3f}x")  # fmt: skip
    else:
        print(f"   instructions: not counted ({counted['why_not']})")
    print(f"   wall clock, median of {c['runs']}:  heartbeat.handler + first heartbeat"
          f" {c['handler_first_request_ms']:.1f} ms (import {c['handler_import_ms']:.1f} ms)"
          f"   boto3 + client + one UpdateItem {c['bare_first_request_ms']:.1f} ms"
          f" (import {c['bare_import_ms']:.1f} ms)")  # fmt: skip
    print(f"   ratio {c['ratio']:.2f}x   (imports alone {c['import_ratio']:.2f}x)")
    r = results["requests"]["retried"]
    print(f"\n   Retries counted: a heartbeat throttled once = {r['api_calls']} API calls, {r['attempts']} attempts")
    sweeper.print_section(results["sweeper"])
    logs = results["log_bytes"]
    print("\n6. Log bytes per heartbeat (real handler runs; platform lines at the stack's system level WARN: none)")
    for row in logs["paths"]:
        print(f"   {row['front_door']:<4} {row['path']:<36} app {row['application_bytes']:>4} B"
              f"  EMF {row['emf_bytes']:>4} B  access log {row['access_log_bytes']:>4} B"
              f" to {row['access_log_to']}")  # fmt: skip
    for shape, row in logs["per_heartbeat"].items():
        print(f"   steady {shape:<4}: {row['cloudwatch_bytes']} B to CloudWatch Logs in {row['cloudwatch_events']}"
              f" events, {row['billed_bytes']} B with {logs['event_overhead_bytes']} B an event"
              " (target: <= 250 B)")  # fmt: skip
    print(f"   at system log level INFO Lambda would add {logs['platform_at_info_bytes']} a heartbeat")
    w = results["wire"]
    beat = w["per_heartbeat"]
    print("\n7. Bytes per heartbeat on a new TLS connection (a runner beating every 15 min behind an HTTPS listener)")
    print(f"   on the wire {beat['wire']:,} B ({beat['wire_up']:,} up, {beat['wire_down']:,} down; certificate chain"
          f" {w['certificate_chain_bytes']:,} B), of which HTTP {beat['http']:,} B ({beat['http_up']:,} up,"
          f" {beat['http_down']:,} down); TCP/IP headers not counted;"
          f" {', '.join(w['tls_versions'])}, {w['openssl']}")  # fmt: skip
    auth.print_section(results["auth"])
    print("\n5. Local endpoint (make serve) with N concurrent boto3 clients")
    for row in results["local_endpoint"]["levels"]:
        print(f"   {row['clients']:>2} clients  {row['kind']:<16} {row['per_second']:7.1f}/s"
              f"   p50 {row['p50_ms']:7.2f} ms   p99 {row['p99_ms']:7.2f} ms")  # fmt: skip
    if "sweeper_mass" in results:
        mass.print_section(results["sweeper_mass"])


LOG_BYTES_TARGET = 250
COLD_START_TARGET = 1.2


def check_log_bytes(result: dict[str, Any]) -> list[str]:
    """A steady heartbeat writes nothing from Lambda, and at most LOG_BYTES_TARGET bytes in all."""
    problems = []
    for shape, row in result["per_heartbeat"].items():
        if row["emf"] or row["application"]:
            problems.append(f"steady {shape} heartbeat: Lambda wrote {row['emf']} B EMF, {row['application']} B log")
        if row["billed_bytes"] > LOG_BYTES_TARGET:
            problems.append(f"steady {shape} heartbeat: {row['billed_bytes']} B of logs, target {LOG_BYTES_TARGET}")
    return problems


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """The measured figures the cost model reads (bench/cost.py), from one run."""
    # The sweeper's scale bench (time and read units per 100k runners) when it is there, else the fleet table.
    scale = next(
        (results[key] for key in ("sweeper", "sweeper_scale") if "read_units_per_100k" in results.get(key, {})),
        results["sweeper"],
    )
    if "read_units_per_100k" not in scale:  # the fleet table: read units and moto's seconds at 100k
        [row] = [r for r in scale["fleets"] if r["runners"] == max(f["runners"] for f in scale["fleets"])]
        scale = {
            "read_units_per_100k": row["read_units"] * 100_000 / row["runners"],
            "seconds_per_100k": row["seconds_in_moto"] * 100_000 / row["runners"],
            "source": "moto sweep (includes moto's own time: an upper bound)",
        }
    steady = next(r for r in results["requests"]["paths"] if r["path"] == "steady-state heartbeat")
    canned = results["handler"]["canned_http"]
    return {
        "machine": results["machine"],
        "quick": results["quick"],
        "write_units_per_heartbeat": steady["write_units"],
        "dynamodb_attempts_per_heartbeat": sum(steady["requests"].values()),
        "item_bytes": steady["item_bytes"],
        "wire_bytes_per_heartbeat": results["wire"]["per_heartbeat"]["wire"],
        "wire_bytes_up_per_heartbeat": results["wire"]["per_heartbeat"]["wire_up"],
        "http_bytes_per_heartbeat": results["wire"]["per_heartbeat"]["http"],
        "handler_ms_p50": {shape: canned[f"handler_{shape}_ms"]["p50"] for shape in ("rest", "alb")},
        # What verifying a signature adds to a steady heartbeat (AUTH_MODE=sigv4, the deployed default).
        "auth_added_ms_p50": {shape: results["auth"]["handler"][shape]["added_p50_ms"] for shape in ("rest", "alb")},
        "cold_start": {
            "instructions_ratio": results["cold_start"]["instructions"].get("ratio"),
            "wall_clock_ratio": results["cold_start"]["ratio"],
        },
        "log_bytes_per_heartbeat": {
            shape: row["billed_bytes"] for shape, row in results["log_bytes"]["per_heartbeat"].items()
        },
        "sweeper": {
            "read_units_per_100k": scale["read_units_per_100k"],
            "seconds_per_100k": scale["seconds_per_100k"],
            "lambda_memory_mb": scale.get("assumptions", {}).get("lambda_memory_mb", 512),
            "source": scale.get("source", "bench sweeper scale"),
        },
    }


def main() -> int:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "quick": QUICK,
    }
    results["requests"] = requests_per_heartbeat()
    results["handler"] = handler_overhead(300 if QUICK else 5000)
    results["cold_start"] = cold_start(2 if QUICK else 9, count_instructions=not QUICK)
    results["log_bytes"] = log_bytes()
    results["sweeper"] = sweeper.scale(QUICK)
    results["wire"] = wire_bytes()
    results["auth"] = {"requests": auth.requests_per_heartbeat(), "handler": auth.handler_time(300 if QUICK else 5000)}
    results["local_endpoint"] = endpoint_throughput([1, 8, 32] if not QUICK else [1, 8], 40 if QUICK else 640)
    results["sweeper_mass"] = mass.scale(QUICK)
    results["seconds"] = time.perf_counter() - started
    print_table(results)
    out = Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results.json"))
    out.write_text(json.dumps(results, indent=2) + "\n")
    figures_out = Path(os.environ.get("BENCH_FIGURES", ROOT / "bench" / "figures.json"))
    figures_out.write_text(json.dumps(figures(results), indent=2) + "\n")
    print(f"\nWrote {out} and {figures_out} in {results['seconds']:.0f} s")
    problems = check_counts(results["requests"]) + check_log_bytes(results["log_bytes"])
    problems += auth.check(results["auth"]["requests"])
    problems += mass.check_counts(results["sweeper_mass"])
    for problem in problems:
        print(f"COUNT MISMATCH: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
