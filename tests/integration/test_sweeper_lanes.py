"""The sweep's lanes and lease under attack, on moto: a sweep next to another, redelivered work, a bad record.

Built on test_sweeper_budget's fleet (40 live runners, 20 dead), its deadline clock and its workers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from heartbeat import sweeper
from heartbeat.config import Config
from heartbeat.events import StaleEventPublisher
from heartbeat.fan_out import LANES, Work, WorkQueue, lane_of
from heartbeat.flag_worker import work
from heartbeat.flagging import CLAIM_SECONDS, Deadline
from heartbeat.store import RunnerStore
from heartbeat.store.items import number, reserved_key
from heartbeat.store.lease import LEASE_NAME
from heartbeat.sweeper import SweepInProgress, sweep
from heartbeat_ops.operator import OPERATOR_SWEEP_SECONDS
from tests.integration import test_sweeper_budget
from tests.integration.test_sweeper_budget import (
    DEAD,
    LIVE,
    NOW,
    TABLE,
    beat,
    deadline_for_flags,
    handed_out,
    run_workers,
    stale_events,
    statuses,
    work_messages,
)

aws = test_sweeper_budget.aws  # the fleet fixture: 40 live runners, 20 dead


class Down:
    """EventBridge refusing every entry."""

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - botocore's name
        return {"FailedEntryCount": len(Entries), "Entries": [{"ErrorCode": "InternalFailure"}] * len(Entries)}


def events_by_runner(aws: dict[str, Any]) -> Counter[str]:
    return Counter(e["taskrunnerId"] for e in stale_events(aws))


ONE_EACH = {f"dead-{i:02d}": 1 for i in range(DEAD)}


def owed_in_messages(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Ten dead runners flagged with their events refused (owed), the other ten and the ten owed events handed out."""
    store, config, queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    down = StaleEventPublisher("default", Down(), sleep=lambda _: None)  # type: ignore[arg-type]
    first = sweep(store, config, NOW, down, deadline=deadline_for_flags(10))
    assert (first.flagged, first.events_owed) == (10, 10)
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)  # every flag goes to the workers
    second = sweep(store, config, NOW + 300, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue)
    assert (second.fanned_out, second.events_owed) == (10, 0)  # the owed events went out in a message
    messages = work_messages(aws)
    assert sum(len(Work.from_body(m["Body"]).owed) for m in messages) == 10
    return messages


def test_a_work_message_delivered_twice_publishes_its_owed_events_once(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = owed_in_messages(aws, monkeypatch)
    run_workers(aws, monkeypatch, messages)
    # The message holding the owed events: its deletion was lost, and SQS delivers it again.
    again = [m for m in messages if Work.from_body(m["Body"]).owed]
    run_workers(aws, monkeypatch, again)
    assert statuses(aws["store"]) == {"active": LIVE, "stale": DEAD}
    assert events_by_runner(aws) == ONE_EACH


def test_an_operators_sweep_next_to_queued_owed_events_publishes_each_once(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = owed_in_messages(aws, monkeypatch)
    # heartbeat-ops runners sweep, while the workers have not run yet.
    sweep(aws["store"], Config(TABLE), NOW + 360, aws["publisher"], deadline=deadline_for_flags(100))
    run_workers(aws, monkeypatch, messages)
    assert statuses(aws["store"]) == {"active": LIVE, "stale": DEAD}
    assert events_by_runner(aws) == ONE_EACH


def unreachable(aws: dict[str, Any]) -> WorkQueue:
    return WorkQueue(aws["work_queue"] + "-deleted", aws["sqs"])  # SQS answers QueueDoesNotExist: backlog None


@pytest.mark.parametrize("queue", [None, unreachable], ids=["operator's sweep", "queue did not answer"])
def test_a_sweep_that_cannot_see_the_queue_keeps_the_record_of_lanes_handed_out(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, queue: Any
) -> None:
    # Every lane handed out, the workers slower than the schedule. A sweep that does not see the queue (an operator's
    # sweep, or SQS not answering) writes what it can itself; it must not record "nothing handed out", or the next
    # scheduled sweep hands out again every runner the queue still holds.
    store, config, work_queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)
    first = sweep(store, config, NOW, aws["publisher"], deadline=deadline_for_flags(100), work_queue=work_queue)
    assert first.fanned_out == DEAD
    blind = sweep(store, config, NOW + 60, aws["publisher"], deadline=deadline_for_flags(3),
                  work_queue=queue(aws) if queue else None)  # fmt: skip
    assert blind.flagged == 3
    scheduled = sweep(
        store, config, NOW + 300, aws["publisher"], deadline=deadline_for_flags(100), work_queue=work_queue
    )
    assert (scheduled.workers_busy, scheduled.fanned_out) == (True, 0)
    messages = work_messages(aws)
    assert len(handed_out(messages)) == DEAD  # nothing handed out twice
    run_workers(aws, monkeypatch, messages)
    assert statuses(store) == {"active": LIVE, "stale": DEAD}
    assert events_by_runner(aws) == ONE_EACH


def test_a_sweep_whose_scan_outlasted_its_lease_writes_nothing_once_another_sweep_took_and_gave_it_back(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An operator's sweep reads the fleet for longer than its lease foresaw. Meanwhile a scheduled sweep takes the
    # expired lease, hands every lane to the workers and gives the lease back. The operator's sweep must not go on to
    # write, nor overwrite the record of the lanes handed out with its own stale one.
    store, config, work_queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)

    class SlowScan(RunnerStore):
        def sweep_candidates(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            for n, runner in enumerate(super().sweep_candidates(*args, **kwargs)):
                if n == 10:
                    assert (
                        sweep(
                            store,
                            config,
                            NOW + 600,
                            aws["publisher"],
                            deadline=deadline_for_flags(100),
                            work_queue=work_queue,
                        ).fanned_out
                        == DEAD
                    )
                yield runner

    with pytest.raises(SweepInProgress):
        sweep(SlowScan(TABLE, client=store.client), config, NOW, aws["publisher"], deadline=deadline_for_flags(100))
    assert statuses(store) == {"active": LIVE + DEAD}  # nothing written: the workers have the dead runners
    # The queue still busy, the next scheduled sweep hands out nothing again.
    after = sweep(store, config, NOW + 900, aws["publisher"], deadline=deadline_for_flags(100), work_queue=work_queue)
    assert (after.workers_busy, after.fanned_out) == (True, 0)


def set_handed_out(store: RunnerStore, value: dict[str, str]) -> None:
    store.client.update_item(
        TableName=TABLE, Key=reserved_key(LEASE_NAME), UpdateExpression="SET handedOut = :v, leaseUntil = :free",
        ExpressionAttributeValues={":v": value, ":free": number(0)},
    )  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        {"N": "12.5"},
        {"N": "-3"},
        {"N": "1000000"},
        {"S": "7"},
    ],
    ids=["fraction", "negative", "huge", "string"],
)
def test_a_corrupt_record_of_lanes_handed_out_never_stops_the_sweeps(
    aws: dict[str, Any], value: dict[str, str]
) -> None:
    # Someone edited the lease item by hand. The sweeps must go on (and not hold the lease until it expires).
    store = aws["store"]
    set_handed_out(store, value)
    report = sweep(store, Config(TABLE), NOW, aws["publisher"])
    assert report.flagged == DEAD
    assert sweep(store, Config(TABLE), NOW + 1, aws["publisher"]).flagged == 0  # the lease was given back
    assert events_by_runner(aws) == ONE_EACH


def test_lanes_of_the_longest_ids_spread_and_their_runners_are_flagged_through_the_workers(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, config, queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    longest = ["\U0001f600" * 1023 + chr(0x4E00 + i) for i in range(8)]  # 1,024 code points, 4,093 bytes each
    for runner_id in longest:
        beat(store, runner_id, NOW - 3000)
    assert all(0 <= lane_of(r) < LANES for r in longest)
    assert len({lane_of(r) for r in longest}) > 1
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)
    report = sweep(store, config, NOW, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue)
    assert report.fanned_out == DEAD + len(longest)
    run_workers(aws, monkeypatch, work_messages(aws))
    assert events_by_runner(aws) == {**ONE_EACH, **dict.fromkeys(longest, 1)}


def test_a_worker_finishing_during_a_sweeps_scan_does_not_get_its_events_published_twice(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, config, queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)
    assert (
        sweep(store, config, NOW, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue).fanned_out
        == DEAD
    )
    messages = work_messages(aws)
    last, rest = messages[-1], messages[:-1]
    run_workers(aws, monkeypatch, rest)
    # The last worker has flagged its runners and is publishing their events when the next sweep's scan reads them.
    flagged, go = threading.Event(), threading.Event()
    events_client = aws["publisher"].client

    class Slow:
        def put_events(self, **kwargs: Any) -> Any:
            flagged.set()
            go.wait(timeout=60)
            return events_client.put_events(**kwargs)

    slow = StaleEventPublisher("default", Slow(), sleep=lambda _: None)  # type: ignore[arg-type]
    worker_error: list[BaseException] = []

    def worker() -> None:
        try:
            run_workers(aws | {"publisher": slow}, monkeypatch, [last])
        except BaseException as error:  # reported by the main thread
            worker_error.append(error)

    class ScanThenWorkerFinishes(RunnerStore):
        def sweep_candidates(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            read = list(super().sweep_candidates(*args, **kwargs))
            go.set()
            thread.join(timeout=60)
            yield from read

    thread = threading.Thread(target=worker)
    thread.start()
    assert flagged.wait(timeout=60)
    sweep(ScanThenWorkerFinishes(TABLE, client=store.client), config, NOW + 300, aws["publisher"],
          deadline=deadline_for_flags(100), work_queue=queue)  # fmt: skip
    assert not worker_error
    assert statuses(store) == {"active": LIVE, "stale": DEAD}
    assert events_by_runner(aws) == ONE_EACH


def test_runners_back_to_life_reset_or_retired_while_their_orders_wait_in_the_queue_are_not_flagged(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Workers slower than the schedule: the orders wait while one dead runner beats again, one is reset and one
    # retired by an operator, and then a scale-in: the live half of the fleet retired. Their queued orders, delivered
    # twice, flag none of them; the others get one event each.
    store, config, queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)
    assert (
        sweep(store, config, NOW, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue).fanned_out
        == DEAD
    )
    beat(store, "dead-00", NOW + 1)
    store.reset("dead-01", NOW + 2)
    store.retire("dead-02", by="operator", reason="scale-in", now=NOW + 3)
    for i in range(0, LIVE, 2):
        store.retire(f"live-{i:02d}", by="autoscaling", reason="scale-in", now=NOW + 4)
    messages = work_messages(aws)
    run_workers(aws, monkeypatch, messages + messages)  # every message delivered twice
    assert Counter(r.status for r in store.runners()) == {
        "active": LIVE // 2 + 2,
        "stale": DEAD - 3,
        "retired": LIVE // 2 + 1,
    }
    assert events_by_runner(aws) == {f"dead-{i:02d}": 1 for i in range(3, DEAD)}
    # The next sweep, queue empty, has nothing left to hand out.
    after = sweep(store, config, NOW + 300, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue)
    assert (after.workers_busy, after.fanned_out, after.flagged, after.events_published) == (False, 0, 0, 0)


def test_an_event_whose_publisher_died_holding_its_claim_is_published_once_the_claim_expires(
    aws: dict[str, Any],
) -> None:
    # A worker flagged dead-00 (taking the claim on its event, as every flag does) and was killed before publishing.
    store = aws["store"]
    assert store.flag_stale("dead-00", last_seen_before=NOW, now=NOW, claim_until=NOW + CLAIM_SECONDS)
    config = Config(TABLE, mass_stale_fraction=1.0)  # the guard off: only the event is at stake here
    # While the claim holds, no sweep publishes it: the worker might still be publishing.
    early = sweep(store, config, NOW + 300, aws["publisher"], deadline=deadline_for_flags(100))
    assert (early.events_published, early.events_owed) == (DEAD - 1, 0)
    assert events_by_runner(aws) == {f"dead-{i:02d}": 1 for i in range(1, DEAD)}
    # Once it has expired, the next sweep claims and publishes it, once.
    late = sweep(store, config, NOW + CLAIM_SECONDS + 1, aws["publisher"], deadline=deadline_for_flags(100))
    assert (late.events_published, late.events_owed) == (1, 0)
    again = sweep(store, config, NOW + CLAIM_SECONDS + 301, aws["publisher"], deadline=deadline_for_flags(100))
    assert again.events_published == 0
    assert events_by_runner(aws) == {"dead-00": 1}
    assert not any(r.event_pending for r in store.runners())


def test_events_a_worker_could_not_publish_go_out_at_the_next_sweep_while_the_queue_is_still_busy(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mass death handed to the workers; the first workers flag their runners but EventBridge refuses the events.
    # The queue still holds the rest of the work: the next sweep publishes the refused events all the same (each
    # claimed first), rather than leaving them until the queue empties.
    store, config, queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)
    assert sweep(store, config, NOW, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue).fanned_out
    messages = work_messages(aws)
    first, rest = messages[:5], messages[5:]
    down = StaleEventPublisher("default", Down(), sleep=lambda _: None)  # type: ignore[arg-type]
    for message in first:
        work(message["Body"], store, down, Deadline(45), claim_until=NOW + 60)
        aws["sqs"].delete_message(QueueUrl=aws["work_queue"], ReceiptHandle=message["ReceiptHandle"])
    refused = handed_out(first)
    assert {r.taskrunner_id for r in store.runners() if r.event_pending} == set(refused)
    busy = sweep(store, config, NOW + 300, aws["publisher"], deadline=deadline_for_flags(100), work_queue=queue)
    assert (busy.workers_busy, busy.fanned_out, busy.events_published, busy.events_owed) == (True, 0, 5, 0)
    assert events_by_runner(aws) == dict.fromkeys(refused, 1)
    run_workers(aws, monkeypatch, rest)
    assert statuses(store) == {"active": LIVE, "stale": DEAD}
    assert events_by_runner(aws) == dict.fromkeys(handed_out(rest), 1)  # the rest's, once; the refused, not again
    assert not any(r.event_pending for r in store.runners())


class Slow:
    """EventBridge answering an operator's PutEvents late: before it answers, the workers run their messages."""

    def __init__(self, client: Any, meanwhile: Callable[[], None]) -> None:
        self.client, self.meanwhile = client, meanwhile

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - botocore's name
        meanwhile, self.meanwhile = self.meanwhile, lambda: None
        meanwhile()
        return dict(self.client.put_events(Entries=Entries))


@pytest.mark.parametrize(
    ("scan_seconds", "publish_seconds"),
    [
        (400, 0),  # a 10M table scanned from an operator's terminal: past OPERATOR_SWEEP_SECONDS + its margin
        (235, 70),  # the scan inside its 240 s, then one PutEvents read timing out (60 s, OPERATOR_CLIENT_CONFIG)
    ],
)
def test_an_operators_sweep_running_past_its_deadline_and_margin_keeps_its_claims_against_the_workers(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, scan_seconds: float, publish_seconds: float
) -> None:
    # heartbeat-ops is no Lambda: nothing ends it at its deadline plus LEASE_MARGIN_SECONDS, and its clients wait
    # up to 60 s a read, three times, under the publisher's own three attempts. Its claims on the owed events must
    # hold while it still runs, or a worker holding the same owed events in its message publishes them too.
    messages = owed_in_messages(aws, monkeypatch)
    moved = [0.0]
    deadline = Deadline(OPERATOR_SWEEP_SECONDS, lambda: moved[0])  # as heartbeat-ops makes it
    moved[0] = scan_seconds  # what the scan took
    # The workers run on Lambda's clock (time.time); the operator's publish answers publish_seconds after its claims.
    clock = lambda: time.time() - publish_seconds  # noqa: E731
    slow = Slow(aws["publisher"].client, lambda: run_workers(aws, monkeypatch, messages))
    report = sweep(
        aws["store"], Config(TABLE, mass_stale_fraction=1.0), clock() - scan_seconds,
        StaleEventPublisher("default", slow), clock=clock, deadline=deadline,  # type: ignore[arg-type]
    )  # fmt: skip
    assert report.events_published + report.events_owed <= 10
    assert statuses(aws["store"]) == {"active": LIVE, "stale": DEAD}
    assert events_by_runner(aws) == ONE_EACH
