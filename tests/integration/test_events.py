"""Stale events on moto's EventBridge (a rule forwards them to an SQS queue we read back), and per-group thresholds."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from heartbeat.config import DEFAULT_RETENTION_SECONDS, DEFAULT_STALE_AFTER_SECONDS, Config
from heartbeat.events import DETAIL_TYPE, SOURCE, StaleEventPublisher, iso
from heartbeat.flagging import Deadline
from heartbeat.model import HeartbeatRequest
from heartbeat.plan import SweepState
from heartbeat.store import RunnerStore
from heartbeat.sweeper import sweep
from heartbeat_local.server import create_table

NOW = 1_795_521_600.0
TABLE = "events"
RETENTION = DEFAULT_RETENTION_SECONDS
REGION = {"region_name": "us-east-1"}


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", **REGION)
        create_table(dynamodb, TABLE)
        sqs = boto3.client("sqs", **REGION)
        queue_url = sqs.create_queue(QueueName="stale-runners")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", **REGION)
        events.put_rule(Name="stale", EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}))
        events.put_targets(Rule="stale", Targets=[{"Id": "queue", "Arn": queue_arn}])
        store = RunnerStore(TABLE, client=dynamodb)
        store.save_sweep_state(SweepState(last_sweep_at=NOW - 300, watching_since=NOW - 86_400))
        yield {"store": store, "events": events, "sqs": sqs, "queue": queue_url}


# These tests are about the events; a fleet this small and this silent would trip the guard (test_sweeper.py).
EVENTS_ONLY = Config(TABLE, mass_stale_fraction=1)


def received(aws: dict[str, Any]) -> list[dict[str, Any]]:
    messages = []
    while batch := aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            messages.append(json.loads(message["Body"]))
            aws["sqs"].delete_message(QueueUrl=aws["queue"], ReceiptHandle=message["ReceiptHandle"])
    return messages


def beat(store: RunnerStore, runner_id: str, when: float, group: str = "etl") -> None:
    store.record_heartbeat(HeartbeatRequest(runner_id, group, f"{runner_id}.internal"), when, RETENTION)


class Flaky:
    """An EventBridge client whose first PutEvents refuses chosen entries (as PutEvents can, entry by entry)."""

    def __init__(self, real: Any, refuse: int) -> None:
        self.real = real
        self.refuse = refuse
        self.calls = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - botocore's name
        self.calls += 1
        if self.calls > 1 or not self.refuse:
            return self.real.put_events(Entries=Entries)  # type: ignore[no-any-return]
        accepted = self.real.put_events(Entries=Entries[self.refuse :])["Entries"]
        refused = [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}] * self.refuse
        return {"FailedEntryCount": self.refuse, "Entries": refused + accepted}


def test_one_event_per_flagged_runner_with_the_documented_shape(aws: dict[str, Any]) -> None:
    store = aws["store"]
    beat(store, "silent", NOW - 3000)
    beat(store, "live", NOW - 60)
    report = sweep(store, Config(TABLE), NOW, StaleEventPublisher("default", aws["events"]))
    assert (report.flagged, report.events_published, report.events_owed) == (1, 1, 0)
    [event] = received(aws)
    assert (event["source"], event["detail-type"]) == ("taskrunner.heartbeat", "Task Runner Stale")
    assert event["detail"] == {
        "eventId": "silent@2026-11-24T12:00:00.000Z",
        "taskrunnerId": "silent",
        "hostname": "silent.internal",
        "workerGroup": "etl",
        "lastSeen": "2026-11-24T11:10:00.000Z",
        "staleAt": "2026-11-24T12:00:00.000Z",
        "staleAfterSeconds": DEFAULT_STALE_AFTER_SECONDS,
    }
    assert store.get_runner("silent").event_pending is False  # type: ignore[union-attr]
    assert sweep(store, Config(TABLE), NOW + 300, StaleEventPublisher("default", aws["events"])).events_published == 0
    assert received(aws) == []  # no repeat on the next sweep


def test_more_than_ten_flags_go_out_in_batches_of_ten(aws: dict[str, Any]) -> None:
    store = aws["store"]
    for i in range(23):
        beat(store, f"gone-{i:02d}", NOW - 3000)
    for i in range(30):
        beat(store, f"live-{i:02d}", NOW - 60)
    report = sweep(store, Config(TABLE), NOW, StaleEventPublisher("default", aws["events"]))
    assert (report.flagged, report.events_published) == (23, 23)
    assert sorted(e["detail"]["taskrunnerId"] for e in received(aws)) == [f"gone-{i:02d}" for i in range(23)]


def test_entries_putevents_refuses_are_retried_and_none_is_lost(aws: dict[str, Any]) -> None:
    store = aws["store"]
    for i in range(5):
        beat(store, f"gone-{i}", NOW - 3000)
    flaky = Flaky(aws["events"], refuse=2)
    report = sweep(store, EVENTS_ONLY, NOW, StaleEventPublisher("default", flaky, sleep=lambda _: None))  # type: ignore[arg-type]
    assert (report.events_published, report.events_owed, flaky.calls) == (5, 0, 2)
    assert Counter(e["detail"]["taskrunnerId"] for e in received(aws)) == {f"gone-{i}": 1 for i in range(5)}


class Down:
    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        raise RuntimeError("the sweeper died here")


def test_a_sweeper_killed_between_flag_and_event_leaves_the_event_to_the_next_run(aws: dict[str, Any]) -> None:
    store = aws["store"]
    for i in range(3):
        beat(store, f"gone-{i}", NOW - 3000)
    with pytest.raises(RuntimeError):
        # As in Lambda, its claims on the events last until its invocation's end (here 90 s), when it is killed.
        sweep(store, EVENTS_ONLY, NOW, StaleEventPublisher("default", Down()), deadline=Deadline(60, overrun=30))  # type: ignore[arg-type]
    assert all(store.get_runner(f"gone-{i}").status == "stale" for i in range(3))  # type: ignore[union-attr]
    assert received(aws) == []
    report = sweep(store, EVENTS_ONLY, NOW + 300, StaleEventPublisher("default", aws["events"]))
    assert (report.flagged, report.events_published, report.events_owed) == (0, 3, 0)
    events = received(aws)
    assert Counter(e["detail"]["taskrunnerId"] for e in events) == {f"gone-{i}": 1 for i in range(3)}
    assert {e["detail"]["staleAt"] for e in events} == {"2026-11-24T12:00:00.000Z"}  # the flag's time, not the retry's


def test_eventbridge_down_for_a_whole_sweep_keeps_the_debt(aws: dict[str, Any]) -> None:
    store = aws["store"]
    beat(store, "gone", NOW - 3000)

    class Refusing:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
            return {"FailedEntryCount": len(Entries), "Entries": [{"ErrorCode": "ThrottlingException"}] * len(Entries)}

    report = sweep(store, Config(TABLE), NOW, StaleEventPublisher("default", Refusing(), sleep=lambda _: None))  # type: ignore[arg-type]
    assert (report.flagged, report.events_published, report.events_owed) == (1, 0, 1)
    assert store.get_runner("gone").event_pending is True  # type: ignore[union-attr]
    report = sweep(store, Config(TABLE), NOW + 300, StaleEventPublisher("default", aws["events"]))
    assert (report.events_published, report.events_owed) == (1, 0)
    assert [e["detail"]["taskrunnerId"] for e in received(aws)] == ["gone"]


def test_the_event_of_a_runner_keyed_by_digest_shows_its_real_id(aws: dict[str, Any]) -> None:
    store = aws["store"]
    long_id = "中" * 683  # 2,049 bytes
    beat(store, long_id, NOW - 3000)
    assert sweep(store, Config(TABLE), NOW, StaleEventPublisher("default", aws["events"])).flagged == 1
    [event] = received(aws)
    assert event["detail"]["taskrunnerId"] == long_id
    assert event["detail"]["eventId"] == f"{long_id}@2026-11-24T12:00:00.000Z"
    assert store.get_runner(long_id).event_pending is False  # type: ignore[union-attr]


class Recording:
    """An EventBridge client that keeps the detail of every entry sent to it, then refuses them all or dies."""

    def __init__(self, crash: bool) -> None:
        self.crash = crash
        self.sent: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.sent += [json.loads(entry["Detail"]) for entry in Entries]
        if self.crash:
            raise RuntimeError("the sweeper died here")
        return {"FailedEntryCount": len(Entries), "Entries": [{"ErrorCode": "InternalFailure"}] * len(Entries)}


@pytest.mark.parametrize("crash", [False, True], ids=["refused", "crashed"])
def test_a_republished_stale_event_keeps_its_event_id(aws: dict[str, Any], crash: bool) -> None:
    store = aws["store"]
    flagged_at = NOW + 0.0007  # not a whole second: truncating it and rounding it to the millisecond differ
    beat(store, "gone", NOW - 3000)
    first = Recording(crash)
    with pytest.raises(RuntimeError) if crash else contextlib.nullcontext():
        sweep(store, Config(TABLE), flagged_at, StaleEventPublisher("default", first, sleep=lambda _: None),  # type: ignore[arg-type]
              deadline=Deadline(60, overrun=30))  # fmt: skip
    assert store.get_runner("gone").event_pending is True  # type: ignore[union-attr]
    report = sweep(store, Config(TABLE), flagged_at + 300, StaleEventPublisher("default", aws["events"]))
    assert report.events_published == 1
    [event] = received(aws)
    assert {detail["eventId"] for detail in first.sent} == {event["detail"]["eventId"]}
    assert event["detail"]["eventId"] == "gone@2026-11-24T12:00:00.001Z"
    assert event["detail"]["staleAt"] == first.sent[0]["staleAt"] == "2026-11-24T12:00:00.001Z"


@given(st.floats(min_value=0, max_value=4_102_444_800))  # to 2100
def test_a_time_and_its_stored_copy_read_the_same(epoch: float) -> None:
    assert iso(epoch) == iso(float(f"{epoch:.3f}"))  # the store keeps f"{t:.3f}"


def test_reset_clears_an_owed_event(aws: dict[str, Any]) -> None:
    store = aws["store"]
    beat(store, "gone", NOW - 3000)
    sweep(store, Config(TABLE), NOW, None)  # flagged, event owed
    store.reset("gone", now=NOW)  # the operator repaired it, and it beats again
    beat(store, "gone", NOW + 1)
    assert sweep(store, Config(TABLE), NOW + 2, StaleEventPublisher("default", aws["events"])).events_published == 0
    assert received(aws) == []


def test_worker_group_threshold_overrides_the_default(aws: dict[str, Any]) -> None:
    store = aws["store"]
    config = Config(TABLE, stale_after_by_worker_group={"fast": 600})
    beat(store, "fast-silent", NOW - 700, "fast")
    beat(store, "slow-silent", NOW - 700, "etl")
    beat(store, "fast-live", NOW - 200, "fast")
    report = sweep(store, config, NOW, StaleEventPublisher("default", aws["events"]))
    assert report.flagged == 1
    [event] = received(aws)
    assert (event["detail"]["taskrunnerId"], event["detail"]["staleAfterSeconds"]) == ("fast-silent", 600)
    assert store.get_runner("slow-silent").status == "active"  # type: ignore[union-attr]


def test_guard_holds_back_a_worker_group_with_its_own_threshold_and_flags_the_others(aws: dict[str, Any]) -> None:
    store = aws["store"]
    config = Config(TABLE, stale_after_by_worker_group={"rack-7": 600})  # judged on its own
    # Group "rack-7" all silent since NOW - 700, and nobody in the fleet heard since shortly after: our outage,
    # seen first by the group with the shortest threshold. Held.
    for i in range(10):
        beat(store, f"rack7-{i}", NOW - 700 - i, "rack-7")
    for i in range(20):  # group "etl": judged with the fleet, 1 of 20 silent past its threshold (before the outage)
        beat(store, f"etl-{i}", NOW - 3000 if i == 0 else NOW - 500 - i, "etl")
    report = sweep(store, config, NOW, StaleEventPublisher("default", aws["events"]))
    assert (report.held, report.flagged) == (["rack-7"], 1)
    assert [e["detail"]["taskrunnerId"] for e in received(aws)] == ["etl-0"]


def test_a_worker_group_with_its_own_threshold_gone_whole_is_flagged_once_the_fleet_is_heard_after_it(
    aws: dict[str, Any],
) -> None:
    store = aws["store"]
    config = Config(TABLE, stale_after_by_worker_group={"rack-7": 600})
    for i in range(10):  # rack-7 decommissioned at once, with no retire
        beat(store, f"rack7-{i}", NOW - 700 - i, "rack-7")
    for i in range(20):  # the rest of the fleet beats on: the path works
        beat(store, f"etl-{i}", NOW - 60 - i, "etl")
    report = sweep(store, config, NOW, StaleEventPublisher("default", aws["events"]))
    assert (report.held, report.partial, report.flagged) == ([], ["rack-7"], 10)


def test_group_thresholds_are_read_from_the_environment() -> None:
    config = Config.from_env({"TABLE_NAME": "t", "STALE_AFTER_BY_WORKER_GROUP": '{"fast": 600, "slow": 7200}'})
    assert config.stale_after_by_worker_group == {"fast": 600, "slow": 7200}


def entry_size(entry: dict[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge counts it (Time 14 bytes, the strings in UTF-8)."""
    strings = [entry["Source"], entry["DetailType"], entry.get("Detail", ""), *entry.get("Resources", [])]
    return (14 if "Time" in entry else 0) + sum(len(s.encode("utf-8")) for s in strings)


def test_a_batch_of_the_longest_valid_runners_fits_one_putevents_request(aws: dict[str, Any]) -> None:
    # EventBridge refuses a whole PutEvents request whose entries total 256 KB or more (moto does not check):
    # a batch over it would stay owed on every sweep, with every other runner in that batch.
    store = aws["store"]
    requests: list[int] = []
    aws["events"].meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: requests.append(sum(entry_size(e) for e in params["Entries"])),
    )
    for i in range(10):
        longest = f"{i}" + "😀" * 1023  # 1,024 code points, 4,093 bytes: the longest a model-valid id gets
        store.record_heartbeat(HeartbeatRequest(longest, "😀" * 1024, "😀" * 1024), NOW - 3000, RETENTION)
    for i in range(30):  # a live fleet around them, so the mass-staleness guard lets the flags through
        store.record_heartbeat(HeartbeatRequest(f"live-{i}", "😀" * 1024, "h"), NOW - 60, RETENTION)
    report = sweep(store, Config(TABLE), NOW, StaleEventPublisher("default", aws["events"]))
    assert (report.flagged, report.events_published) == (10, 10)
    assert len(requests) == 1  # ten entries, one request
    assert requests[0] < 256 * 1024
    assert {e["detail"]["hostname"] for e in received(aws)} == {"😀" * 1024}
