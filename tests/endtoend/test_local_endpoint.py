"""The local endpoint itself (what ``make serve`` runs): start-up, HTTP details, shutdown."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from heartbeat.runners import Runner
from heartbeat.store import RunnerStore
from heartbeat.store.items import to_item
from heartbeat_local.process import FAKE_AWS, ROOT, LocalProcess, local_endpoint
from heartbeat_ops.__main__ import main as ops_main

HEARTBEAT = {"X-Amz-Target": "DataPipeline.ReportTaskRunnerHeartbeat", "Content-Type": "application/x-amz-json-1.1"}


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("POST", "/", body=body, headers=headers)
    response = connection.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return result


def start_with(**settings: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, **FAKE_AWS, "PYTHONPATH": f"{ROOT / 'lambda_src'}{os.pathsep}{ROOT}", "PORT": "0",
        "DYNAMODB_PORT": "0", **settings,
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "heartbeat_local"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_bad_handler_setting_stops_start_up_naming_the_variable() -> None:
    result = start_with(STALE_AFTER_SECONDS="5", RETENTION_SECONDS="5")
    assert result.returncode == 2
    assert result.stderr == (
        "make serve: RETENTION_SECONDS (5) must exceed STALE_AFTER_SECONDS (5), "
        "or runners would expire before they could be flagged\n"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PORT": "99999"}, "make serve: PORT must be from 0 to 65535, got '99999'"),
        ({"PORT": "http"}, "make serve: PORT must be a whole number, got 'http'"),
        ({"WORKERS": "0"}, "make serve: WORKERS must be from 1 to 256, got '0'"),
        ({"SWEEP_INTERVAL_SECONDS": "-1"}, "make serve: SWEEP_INTERVAL_SECONDS must be at least 0, got '-1'"),
        ({"SWEEP_INTERVAL_SECONDS": "nan"}, "make serve: SWEEP_INTERVAL_SECONDS must be at least 0, got 'nan'"),
        ({"HOST": "no-such-host.invalid"},
         "make serve: HOST 'no-such-host.invalid' is not an address or a name this machine can resolve"),
    ],
)  # fmt: skip
def test_bad_serve_setting_ends_with_one_line_and_exit_2(settings: dict[str, str], message: str) -> None:
    result = start_with(**settings)
    assert (result.returncode, result.stderr, result.stdout) == (2, message + "\n", "")


def test_a_port_in_use_ends_with_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        result = start_with(PORT=str(taken.getsockname()[1]))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr


def test_the_stores_port_in_use_ends_with_one_line_naming_the_setting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = start_with(DYNAMODB_PORT=str(port))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"make serve: cannot listen on 127.0.0.1:{port} for the embedded store: Address already in use "
        "(set DYNAMODB_PORT to another port, or 0 for a free one)\n"
    )


def test_raw_http_answer_has_exactly_the_protocol_headers(tmp_path: Path) -> None:
    with local_endpoint(tmp_path) as running:
        status, headers, body = post(
            running.url,
            b'{"taskrunnerId":"raw-1"}',
            {"X-Amz-Target": "DataPipeline.ReportTaskRunnerHeartbeat", "Content-Type": "application/x-amz-json-1.1"},
        )
    assert (status, body) == (200, b'{"terminate":false}')
    # The protocol's headers, once each, and only HTTP's own beside them (no handler internals leak).
    assert set(headers) == {"Content-Type", "Date", "x-amzn-RequestId", "Content-Length", "Connection", "Server"}
    assert headers["Content-Type"] == "application/x-amz-json-1.1"


def test_body_over_64_kib_is_refused_with_413_and_nothing_stored(tmp_path: Path) -> None:
    with local_endpoint(tmp_path) as running:
        body = json.dumps({"taskrunnerId": "big", "pad": "x" * 70_000}).encode()
        status, headers, payload = post(running.url, body, {"X-Amz-Target": "DataPipeline.ReportTaskRunnerHeartbeat"})
        item = running.dynamodb().get_item(TableName=running.table, Key={"taskrunnerId": {"S": "big"}})
    assert (status, headers["x-amzn-ErrorType"]) == (413, "RequestEntityTooLargeException")
    assert json.loads(payload)["__type"] == "RequestEntityTooLargeException"
    assert "Item" not in item


def test_sigterm_stops_the_endpoint_cleanly(tmp_path: Path) -> None:
    with local_endpoint(tmp_path) as running:
        process = running.process
    assert process.returncode == 0
    assert "Stopping: in-flight requests finished" in running.output()
    assert_group_gone(process.pid)


def assert_group_gone(group: int) -> None:
    """No process of the endpoint's group (workers, store, sweeper) outlives it."""
    for _ in range(100):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    alive = subprocess.run(["ps", "-o", "pid,cmd", "-g", str(group)], capture_output=True, text=True, check=False)
    raise AssertionError(f"left behind:\n{alive.stdout}")


def test_ctrl_c_stops_every_process_of_the_endpoint(tmp_path: Path) -> None:
    with local_endpoint(tmp_path, WORKERS="3", SWEEP_INTERVAL_SECONDS="1") as running:
        assert post(running.url, b'{"taskrunnerId":"before-ctrl-c"}', HEARTBEAT)[0] == 200
        os.killpg(running.process.pid, signal.SIGINT)  # what the terminal does: the whole group
        assert running.process.wait(timeout=60) == 0
    assert_group_gone(running.process.pid)


def test_body_over_the_gateway_limit_is_refused_by_the_gateway_in_awsjson(tmp_path: Path) -> None:
    with local_endpoint(tmp_path) as running:
        parts = urlsplit(running.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.putrequest("POST", "/")
        connection.putheader("X-Amz-Target", "DataPipeline.ReportTaskRunnerHeartbeat")
        connection.putheader("Content-Length", str(11 * 1024 * 1024))  # over API Gateway's 10 MB, never sent
        connection.endheaders()
        response = connection.getresponse()
        body = json.loads(response.read())
        headers = dict(response.getheaders())
        connection.close()
    assert (response.status, body["__type"], headers["x-amzn-ErrorType"]) == (
        413, "RequestEntityTooLargeException", "RequestEntityTooLargeException",
    )  # fmt: skip
    assert headers["Date"]
    assert headers["x-amzn-RequestId"]


def read_events(running: LocalProcess) -> list[dict[str, Any]]:
    out, err = io.StringIO(), io.StringIO()
    assert ops_main(["events", "--endpoint-url", running.dynamodb_url, "--json"], out=out, err=err) == 0, err.getvalue()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def drain_stale_events(running: LocalProcess) -> list[dict[str, Any]]:
    """The stale events waiting in make serve's queue, read with a patient client.

    While a sweep writes a mass of flags, the embedded store (one request at a time) answers slower
    than heartbeat-ops' 1 s read timeout on a loaded machine; the events are the point here, not that.
    """
    import boto3

    from heartbeat_local.server import STALE_EVENTS_QUEUE

    sqs = boto3.client("sqs", endpoint_url=running.dynamodb_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    url = sqs.get_queue_url(QueueName=STALE_EVENTS_QUEUE)["QueueUrl"]
    events = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return events


def sweeps_after(running: LocalProcess, moment: float) -> bool:
    state = RunnerStore(running.table, client=running.dynamodb()).load_sweep_state()
    return state is not None and state.last_sweep_at > moment


def test_a_flagged_runners_stale_event_arrives_exactly_once(tmp_path: Path) -> None:
    settings = {"SWEEP_INTERVAL_SECONDS": "0.3", "STALE_AFTER_SECONDS": "2", "RETENTION_SECONDS": "600"}
    with local_endpoint(tmp_path, **settings) as running:
        assert post(running.url, b'{"taskrunnerId":"goes-silent","workerGroup":"wg"}', HEARTBEAT)[0] == 200
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 90  # a bound on waiting, not an assertion about speed
        while not events and time.monotonic() < deadline:
            events += read_events(running)
            time.sleep(0.2)
        # Several more sweeps complete after the flag: none may send the event again.
        for _ in range(3):
            moment = time.time()
            while not sweeps_after(running, moment) and time.monotonic() < deadline + 60:
                time.sleep(0.2)
        events += read_events(running)
        _, _, answer = post(running.url, b'{"taskrunnerId":"goes-silent"}', HEARTBEAT)
        output = running.output()
    assert [(e["source"], e["detail-type"], e["detail"]["taskrunnerId"]) for e in events] == [
        ("taskrunner.heartbeat", "Task Runner Stale", "goes-silent")
    ]
    assert events[0]["detail"]["workerGroup"] == "wg"
    assert json.loads(answer) == {"terminate": True}
    # The console: the thresholds in the banner, one readable line for the sweep that flagged, no JSON.
    assert "Stale after: 2 s without a heartbeat" in output
    assert "Sweeper: every 0.3 s; the guard holds a scope of 3 or more active runners while none" in output
    assert (
        "Sweep: flagged 1 runner stale: goes-silent (next heartbeat answers terminate: true); "
        "1 stale events published, 0 owed (read them: heartbeat-ops events)"
    ) in output
    assert "Sweep finished" not in output  # the sweeper's per-sweep log line stays quiet; only what it did shows
    assert not [line for line in output.splitlines() if line.startswith("{")]


def test_a_held_guard_reads_as_one_line_a_sweep_naming_the_way_out(tmp_path: Path) -> None:
    settings = {"SWEEP_INTERVAL_SECONDS": "0.3", "STALE_AFTER_SECONDS": "2", "RETENTION_SECONDS": "600"}
    with local_endpoint(tmp_path, **settings) as running:
        for runner in ("held-1", "held-2", "held-3"):  # the whole fleet goes silent at once: our outage, by its look
            assert post(running.url, json.dumps({"taskrunnerId": runner}).encode(), HEARTBEAT)[0] == 200
        deadline = time.monotonic() + 90  # a bound on waiting, not an assertion about speed
        while "; 3 runners past their threshold not flagged" not in running.output() and time.monotonic() < deadline:
            time.sleep(0.2)
        _, _, answer = post(running.url, b'{"taskrunnerId":"held-1"}', HEARTBEAT)
        output = running.output()
    assert json.loads(answer) == {"terminate": False}
    held = [line for line in output.splitlines() if "; 3 runners past their threshold not flagged" in line]
    assert held[0].startswith("Sweep: held the fleet: silent (")
    assert held[0].endswith(
        "; 3 runners past their threshold not flagged (if they are gone: heartbeat-ops runners sweep --override-guard)"
    )
    assert "flagged 1 runner" not in output
    assert not [line for line in output.splitlines() if line.startswith("{")]


def fill(running: LocalProcess, count: int) -> None:
    """count runners in three worker groups, as their first heartbeats would leave them in make serve's store."""
    from heartbeat.model import HeartbeatRequest

    store = RunnerStore(running.table, client=running.dynamodb())
    now = time.time()
    for i in range(count):
        store.record_heartbeat(HeartbeatRequest(f"runner-{i:05}", f"group-{i % 3}", f"host-{i}"), now, 600)


def heartbeat_ops(running: LocalProcess, command: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it, in a shell, against this make serve's store, named as its banner says."""
    env = {**os.environ, **FAKE_AWS, "PYTHONPATH": f"{ROOT / 'lambda_src'}{os.pathsep}{ROOT}"}
    hint = next(line for line in running.output().splitlines() if ".venv/bin/heartbeat-ops runners list" in line)
    where = hint.split("runners list", 1)[1].strip()
    assert where == f"--endpoint-url {running.dynamodb_url}"  # a store on another port than 8081 is named
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command.replace("{where}", where)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_heartbeat_ops_scans_a_thousand_runners_on_make_serve_and_stops_quietly_when_its_reader_goes(
    tmp_path: Path,
) -> None:
    with local_endpoint(tmp_path, SWEEP_INTERVAL_SECONDS="3600") as running:  # its first sweep records the rules
        fill(running, 1200)  # ~100 KB of table: more than a pipe and Python's buffer hold
        ops = f"{sys.executable} -m heartbeat_ops"
        piped = heartbeat_ops(running, f"{ops} runners list {{where}} | head -1")
        status = heartbeat_ops(running, f"{ops} status --json {{where}}")
        swept = heartbeat_ops(running, f"{ops} runners sweep {{where}}")
    # The reader went away after one line: no traceback, the status a shell tool killed by SIGPIPE gives.
    assert (piped.returncode, piped.stderr) == (141, "")
    assert piped.stdout.split() == ["ID", "WORKER", "GROUP", "HOSTNAME", "LAST", "SEEN", "STATUS", "BEATS"]
    assert (status.returncode, status.stderr) == (0, "")
    assert json.loads(status.stdout)["fleet"]["byStatus"]["active"] == 1200
    assert json.loads(status.stdout)["fleet"]["byWorkerGroup"]["group-2"]["active"] == 400
    assert json.loads(status.stdout)["sweeper"]["lastSweepAt"]
    assert (swept.returncode, swept.stderr) == (0, ""), swept.stdout
    assert "Examined 1200 active runners: 0 silent" in swept.stdout


def test_a_mass_death_under_a_one_second_budget_is_flagged_over_several_sweeps_one_event_each(
    tmp_path: Path,
) -> None:
    # 400 runners die at once. The guard is off (MASS_STALE_FRACTION=1): with nobody left beating it would
    # rightly hold them; here the point is the budget. Each sweep stops starting flags after 1 s, saves its
    # state, and the next one goes on from what is still active and stale.
    dead = [f"dead-{i:03d}" for i in range(400)]
    settings = {
        "SWEEP_INTERVAL_SECONDS": "1.5", "SWEEP_BUDGET_SECONDS": "1", "STALE_AFTER_SECONDS": "60",
        "RETENTION_SECONDS": "600", "MASS_STALE_FRACTION": "1", "ACCESS_LOG": "0",
    }  # fmt: skip
    with local_endpoint(tmp_path, **settings) as running:
        long_ago = time.time() - 3600
        client = running.dynamodb()
        for start in range(0, len(dead), 25):
            client.batch_write_item(RequestItems={running.table: [
                {"PutRequest": {"Item": to_item(Runner(runner, "active", long_ago, long_ago, 4, int(long_ago) + 7200,
                                                       f"{runner}.internal", "etl"))}}
                for runner in dead[start : start + 25]
            ]})  # fmt: skip
        store = RunnerStore(running.table, client=client)
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 300  # a bound on waiting, not an assertion about speed
        while time.monotonic() < deadline:
            events += drain_stale_events(running)
            if len(events) >= len(dead) and all(r.status == "stale" for r in store.runners()):
                break
            time.sleep(0.5)
        # Two more sweeps complete: none may send an event again.
        for _ in range(2):
            moment = time.time()
            while not sweeps_after(running, moment) and time.monotonic() < deadline + 60:
                time.sleep(0.2)
        events += drain_stale_events(running)
        output = running.output()
    assert Counter(e["detail"]["taskrunnerId"] for e in events) == dict.fromkeys(dead, 1)
    assert len({e["detail"]["eventId"] for e in events}) == len(dead)
    flagged_per_sweep = [int(n) for n in re.findall(r"Sweep: flagged (\d+) runners? stale", output)]
    assert sum(flagged_per_sweep) == len(dead)
    assert len([n for n in flagged_per_sweep if n]) >= 2  # the budget cut the work over several sweeps
    assert "left for the next sweep (its deadline passed)" in output
