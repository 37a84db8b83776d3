"""Load and concurrency on the local endpoint (what `make serve` runs), over real sockets.

The full load of 20,000 heartbeats runs in `make soak` (LOAD_HEARTBEATS=20000); make test
runs the same test with fewer, since moto's expression parser bounds the local endpoint
at a few dozen heartbeats a second on a 2-core machine.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from heartbeat_local.process import LocalProcess, local_endpoint

TARGET = {"X-Amz-Target": "DataPipeline.ReportTaskRunnerHeartbeat", "Content-Type": "application/x-amz-json-1.1"}
LOAD_HEARTBEATS = int(os.environ.get("LOAD_HEARTBEATS", "2000"))
LOAD_RUNNERS = 1000
LOAD_CLIENTS = 16


SERVE_SETTINGS = {"ACCESS_LOG": "0"}  # make serve's environment for the endpoint fixture (conftest.py)


def connect(url: str, timeout: float = 30) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def heartbeat(connection: http.client.HTTPConnection, runner_id: str) -> tuple[int, dict[str, object]]:
    connection.request("POST", "/", body=json.dumps({"taskrunnerId": runner_id}), headers=TARGET)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def count_of(endpoint: LocalProcess, runner_id: str) -> int:
    item = endpoint.dynamodb().get_item(TableName=endpoint.table, Key={"taskrunnerId": {"S": runner_id}})["Item"]
    return int(item["heartbeatCount"]["N"])


def test_concurrent_clients_lose_no_heartbeat_and_see_no_error(endpoint: LocalProcess) -> None:
    sent: Counter[str] = Counter()
    failures: list[object] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        connection = connect(endpoint.url)
        for i in range(number, LOAD_HEARTBEATS, LOAD_CLIENTS):
            runner_id = f"load-{i % LOAD_RUNNERS:04d}"
            try:
                status, body = heartbeat(connection, runner_id)
            except OSError as error:
                status, body = 0, {"error": repr(error)}
            with lock:
                sent[runner_id] += 1
                if (status, body) != (200, {"terminate": False}):
                    failures.append((runner_id, status, body))
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(LOAD_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(sent.values()) == LOAD_HEARTBEATS
    counts = {runner_id: count_of(endpoint, runner_id) for runner_id in sent}
    assert counts == dict(sent)


def test_no_metrics_blob_reaches_the_output_however_many_heartbeats(endpoint: LocalProcess) -> None:
    connection = connect(endpoint.url)
    for i in range(250):  # Powertools prints a kept metric set once a metric holds 100 values
        assert heartbeat(connection, f"quiet-{i % 5}")[0] == 200
    connection.close()
    assert '"CloudWatchMetrics"' not in endpoint.output()


def test_concurrent_heartbeats_for_one_runner_count_exactly_and_last_seen_never_goes_back(
    endpoint: LocalProcess,
) -> None:
    clients, each = 8, 25
    observed: list[float] = []
    done = threading.Event()

    def watch() -> None:
        dynamodb = endpoint.dynamodb()
        while not done.is_set():
            item = dynamodb.get_item(TableName=endpoint.table, Key={"taskrunnerId": {"S": "hot"}}).get("Item")
            if item:
                observed.append(float(item["lastSeen"]["N"]))

    def client() -> None:
        connection = connect(endpoint.url)
        for _ in range(each):
            assert heartbeat(connection, "hot")[0] == 200
        connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert count_of(endpoint, "hot") == clients * each
    assert len(observed) > 1
    assert observed == sorted(observed)


def test_slow_and_half_open_clients_do_not_stall_the_others(endpoint: LocalProcess) -> None:
    parts = urlsplit(endpoint.url)
    stalled = []
    for partial in (b"POST / HTTP/1.1\r\nHost: x\r\n", b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{", b""):
        sock = socket.create_connection((parts.hostname, parts.port))
        sock.sendall(partial)  # then say nothing more
        stalled.append(sock)
    try:
        # Well under the server's 10 s socket timeout: a server that waited on the stalled ones would fail this.
        connection = connect(endpoint.url, timeout=5)
        for i in range(20):
            assert heartbeat(connection, f"beside-stalled-{i}") == (200, {"terminate": False})
        connection.close()
    finally:
        for sock in stalled:
            sock.close()


def test_sigterm_finishes_the_in_flight_request_before_exiting(tmp_path: Path) -> None:
    with local_endpoint(tmp_path) as running:
        parts = urlsplit(running.url)
        body = json.dumps({"taskrunnerId": "in-flight"}).encode()
        sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        head = (
            "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: DataPipeline.ReportTaskRunnerHeartbeat\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:5])  # the request is in flight: headers sent, body still coming
        time.sleep(0.5)  # let the server read the headers; the request counts as in flight from then
        running.process.send_signal(signal.SIGTERM)
        sock.sendall(body[5:])
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 200
        assert json.loads(response.read()) == {"terminate": False}
        sock.close()
        assert running.process.wait(timeout=30) == 0


MIXED_CLIENTS = 16
MIXED_EACH = 24


def test_mixed_valid_and_invalid_concurrent_requests_each_get_their_own_answer(tmp_path: Path) -> None:
    """16 clients at once, a third of their requests invalid, with thread switches forced in every server process.

    Each answer must be its request's own: a unique request id, the status and __type that request
    deserves, the message naming what only that request sent, and the exact count per runner stored.
    """
    ids: list[str] = []
    wrong: list[object] = []
    sent: Counter[str] = Counter()
    lock = threading.Lock()

    def client(n: int) -> None:
        connection = connect(running.url)
        for i in range(MIXED_EACH):
            runner_id, kind = f"mixed-{n}-{i % 3}", i % 6
            headers, path = dict(TARGET), "/"
            body = json.dumps({"taskrunnerId": runner_id, "hostname": f"host-{n}-{i}"})
            if kind == 1:  # an empty id: the handler's validation error
                body = json.dumps({"taskrunnerId": "", "hostname": f"host-{n}-{i}"})
            elif kind == 3:  # an operation only this request names
                headers["X-Amz-Target"] = f"DataPipeline.Nothing{n}x{i}"
            elif kind == 5:  # a path only this request names
                path = f"/nowhere-{n}-{i}"
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            request_id = response.getheader("x-amzn-RequestId") or ""
            if kind in (0, 2, 4):
                expected_ok = response.status == 200 and answer == {"terminate": False}
            elif kind == 1:
                expected_ok = response.status == 400 and answer["__type"] == "InvalidRequestException"
            elif kind == 3:
                expected_ok = response.status == 400 and f"Nothing{n}x{i}'" in answer.get("message", "")
            else:
                expected_ok = response.status == 404 and f"/nowhere-{n}-{i}" in answer.get("message", "")
            with lock:
                ids.append(request_id)
                if kind in (0, 2, 4):
                    sent[runner_id] += 1
                if not expected_ok:
                    wrong.append((n, i, kind, response.status, answer))
        connection.close()

    with local_endpoint(tmp_path, ACCESS_LOG="0", WORKERS="3", SWITCH_INTERVAL="0.000001") as running:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(MIXED_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = {runner_id: count_of(running, runner_id) for runner_id in sent}
    assert wrong == []
    assert len(ids) == MIXED_CLIENTS * MIXED_EACH
    assert "" not in ids
    assert len(set(ids)) == len(ids)
    assert counts == dict(sent)


def test_sigterm_finishes_every_in_flight_request_before_exiting(tmp_path: Path) -> None:
    with local_endpoint(tmp_path, WORKERS="2") as running:
        parts = urlsplit(running.url)
        sockets = []
        for n in range(6):  # more in flight than environments: some wait for theirs
            body = json.dumps({"taskrunnerId": f"draining-{n}"}).encode()
            sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
            head = (
                "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: DataPipeline.ReportTaskRunnerHeartbeat\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body[:5])
            sockets.append((sock, body))
        time.sleep(1)  # let the workers accept them; not a timing assertion, the answers are
        running.process.send_signal(signal.SIGTERM)
        answers = []
        for sock, body in sockets:
            sock.sendall(body[5:])
            response = http.client.HTTPResponse(sock)
            response.begin()
            answers.append((response.status, json.loads(response.read())))
            sock.close()
        assert running.process.wait(timeout=60) == 0
    assert answers == [(200, {"terminate": False})] * 6
