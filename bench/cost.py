"""The cost model: docs/cost.md, generated from bench/figures.json (measured) and bench/prices.py.

`make cost` (python -m bench.cost) writes the file; a test checks the committed file is what this
produces from the committed figures, so the doc cannot drift from the figures or the prices.
Assumptions that no bench here can measure are named in ASSUMPTIONS, each with its reason.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import prices as p
from heartbeat.observability import MetricName

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "bench" / "figures.json"
DOC = ROOT / "docs" / "cost.md"

FLEETS = (1_000, 100_000, 1_000_000, 10_000_000)
FRONT_DOORS = {
    "private": "Private REST API + VPC endpoint",
    "alb": "Internal ALB (Lambda target)",
    "regional": "Regional REST API",
}
SECONDS_A_MONTH = p.HOURS_A_MONTH * 3600
HEARTBEATS_A_RUNNER_A_MONTH = SECONDS_A_MONTH / 900  # every 15 minutes: 2,920
SWEEPS_A_MONTH = SECONDS_A_MONTH / 300  # the stack's default 5-minute interval: 8,760
ASSUMPTIONS = {
    "vpc_endpoint_azs": (3, "the private API's interface endpoint in three AZs (one per subnet of a typical VPC)"),
    "alb_azs_note": (0, "an ALB's hourly price does not depend on its AZs"),
    "bytes_per_heartbeat": (1500, "request (headers + body) + answer + TLS record overhead, for GB-priced lines"),
    "alb_connection_seconds": (60, "a client keeps its connection until the ALB's 60 s idle timeout closes it"),
    "lambda_memory_mb": (256, "the stack's handler memory"),
    "dynamodb_round_trip_ms": (5, "one in-region UpdateItem, not measurable here"),
    "lambda_vcpu_at_1769_mb": (1769, "Lambda gives a function CPU in proportion to memory: 1 vCPU at 1,769 MB"),
    "xray_reservoir_per_second": (1, "X-Ray's default rule: 1 request a second, then 5% of the rest"),
    "xray_rate": (0.05, "X-Ray's default rule's fixed rate"),
    "alarms": (10, "the stack's alarms"),
    "dashboards": (1, "the stack's dashboard"),
    "sweeper_log_bytes": (1200, "one EMF line and one summary line per sweep"),
}


def assumption(name: str) -> float:
    return float(ASSUMPTIONS[name][0])


def custom_metrics() -> int:
    """The metrics the code can publish, each once (one `service` dimension): a month of each, to err high."""
    return len([name for name in vars(MetricName) if name.isupper()])


def api_gateway_dollars(requests: float) -> float:
    """REST API request charges for a month, tier by tier."""
    dollars, left = 0.0, requests
    for size, per_million in p.API_GATEWAY_REST_TIERS:
        taken = min(left, size)
        dollars += taken / 1e6 * per_million
        left -= taken
        if left <= 0:
            break
    return dollars


def alb_lcus(rate: float) -> float:
    """LCUs an ALB bills at this request rate: the largest of its four dimensions (no rules past the default)."""
    new_connections = rate / p.LCU_NEW_CONNECTIONS_PER_SECOND  # each heartbeat opens a connection
    active = rate * assumption("alb_connection_seconds") / p.LCU_ACTIVE_CONNECTIONS
    processed = rate * assumption("bytes_per_heartbeat") * 3600 / 1e9 / p.LCU_LAMBDA_GB_PER_HOUR
    return max(new_connections, active, processed)


def traced(rate: float) -> float:
    """Traces a month under X-Ray's default sampling rule, at this request rate."""
    reservoir = assumption("xray_reservoir_per_second")
    per_second = min(rate, reservoir) + assumption("xray_rate") * max(rate - reservoir, 0.0)
    return per_second * SECONDS_A_MONTH


def handler_billed_ms(figures: dict[str, Any], front_door: str) -> float:
    """Lambda's billed milliseconds per heartbeat: the handler's measured CPU, scaled to its memory's CPU share,
    plus DynamoDB's round trip, rounded up to the millisecond as Lambda bills."""
    shape = "alb" if front_door == "alb" else "rest"
    cpu_share = assumption("lambda_memory_mb") / assumption("lambda_vcpu_at_1769_mb")
    ms = figures["handler_ms_p50"][shape] / cpu_share + assumption("dynamodb_round_trip_ms")
    return float(math.ceil(ms))


@dataclass(frozen=True)
class Line:
    part: str
    dollars: float
    how: str


def month(figures: dict[str, Any], front_door: str, runners: int) -> list[Line]:
    """Every line of a month's bill for this front door and fleet."""
    heartbeats = runners * HEARTBEATS_A_RUNNER_A_MONTH
    rate = heartbeats / SECONDS_A_MONTH
    gb_through = heartbeats * assumption("bytes_per_heartbeat") / 1e9
    lines = []
    if front_door in ("private", "regional"):
        lines.append(Line("API Gateway requests", api_gateway_dollars(heartbeats), "REST tiers"))
    if front_door == "private":
        azs = assumption("vpc_endpoint_azs")
        lines.append(Line("VPC endpoint hours", azs * p.HOURS_A_MONTH * p.VPC_ENDPOINT_AZ_HOUR, f"{azs:.0f} AZs"))
        lines.append(Line("VPC endpoint GB", gb_through * p.VPC_ENDPOINT_GB, f"{gb_through:,.1f} GB"))
    if front_door == "alb":
        lcus = alb_lcus(rate)
        lines.append(Line("ALB hours", p.HOURS_A_MONTH * p.ALB_HOUR, "730 h"))
        lines.append(Line("ALB LCUs", lcus * p.HOURS_A_MONTH * p.ALB_LCU_HOUR, f"{lcus:,.2f} LCU"))
    billed_ms = handler_billed_ms(figures, front_door)
    gb_seconds = heartbeats * billed_ms / 1000 * assumption("lambda_memory_mb") / 1024
    lines.append(Line("Lambda requests", heartbeats / 1e6 * p.LAMBDA_REQUEST_MILLION, "1 a heartbeat"))
    lines.append(Line("Lambda duration", gb_seconds * p.LAMBDA_GB_SECOND, f"{billed_ms:.0f} ms billed"))
    write_units = heartbeats * figures["write_units_per_heartbeat"]
    lines.append(Line("DynamoDB writes", write_units / 1e6 * p.DYNAMODB_WRITE_MILLION, "measured WRU"))
    sweeper = figures["sweeper"]
    reads = sweeper["read_units_per_100k"] * runners / 100_000 * SWEEPS_A_MONTH
    lines.append(Line("DynamoDB sweeper reads", reads / 1e6 * p.DYNAMODB_READ_MILLION, "measured RU"))
    table_gb = runners * (figures["item_bytes"] + p.DYNAMODB_ITEM_OVERHEAD_BYTES) / 1e9
    lines.append(
        Line(
            "DynamoDB storage + PITR",
            table_gb * (p.DYNAMODB_STORAGE_GB_MONTH + p.DYNAMODB_PITR_GB_MONTH),
            f"{table_gb:,.3f} GB",
        )
    )
    sweep_seconds = sweeper["seconds_per_100k"] * runners / 100_000
    sweeper_gb_seconds = SWEEPS_A_MONTH * sweep_seconds * sweeper["lambda_memory_mb"] / 1024
    lines.append(
        Line(
            "Sweeper Lambda",
            sweeper_gb_seconds * p.LAMBDA_GB_SECOND + SWEEPS_A_MONTH / 1e6 * p.LAMBDA_REQUEST_MILLION,
            f"{sweep_seconds:,.1f} s a sweep",
        )
    )
    log_shape = "alb" if front_door == "alb" else "rest"
    log_gb = (heartbeats * figures["log_bytes_per_heartbeat"][log_shape]) / 1e9
    log_gb += SWEEPS_A_MONTH * assumption("sweeper_log_bytes") / 1e9
    lines.append(Line("CloudWatch Logs", log_gb * p.LOGS_INGESTED_GB, f"{log_gb:,.2f} GB"))
    traces = traced(rate)
    lines.append(Line("X-Ray", traces / 1e6 * p.XRAY_TRACE_MILLION, f"{traces / max(heartbeats, 1):.0%} traced"))
    metrics, alarms, dashboards = custom_metrics(), assumption("alarms"), assumption("dashboards")
    lines.append(
        Line(
            "Metrics, alarms, dashboard",
            metrics * p.CUSTOM_METRIC_MONTH + alarms * p.ALARM_MONTH + dashboards * p.DASHBOARD_MONTH,
            f"{metrics} metrics, {alarms:.0f} alarms",
        )
    )
    return lines


def money(dollars: float) -> str:
    if dollars >= 100:
        return f"${dollars:,.0f}"
    return f"${dollars:,.2f}"


def render(figures: dict[str, Any]) -> str:
    """docs/cost.md, from the figures and the price table."""
    out: list[str] = []
    w: Callable[[str], None] = out.append
    w("# What it costs to run")
    w("")
    w("<!-- Generated by `make cost` (bench/cost.py) from bench/figures.json and bench/prices.py. Do not edit. -->")
    w("")
    w(f"AWS's published on-demand prices for {p.REGION}, as of {p.AS_OF}, free tiers left out;")
    w("a month is 730 hours, a runner beats every 15 minutes (2,920 heartbeats a month), the sweeper runs")
    w("every 5 minutes. Measured figures come from `make bench`, on " + figures["machine"] + ".")
    w("")
    w("## Choosing a front door")
    w("")
    w("$ a month, everything counted (the tables below break it down):")
    w("")
    w("| Front door | Private to the VPC | " + " | ".join(f"{n:,} runners" for n in FLEETS) + " |")
    w("|---|---|" + "---|" * len(FLEETS))
    private = {"private": "yes (VPC endpoint, resource policy)", "alb": "yes (internal, security groups)",
               "regional": "no (public endpoint, source-IP policy)"}  # fmt: skip
    totals = {door: {n: sum(line.dollars for line in month(figures, door, n)) for n in FLEETS} for door in FRONT_DOORS}
    for door, name in FRONT_DOORS.items():
        w(f"| {name} | {private[door]} | " + " | ".join(money(totals[door][n]) for n in FLEETS) + " |")
    w("")
    w("$ per million heartbeats, all in:")
    w("")
    w("| Front door | " + " | ".join(f"{n:,} runners" for n in FLEETS) + " |")
    w("|---|" + "---|" * len(FLEETS))
    for door, name in FRONT_DOORS.items():
        cells = [money(totals[door][n] / (n * HEARTBEATS_A_RUNNER_A_MONTH / 1e6)) for n in FLEETS]
        w(f"| {name} | " + " | ".join(cells) + " |")
    w("")
    w("The floor is one DynamoDB write ($0.625) plus one Lambda request ($0.20): $0.83 per million.")
    w("")
    for door, name in FRONT_DOORS.items():
        w(f"## {name}: every line, $ a month")
        w("")
        w("| Line | " + " | ".join(f"{n:,} runners" for n in FLEETS) + " | At 1M runners |")
        w("|---|" + "---|" * (len(FLEETS) + 1))
        months = {n: month(figures, door, n) for n in FLEETS}
        for i, line in enumerate(months[FLEETS[0]]):
            cells = [money(months[n][i].dollars) for n in FLEETS]
            w(f"| {line.part} | " + " | ".join(cells) + f" | {months[1_000_000][i].how} |")
        w("| **Total** | " + " | ".join(f"**{money(totals[door][n])}**" for n in FLEETS) + " | |")
        w("")
    _inputs(figures, w)
    return "\n".join(out) + "\n"


def _inputs(figures: dict[str, Any], w: Callable[[str], None]) -> None:
    w("## Measured inputs (bench/figures.json)")
    w("")
    w("| Input | Value |")
    w("|---|---|")
    w(f"| DynamoDB HTTP attempts per heartbeat | {figures['dynamodb_attempts_per_heartbeat']} |")
    w(f"| Write units per heartbeat | {figures['write_units_per_heartbeat']} (item {figures['item_bytes']} B) |")
    for shape in ("rest", "alb"):
        w(f"| Handler time per heartbeat, {shape.upper()} event, canned DynamoDB answer (p50) | "
          f"{figures['handler_ms_p50'][shape]:.2f} ms |")  # fmt: skip
    for shape in ("rest", "alb"):
        w(f"| Log bytes to CloudWatch per steady heartbeat, {shape.upper()} | "
          f"{figures['log_bytes_per_heartbeat'][shape]} B |")  # fmt: skip
    sweeper = figures["sweeper"]
    w(f"| Sweeper read units per 100k runners per sweep | {sweeper['read_units_per_100k']:,.1f} |")
    w(f"| Sweeper seconds per 100k runners per sweep | {sweeper['seconds_per_100k']:,.2f} ({sweeper['source']}) |")
    w(f"| Cold start, import + first request / boto3 + client + one UpdateItem | {figures['cold_start_ratio']:.2f}x |")
    w("")
    w("## Assumptions (not measurable here)")
    w("")
    w("| Assumption | Value | Why |")
    w("|---|---|---|")
    for name, (value, why) in ASSUMPTIONS.items():
        if name.endswith("_note"):
            continue
        w(f"| {name} | {value:g} | {why} |")
    w(f"| custom metrics | {custom_metrics()} | every metric the code can publish, billed a whole month |")
    w("| CloudWatch Logs bytes | +26 B an event | the per-event size CloudWatch Logs counts, to err high |")
    w("")
    w("Left out: CloudWatch Logs storage after ingestion, X-Ray trace retrieval, data transfer within the")
    w("region, and the ALB's access logs (off unless `-c albAccessLogBucket=...`; they go to S3, not")
    w("CloudWatch Logs: about 700 B a heartbeat before compression).")


def load_figures(path: Path = FIGURES) -> dict[str, Any]:
    figures: dict[str, Any] = json.loads(path.read_text())
    return figures


def main() -> int:
    DOC.write_text(render(load_figures()))
    print(f"Wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
