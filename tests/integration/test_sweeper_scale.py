"""The sweeper's parallel, streamed scan on moto: every stale runner flagged once, every item read once.

Scan requests and flag writes are counted as HTTP attempts at botocore's before-send, so a
retried or repeated request would show. Pages are kept small so every segment spans many.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from heartbeat.config import DEFAULT_RETENTION_SECONDS, DEFAULT_STALE_AFTER_SECONDS, Config
from heartbeat.model import HeartbeatRequest
from heartbeat.runners import Runner, Status
from heartbeat.store import RunnerStore, StoreError, SweepState
from heartbeat.store.items import RESERVED_KEY_START, to_item
from heartbeat.sweeper import sweep
from tests.conftest import TABLE

NOW = 1_795_521_600.0
THRESHOLD = DEFAULT_STALE_AFTER_SECONDS
RETENTION = DEFAULT_RETENTION_SECONDS
FLEET = 2000
SEGMENTS = 5
PAGE = 100  # runners per Scan page: four or five pages per segment
GROUPS = {"etl": 1800, "batch": None, "long": 5400}  # None: the default threshold
CONFIG = Config(
    TABLE,
    stale_after_seconds=THRESHOLD,
    retention_seconds=RETENTION,
    stale_after_by_worker_group={g: s for g, s in GROUPS.items() if s is not None},
)


def staggered_runner(i: int) -> Runner:
    """Runner i of a fleet in three worker groups, beating staggered, with one in eight dead.

    Live runners beat three times per threshold, so their last heartbeats spread over a third of
    their group's threshold (the guard sees them beating). One in eight died between one and two
    thresholds ago (stale), one in eight more within the threshold (silent, not yet stale).
    Multi-byte ids up to near DynamoDB's key limit now and then; every 50th is already flagged,
    every 70th is an expired record DynamoDB has not deleted yet, every 90th is being drained.
    """
    group = list(GROUPS)[i % 3]
    threshold = GROUPS[group] or THRESHOLD
    spread = i * 7919 % (threshold // 3)  # deterministic, spread, never exactly on a threshold
    if i % 8 == 0:
        last_seen = NOW - threshold - 3 * spread - 0.5
    elif i % 8 == 1:
        last_seen = NOW - threshold / 2 - spread - 0.5
    else:
        last_seen = NOW - spread - 0.5
    runner_id = f"runner-{i:05d}" + ("-\u00e9\u20ac\U0001f600" * 200 if i % 97 == 0 else "")
    status, stale_at = Status.ACTIVE.value, None
    if i % 50 == 0:
        status, stale_at = Status.STALE.value, last_seen + THRESHOLD
    elif i % 90 == 0:
        status = Status.TERMINATING.value
    expires = int(last_seen) + (RETENTION if i % 70 else -1)
    return Runner(runner_id, status, NOW - 86_400, last_seen, 96, expires, f"host-{i}", group, stale_at=stale_at)


def should_be_flagged(runner: Runner) -> bool:
    threshold = CONFIG.stale_after_for(runner.worker_group)
    live = runner.status == Status.ACTIVE.value and runner.expires_at > NOW
    return live and NOW - runner.last_seen > threshold


@pytest.fixture
def fleet(dynamodb: Any) -> list[Runner]:
    runners = [staggered_runner(i) for i in range(FLEET)]
    for start in range(0, FLEET, 25):
        batch = [{"PutRequest": {"Item": to_item(r)}} for r in runners[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={TABLE: batch})
    # The sweeper has been running on schedule: its watch began long ago.
    RunnerStore(TABLE, client=dynamodb).save_sweep_state(SweepState(NOW - 300, NOW - 86_400))
    return runners


@pytest.fixture
def store(dynamodb: Any) -> RunnerStore:
    store = RunnerStore(TABLE, client=dynamodb)
    store.scan_segments, store.scan_page_limit = SEGMENTS, PAGE
    return store


class Attempts:
    """Every DynamoDB HTTP attempt the client sends: Scan requests, and the runner each UpdateItem names."""

    def __init__(self, client: Any) -> None:
        self.scans: list[dict[str, Any]] = []
        self.updates: Counter[str] = Counter()
        self.scanned = 0
        self.lock = threading.Lock()
        client.meta.events.register("before-send.dynamodb", self._sent)
        client.meta.events.register("after-call.dynamodb.Scan", self._read)

    def _sent(self, request: Any, **_: Any) -> None:
        operation = request.headers["X-Amz-Target"].decode().split(".")[-1]
        body = json.loads(request.body)
        with self.lock:
            if operation == "Scan":
                self.scans.append(body)
            elif operation == "UpdateItem" and not body["Key"]["taskrunnerId"]["S"].startswith(RESERVED_KEY_START):
                self.updates[body["Key"]["taskrunnerId"]["S"]] += 1  # a runner's (not the sweep lease's)

    def _read(self, parsed: dict[str, Any], **_: Any) -> None:
        with self.lock:
            self.scanned += parsed["ScannedCount"]


def test_parallel_sweep_of_a_staggered_fleet_flags_every_stale_runner_exactly_once(
    dynamodb: Any, store: RunnerStore, fleet: list[Runner]
) -> None:
    expected = {r.taskrunner_id for r in fleet if should_be_flagged(r)}
    assert 150 < len(expected) < FLEET / 2  # a real mix, under the mass-staleness guard
    attempts = Attempts(dynamodb)
    report = sweep(store, CONFIG, NOW)
    assert report.held == []
    assert report.examined == sum(r.status == Status.ACTIVE.value and r.expires_at > NOW for r in fleet)
    assert set(attempts.updates) == expected  # none missed, no other runner touched
    assert set(attempts.updates.values()) == {1}  # none written twice
    assert report.flagged == report.stale == len(expected)
    stored = {r.taskrunner_id: r.status for r in store.runners()}
    assert {i for i, status in stored.items() if status == Status.STALE.value} == expected | {
        r.taskrunner_id for r in fleet if r.status == Status.STALE.value
    }
    assert sweep(store, CONFIG, NOW + 1).flagged == 0  # the next sweep finds them flagged already


def test_heartbeats_landing_during_the_scan_win_over_the_flag(
    dynamodb: Any, store: RunnerStore, fleet: list[Runner]
) -> None:
    stale = sorted(r.taskrunner_id for r in fleet if should_be_flagged(r))
    racers = set(stale[::10])  # spread over every segment
    heartbeats = RunnerStore(TABLE, client=boto3.client("dynamodb", region_name="us-east-1"))
    attempts = Attempts(dynamodb)
    landed_at: list[int] = []
    lock = threading.Lock()

    def beat_mid_scan(**_: Any) -> None:
        with lock:
            if len(attempts.scans) >= FLEET // PAGE // 2 and not landed_at:  # about half the scan read
                landed_at.append(len(attempts.scans))
                for runner_id in racers:
                    heartbeats.record_heartbeat(HeartbeatRequest(runner_id, None, None), NOW, RETENTION)

    dynamodb.meta.events.register("before-send.dynamodb.Scan", beat_mid_scan)
    report = sweep(store, CONFIG, NOW)
    assert landed_at
    assert len(attempts.scans) > landed_at[0] + SEGMENTS  # they landed mid-scan
    read_before = set(attempts.updates) & racers  # read stale, then beat: the conditional flag refused
    assert 0 < len(read_before) < len(racers)  # both cases: read before their heartbeat, and after
    assert report.flagged == len(stale) - len(racers)
    statuses = {r.taskrunner_id: r.status for r in store.runners()}
    assert all(statuses[r] == Status.ACTIVE.value for r in racers)
    assert all(statuses[r] == Status.STALE.value for r in set(stale) - racers)


def test_scan_reads_each_item_once_per_sweep(dynamodb: Any, store: RunnerStore, fleet: list[Runner]) -> None:
    attempts = Attempts(dynamodb)
    ids = [c.taskrunner_id for c in store.sweep_candidates(NOW)]
    items_in_table = FLEET + 1  # and the sweeper's own state
    assert attempts.scanned == items_in_table  # every item read once: no page twice, none skipped
    assert len(ids) == len(set(ids))
    assert {(scan["Segment"], scan["TotalSegments"]) for scan in attempts.scans} == {
        (s, SEGMENTS) for s in range(SEGMENTS)
    }
    starts = [(scan["Segment"], json.dumps(scan.get("ExclusiveStartKey"))) for scan in attempts.scans]
    assert len(starts) == len(set(starts))  # each page requested once
    assert len(attempts.scans) >= items_in_table // PAGE
    first = len(attempts.scans)
    attempts.scans.clear()
    attempts.scanned = 0
    assert len(list(store.sweep_candidates(NOW))) == len(ids)
    assert (len(attempts.scans), attempts.scanned) == (first, items_in_table)  # deterministic


def test_scan_passes_what_the_sweeper_needs_and_drops_the_rest_on_the_server(
    store: RunnerStore, fleet: list[Runner]
) -> None:
    owing = next(r for r in fleet if should_be_flagged(r))
    assert store.flag_stale(
        owing.taskrunner_id, last_seen_before=NOW, now=NOW, claim_until=NOW
    )  # its stale event is now owed
    candidates = {c.taskrunner_id: c for c in store.sweep_candidates(NOW)}
    wanted = {r.taskrunner_id for r in fleet if r.expires_at > NOW and r.status == Status.ACTIVE.value}
    # No expired record, no drained runner, no flagged one that owes nothing, not the sweeper's state.
    assert set(candidates) == wanted
    assert (candidates[owing.taskrunner_id].status, candidates[owing.taskrunner_id].event_pending) == ("stale", True)
    for runner in fleet:
        if runner.taskrunner_id in wanted and runner is not owing:
            candidate = candidates[runner.taskrunner_id]
            assert (candidate.status, candidate.last_seen, candidate.worker_group, candidate.hostname) == (
                runner.status,
                runner.last_seen,
                runner.worker_group,
                runner.hostname,
            )


def test_lean_parse_gives_what_botocore_gives(dynamodb: Any, store: RunnerStore) -> None:
    runners = [staggered_runner(i) for i in range(200)]  # every kind of record, multi-byte ids among them
    for start in range(0, len(runners), 25):
        batch = [{"PutRequest": {"Item": to_item(r)}} for r in runners[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={TABLE: batch})
    plain = boto3.client("dynamodb", region_name="us-east-1")  # no hook: botocore parses every value
    flagged = next(r for r in runners if should_be_flagged(r))
    assert store.flag_stale(
        flagged.taskrunner_id, last_seen_before=NOW, now=NOW, claim_until=NOW
    )  # staleAt, eventPending (BOOL)
    list(store.sweep_candidates(NOW))  # the store's client now parses Scan items with json alone
    lean = [page["Items"] for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE)]
    parsed = [page["Items"] for page in plain.get_paginator("scan").paginate(TableName=TABLE)]
    assert lean == parsed
    assert any("eventPending" in item for items in lean for item in items)


def test_scan_failure_mid_sweep_is_a_store_error_and_leaves_no_reader_behind(
    dynamodb: Any, store: RunnerStore, fleet: list[Runner]
) -> None:
    before = threading.active_count()
    sent = [0]

    def fail_the_ninth(**_: Any) -> None:
        sent[0] += 1
        if sent[0] == 9:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "injected"}}, "Scan")

    dynamodb.meta.events.register("before-send.dynamodb.Scan", fail_the_ninth)
    with pytest.raises(StoreError, match="scan failed: ValidationException"):
        sweep(store, CONFIG, NOW)
    assert threading.active_count() == before
    assert sent[0] >= 9


def test_reader_that_stops_early_stops_every_segment(store: RunnerStore, fleet: list[Runner]) -> None:
    before = threading.active_count()
    candidates = store.sweep_candidates(NOW)
    assert next(candidates) is not None
    candidates.close()  # as when the sweep fails while reading
    assert threading.active_count() == before
