"""A sweep with a deadline, its lease and its workers, on moto: nothing lost, nothing done twice.

The deadline's clock is a counter that moves one second each time it is read, so how many
flags a sweep starts before its deadline is a count, not a timing: a Deadline(seconds) read once
at its start, once more by the sweep (for its lease) and once to see whether the scan left it
late starts seconds - 3 flags.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from heartbeat import fan_out, sweeper
from heartbeat.config import Config
from heartbeat.events import DETAIL_TYPE, SOURCE, StaleEventPublisher
from heartbeat.fan_out import Work, WorkQueue, lane_of
from heartbeat.flag_worker import lambda_handler as worker_handler
from heartbeat.flagging import LATE_FLAGS, Deadline
from heartbeat.model import HeartbeatRequest
from heartbeat.store import RunnerStore, SweepState
from heartbeat.sweeper import SweepInProgress, lambda_handler, sweep
from heartbeat_local.server import create_table
from tests.support import LambdaContext

NOW = 1_795_521_600.0
TABLE = "budget"
RETENTION = 7 * 24 * 3600
REGION = {"region_name": "us-east-1"}
LIVE, DEAD = 40, 20  # a third of the fleet dies: under the mass-staleness guard's fraction


class Ticks:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def deadline_passed_in_the_scan() -> Deadline:
    """A deadline already past when the sweep has read the fleet: its scan used the whole budget up."""
    return Deadline(1, Ticks())


def deadline_for_flags(flags: int) -> Deadline:
    """A deadline that lets a sweep start exactly this many flags (see the module's docstring)."""
    return Deadline(flags + 3, Ticks())


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", **REGION)
        create_table(dynamodb, TABLE)
        sqs = boto3.client("sqs", **REGION)
        events_queue = sqs.create_queue(QueueName="stale-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=events_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", **REGION)
        events.put_rule(Name="stale", EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}))
        events.put_targets(Rule="stale", Targets=[{"Id": "queue", "Arn": arn}])
        work_queue = sqs.create_queue(QueueName="work")["QueueUrl"]
        store = RunnerStore(TABLE, client=dynamodb)
        store.save_sweep_state(SweepState(last_sweep_at=NOW - 300, watching_since=NOW - 86_400))
        for i in range(LIVE):
            beat(store, f"live-{i:02d}", NOW - 60)
        for i in range(DEAD):
            beat(store, f"dead-{i:02d}", NOW - 3000)
        monkeypatch.setenv("TABLE_NAME", TABLE)
        yield {
            "store": store, "sqs": sqs, "events_queue": events_queue, "work_queue": work_queue,
            "publisher": StaleEventPublisher("default", events),
        }  # fmt: skip


def beat(store: RunnerStore, runner_id: str, when: float) -> None:
    store.record_heartbeat(HeartbeatRequest(runner_id, "etl", f"{runner_id}.internal"), when, RETENTION)


def stale_events(aws: dict[str, Any]) -> list[dict[str, Any]]:
    received = []
    while batch := aws["sqs"].receive_message(QueueUrl=aws["events_queue"], MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            received.append(json.loads(message["Body"])["detail"])
            aws["sqs"].delete_message(QueueUrl=aws["events_queue"], ReceiptHandle=message["ReceiptHandle"])
    return received


def dead_lanes() -> int:
    """The lanes the dead runners fall in (fan_out.lane_of): a sweep hands out each lane in messages of its own."""
    return len({lane_of(f"dead-{i:02d}") for i in range(DEAD)})


def statuses(store: RunnerStore) -> Counter[str]:
    return Counter(r.status for r in store.runners())


def test_a_sweep_that_runs_out_of_time_saves_its_state_and_the_next_continues(aws: dict[str, Any]) -> None:
    store, config = aws["store"], Config(TABLE)
    reports = []
    for n in range(4):  # every 5 minutes, as scheduled; each may start 6 flags
        reports.append(sweep(store, config, NOW + 300 * n, aws["publisher"], deadline=deadline_for_flags(6)))
        state = store.load_sweep_state()
        assert state is not None
        assert (state.last_sweep_at, state.watching_since) == (NOW + 300 * n, NOW - 86_400)  # the watch goes on
    assert [(r.flagged, r.left) for r in reports] == [(6, 14), (6, 8), (6, 2), (2, 0)]
    assert [r.events_published for r in reports] == [6, 6, 6, 2]
    assert statuses(store) == {"active": LIVE, "stale": DEAD}
    events = stale_events(aws)
    assert Counter(e["taskrunnerId"] for e in events) == {f"dead-{i:02d}": 1 for i in range(DEAD)}
    assert all(not r.event_pending for r in store.runners())


def test_a_sweep_whose_scan_used_up_its_deadline_still_makes_progress_and_saves_its_state(
    aws: dict[str, Any],
) -> None:
    # The deadline has passed before the first flag (a scan as long as the budget, every time): each sweep still
    # starts one round of flags, so the dead are all flagged, once each, and the watch never restarts.
    store = aws["store"]
    report = sweep(store, Config(TABLE), NOW, aws["publisher"], deadline=deadline_passed_in_the_scan())
    assert (report.flagged, report.left, report.state_saved) == (LATE_FLAGS, DEAD - LATE_FLAGS, True)
    assert store.load_sweep_state().last_sweep_at == NOW  # type: ignore[union-attr]
    # Three quarters of an hour of such sweeps: never down, so the watch never restarts.
    for n in range(1, 10):
        report = sweep(store, Config(TABLE), NOW + 300 * n, aws["publisher"], deadline=deadline_passed_in_the_scan())
        assert report.watching_since == NOW - 86_400
    assert statuses(store) == {"active": LIVE, "stale": DEAD}
    assert Counter(e["taskrunnerId"] for e in stale_events(aws)) == {f"dead-{i:02d}": 1 for i in range(DEAD)}


def test_a_late_sweep_hands_the_workers_one_message_so_it_makes_progress(aws: dict[str, Any]) -> None:
    store = aws["store"]
    queue = WorkQueue(aws["work_queue"], aws["sqs"])
    late = deadline_passed_in_the_scan()
    report = sweep(store, Config(TABLE), NOW, aws["publisher"], deadline=late, work_queue=queue)
    # Late, it still hands out a message's worth (CHUNK_ORDERS): all twenty, a message per lane they fall in.
    assert (report.flagged, report.fanned_out, report.work_messages, report.left) == (0, DEAD, dead_lanes(), 0)
    assert sorted(o.taskrunner_id for m in work_messages(aws) for o in Work.from_body(m["Body"]).orders) == [
        f"dead-{i:02d}" for i in range(DEAD)
    ]


def test_a_sweep_judging_only_runners_in_grace_still_stops_at_its_deadline_and_saves_its_state(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sweeper was down longer than the threshold: a new watch starts, and all 60 runners, silent past their
    # threshold by now, are in grace. Judging them flags nothing, yet it must not run past the deadline.
    store = aws["store"]
    monkeypatch.setattr(sweeper, "JUDGE_DEADLINE_EVERY", 1)
    report = sweep(store, Config(TABLE), NOW + 3000, aws["publisher"], deadline=deadline_for_flags(10))
    assert (report.flagged, report.stale, report.state_saved) == (0, LIVE + DEAD, True)
    assert 0 < report.in_grace < LIVE + DEAD
    assert report.in_grace + report.left == LIVE + DEAD
    assert store.load_sweep_state().watching_since == NOW + 3000  # type: ignore[union-attr]


def test_events_owed_from_earlier_sweeps_never_hold_back_new_flags(aws: dict[str, Any]) -> None:
    store, config = aws["store"], Config(TABLE)

    class Down:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - botocore's name
            return {"FailedEntryCount": len(Entries), "Entries": [{"ErrorCode": "InternalFailure"}] * len(Entries)}

    first = sweep(store, config, NOW, StaleEventPublisher("default", Down(), sleep=lambda _: None),  # type: ignore[arg-type]
                  deadline=deadline_for_flags(10))  # fmt: skip
    assert (first.flagged, first.events_owed) == (10, 10)
    # The next sweep has time for 12: its 10 new flags first, then 2 of the 10 owed events.
    second = sweep(store, config, NOW + 300, aws["publisher"], deadline=deadline_for_flags(12))
    assert (second.flagged, second.left, second.events_published, second.events_owed) == (10, 0, 12, 8)
    third = sweep(store, config, NOW + 600, aws["publisher"])
    assert (third.flagged, third.events_published, third.events_owed) == (0, 8, 0)
    assert Counter(e["taskrunnerId"] for e in stale_events(aws)) == {f"dead-{i:02d}": 1 for i in range(DEAD)}


def test_a_sweep_does_not_start_while_another_holds_the_lease(aws: dict[str, Any]) -> None:
    store = aws["store"]
    assert store.acquire_lease("an operator's sweep", NOW, NOW + 240).taken
    with pytest.raises(SweepInProgress) as busy:
        sweep(store, Config(TABLE), NOW + 60, aws["publisher"])
    assert busy.value.until == NOW + 240
    assert statuses(store) == {"active": LIVE + DEAD}  # it did nothing
    assert store.load_sweep_state().last_sweep_at == NOW - 300  # type: ignore[union-attr]
    # A holder that died leaves the lease to expire; then the next sweep runs.
    report = sweep(store, Config(TABLE), NOW + 240, aws["publisher"])
    assert report.flagged == DEAD
    # A finished sweep gives the lease back: the very next one runs.
    assert sweep(store, Config(TABLE), NOW + 241, aws["publisher"]).flagged == 0


def test_the_lambda_handler_stops_at_once_when_another_sweep_holds_the_lease(aws: dict[str, Any]) -> None:
    import time

    aws["store"].acquire_lease("an operator's sweep", time.time(), time.time() + 600)
    sweeper._dependencies.cache_clear()  # built once per cold start: this test's is a cold start on this table
    try:
        result = lambda_handler({"source": "aws.events"}, LambdaContext(function_name="sweeper", remaining_ms=300_000))  # type: ignore[arg-type]
    finally:
        sweeper._dependencies.cache_clear()
    assert result["skipped"] is True
    assert statuses(aws["store"]) == {"active": LIVE + DEAD}


def work_messages(aws: dict[str, Any]) -> list[dict[str, Any]]:
    """The work queue's messages as the event source mapping hands them to a worker: one record each."""
    messages = []
    while batch := aws["sqs"].receive_message(QueueUrl=aws["work_queue"], MaxNumberOfMessages=10).get("Messages"):
        messages += batch
    return messages


def sqs_event(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [{
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work", "awsRegion": "us-east-1",
        }]
    }  # fmt: skip


def test_flags_past_the_sweeps_own_time_go_to_the_workers_and_each_is_written_once(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, config = aws["store"], Config(TABLE)
    queue = WorkQueue(aws["work_queue"], aws["sqs"])
    # The deadline's clock moves a second a read; at a flag every ten seconds the sweep has time for 9 of the 20
    # due, so it hands them all to the workers (a message for each lane they fall in).
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0.1)
    report = sweep(store, config, NOW, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue)
    assert (report.flagged, report.fanned_out, report.work_messages, report.left) == (0, DEAD, dead_lanes(), 0)
    assert statuses(store) == {"active": LIVE + DEAD}  # nothing written yet
    # Every lane was handed out, and the work is still queued: the next sweep judges, and neither sends nor flags.
    busy = sweep(store, config, NOW + 300, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue)
    assert (busy.workers_busy, busy.flagged, busy.fanned_out, busy.left) == (True, 0, 0, DEAD)
    # The workers, as the event source mapping runs them: one message each.
    messages = work_messages(aws)
    assert len(messages) == dead_lanes()
    worker = boto3.client("dynamodb", **REGION)  # the workers' own client, as in Lambda
    monkeypatch.setattr("heartbeat.flag_worker._dependencies", lambda: (RunnerStore(TABLE, client=worker),
                                                                        aws["publisher"]))  # fmt: skip
    first, *rest = messages
    # A worker whose invocation is nearly over starts nothing, reports the message failed: SQS delivers it again.
    cut_short = worker_handler(sqs_event(first), LambdaContext(function_name="workers", remaining_ms=1000))  # type: ignore[arg-type]
    assert cut_short == {"batchItemFailures": [{"itemIdentifier": first["MessageId"]}]}
    for message in [first, *rest]:
        done = worker_handler(sqs_event(message), LambdaContext(function_name="workers", remaining_ms=60_000))  # type: ignore[arg-type]
        assert done == {"batchItemFailures": []}
        aws["sqs"].delete_message(QueueUrl=aws["work_queue"], ReceiptHandle=message["ReceiptHandle"])
    # A message delivered twice (a worker that finished but whose deletion was lost) writes nothing again.
    again = worker_handler(sqs_event(rest[0]), LambdaContext(function_name="workers", remaining_ms=60_000))  # type: ignore[arg-type]
    assert again == {"batchItemFailures": []}
    assert statuses(store) == {"active": LIVE, "stale": DEAD}
    assert Counter(e["taskrunnerId"] for e in stale_events(aws)) == {f"dead-{i:02d}": 1 for i in range(DEAD)}
    # The queue drained, the next sweep finds nothing left to do and no event owed.
    after = sweep(store, config, NOW + 600, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue)
    assert (after.workers_busy, after.stale, after.fanned_out, after.events_published, after.events_owed) == (
        False, 0, 0, 0, 0,
    )  # fmt: skip


def test_a_work_queue_that_does_not_answer_never_stops_a_sweep(aws: dict[str, Any]) -> None:
    store = aws["store"]
    gone = WorkQueue(aws["work_queue"] + "-deleted", aws["sqs"])  # SQS answers QueueDoesNotExist
    report = sweep(store, Config(TABLE), NOW, aws["publisher"], deadline=deadline_for_flags(100), work_queue=gone)
    assert (report.flagged, report.fanned_out, report.workers_busy, report.state_saved) == (DEAD, 0, False, True)
    assert Counter(e["taskrunnerId"] for e in stale_events(aws)) == {f"dead-{i:02d}": 1 for i in range(DEAD)}


def run_workers(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, messages: list[dict[str, Any]]) -> None:
    """The workers, as the event source mapping runs them: one message each, deleted once done."""
    worker = boto3.client("dynamodb", **REGION)  # the workers' own client, as in Lambda
    monkeypatch.setattr("heartbeat.flag_worker._dependencies", lambda: (RunnerStore(TABLE, client=worker),
                                                                        aws["publisher"]))  # fmt: skip
    for message in messages:
        done = worker_handler(sqs_event(message), LambdaContext(function_name="workers", remaining_ms=60_000))  # type: ignore[arg-type]
        assert done == {"batchItemFailures": []}
        aws["sqs"].delete_message(QueueUrl=aws["work_queue"], ReceiptHandle=message["ReceiptHandle"])


def handed_out(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(o.taskrunner_id for m in messages for o in Work.from_body(m["Body"]).orders)


def test_while_the_queue_still_holds_work_each_sweep_hands_out_only_what_it_does_not_hold(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mass death more than one sweep can hand out (each sweep has time for 5 messages), and workers slower than
    # the schedule: none has run yet when the next sweeps come. Each sweep goes on where the last stopped.
    store, config, queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)  # every flag goes to the workers
    reports = [
        sweep(store, config, NOW + 300 * n, aws["publisher"], deadline=deadline_for_flags(5), work_queue=queue)
        for n in range(6)
    ]
    lanes = dead_lanes()
    assert [r.fanned_out for r in reports] == [5, 5, 5, lanes - 15, 0, 0]
    assert [r.workers_busy for r in reports] == [False, True, True, True, True, True]
    messages = work_messages(aws)
    # Every dead runner handed out once: no sweep sent what the queue already held.
    assert handed_out(messages) == [f"dead-{i:02d}" for i in range(DEAD)]
    # One message was lost (it failed until SQS moved it to the dead-letter queue); the workers did the rest.
    lost, *rest = messages
    aws["sqs"].delete_message(QueueUrl=aws["work_queue"], ReceiptHandle=lost["ReceiptHandle"])
    run_workers(aws, monkeypatch, rest)
    assert statuses(store) == {"active": LIVE + 1, "stale": DEAD - 1}
    # The queue empty, the next sweep starts again from the first lane: the lost message's runner is handed out again.
    again = sweep(store, config, NOW + 1800, aws["publisher"], deadline=deadline_for_flags(5), work_queue=queue)
    assert (again.workers_busy, again.fanned_out) == (False, 1)
    retry = work_messages(aws)
    assert handed_out(retry) == handed_out([lost])
    run_workers(aws, monkeypatch, retry)
    assert statuses(store) == {"active": LIVE, "stale": DEAD}
    assert Counter(e["taskrunnerId"] for e in stale_events(aws)) == {f"dead-{i:02d}": 1 for i in range(DEAD)}


def test_a_lane_cut_short_is_handed_out_again_and_its_runners_still_get_one_event_each(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Few lanes of many runners, and small messages: each sweep's deadline falls in the middle of a lane, which the
    # next sweep hands out again whole. The repeated flags are refused by their condition: no event twice.
    store, config, queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)
    monkeypatch.setattr(fan_out, "LANES", 4)
    monkeypatch.setattr(sweeper, "LANES", 4)
    monkeypatch.setattr(fan_out, "CHUNK_ORDERS", 2)
    reports = [
        sweep(store, config, NOW + 300 * n, aws["publisher"], deadline=deadline_for_flags(4), work_queue=queue)
        for n in range(8)
    ]
    messages = work_messages(aws)
    sent = handed_out(messages)
    assert set(sent) == {f"dead-{i:02d}" for i in range(DEAD)}
    assert len(sent) > DEAD  # some were handed out twice
    assert reports[-1].fanned_out == 0  # every lane handed out
    run_workers(aws, monkeypatch, messages)
    assert statuses(store) == {"active": LIVE, "stale": DEAD}
    assert Counter(e["taskrunnerId"] for e in stale_events(aws)) == {f"dead-{i:02d}": 1 for i in range(DEAD)}


def test_a_sweep_whose_scan_outlasted_its_lease_writes_nothing_once_another_sweep_took_it(aws: dict[str, Any]) -> None:
    # An operator's sweep reads a fleet for longer than its lease foresaw; a scheduled sweep takes the expired lease
    # in the meantime. The first must not write alongside it.
    class SlowScan(RunnerStore):
        def sweep_candidates(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            for n, runner in enumerate(super().sweep_candidates(*args, **kwargs)):
                if n == 10:
                    assert aws["store"].acquire_lease("the scheduled sweep", NOW + 600, NOW + 900).taken
                yield runner

    slow = SlowScan(TABLE, client=aws["store"].client)
    with pytest.raises(SweepInProgress) as busy:
        sweep(slow, Config(TABLE), NOW, aws["publisher"], deadline=deadline_for_flags(100))
    assert busy.value.until == NOW + 900
    assert statuses(aws["store"]) == {"active": LIVE + DEAD}  # nothing written
    assert aws["store"].load_sweep_state().last_sweep_at == NOW - 300  # type: ignore[union-attr]
