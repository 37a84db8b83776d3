"""The claim on an owed stale event under attack, on moto: old work messages, throttled writes, long ids.

Built on test_sweeper_budget's fleet (40 live runners, 20 dead) and its workers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from heartbeat import flagging, sweeper
from heartbeat.config import DEFAULT_STALE_AFTER_SECONDS, Config
from heartbeat.events import StaleEventPublisher, iso
from heartbeat.fan_out import Work, WorkQueue
from heartbeat.flagging import CLAIM_SECONDS, FlagOrder
from heartbeat.store import RunnerStore, StoreError, SweepState
from tests.integration import test_sweeper_budget
from tests.integration.test_sweeper_budget import (
    DEAD,
    LIVE,
    NOW,
    TABLE,
    beat,
    deadline_for_flags,
    run_workers,
    stale_events,
    work_messages,
)
from tests.integration.test_sweeper_lanes import Down

aws = test_sweeper_budget.aws  # the fleet fixture: 40 live runners, 20 dead


def event_ids(aws: dict[str, Any]) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = defaultdict(list)
    for event in stale_events(aws):
        ids[event["taskrunnerId"]].append(event["eventId"])
    return ids


def test_an_old_work_message_never_takes_over_the_runners_next_stale_event(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # EventBridge refuses the first sweep's events; the next sweep hands them, owed, to the workers, which are slower
    # than the schedule (or the message sat in the dead-letter queue until an operator redrove it).
    store, config, queue = aws["store"], Config(TABLE), WorkQueue(aws["work_queue"], aws["sqs"])
    down = StaleEventPublisher("default", Down(), sleep=lambda _: None)  # type: ignore[arg-type]
    first = sweeper.sweep(store, config, NOW, down, deadline=deadline_for_flags(10))
    assert (first.flagged, first.events_owed) == (10, 10)
    monkeypatch.setattr(sweeper, "INLINE_FLAGS_PER_SECOND", 0)
    handing = sweeper.sweep(store, config, NOW + 300, aws["publisher"], deadline=deadline_for_flags(100),
                            work_queue=queue)  # fmt: skip
    assert (handing.fanned_out, handing.events_owed) == (DEAD - 10, 0)
    messages = work_messages(aws)
    owed = [e.taskrunner_id for m in messages for e in Work.from_body(m["Body"]).owed]
    assert len(owed) == 10
    runner = owed[0]
    # Meanwhile an operator resets one of them (its first event, never out, is dropped with the flag); it beats, dies
    # again, and a sweep flags it anew: a second stale event, its own staleAt, owed (EventBridge refused it again).
    store.reset(runner, now=NOW + 400)
    beat(store, runner, NOW + 401)
    second_flag = NOW + 401 + DEFAULT_STALE_AFTER_SECONDS + 300
    keep_the_fleet_watched(store, second_flag)
    assert sweep_at(store, config, second_flag, down).flagged == 1 + DEAD - 10  # and the orders still queued
    # Now the old messages are worked: one carries the runner's first event.
    run_workers(aws, monkeypatch, messages)
    sweep_at(store, config, second_flag + 300, aws["publisher"])
    # The runner's second event is out (its first was dropped by the reset); nothing is owed any more.
    assert event_ids(aws)[runner] == [f"{runner}@{iso(second_flag)}"]
    assert not any(r.event_pending for r in store.runners())


def keep_the_fleet_watched(store: Any, now: float) -> None:
    """The live runners beat and the sweeps ran on schedule meanwhile (run here in one step)."""
    for i in range(LIVE):
        beat(store, f"live-{i:02d}", now - 60)
    store.save_sweep_state(SweepState(last_sweep_at=now - 300, watching_since=NOW - 86_400))


def sweep_at(store: Any, config: Config, now: float, events: StaleEventPublisher) -> sweeper.SweepReport:
    return sweeper.sweep(store, config, now, events, deadline=deadline_for_flags(100))


def test_one_throttled_clear_leaves_only_its_own_event_to_be_published_again(aws: dict[str, Any]) -> None:
    # A sweep flags the twenty dead runners and EventBridge accepts their events; DynamoDB throttles (past botocore's
    # retries) the clear of one of them. That one event is owed again, and goes out again once its claim expires:
    # the price of at-least-once. The clears of the other events EventBridge accepted must not be dropped with it,
    # or each of them goes out twice as well. (One flag writer, so the clears wait in line behind the throttled one,
    # as thousands of tasks do behind a failure at the deployed concurrency.)
    store = aws["store"]
    throttled: list[str] = []

    class Throttled(RunnerStore):
        def event_published(self, taskrunner_id: str, stale_at: float) -> None:
            if not throttled:
                throttled.append(taskrunner_id)
                raise StoreError("ProvisionedThroughputExceededException")
            super().event_published(taskrunner_id, stale_at)

    orders = [
        FlagOrder(f"dead-{i:02d}", NOW - 3000, DEFAULT_STALE_AFTER_SECONDS, NOW, NOW - DEFAULT_STALE_AFTER_SECONDS)
        for i in range(DEAD)
    ]
    with pytest.raises(StoreError):
        flagging.carry_out(orders, [], Throttled(TABLE, client=store.client), aws["publisher"],
                           flagging.Deadline.never(), concurrency=1, clock=lambda: NOW)  # fmt: skip
    keep_the_fleet_watched(store, NOW + CLAIM_SECONDS + 1)
    sweep_at(store, Config(TABLE), NOW + CLAIM_SECONDS + 1, aws["publisher"])
    published = {runner: len(ids) for runner, ids in event_ids(aws).items()}
    assert published == {f"dead-{i:02d}": 2 if [f"dead-{i:02d}"] == throttled else 1 for i in range(DEAD)}
    assert not any(r.event_pending for r in store.runners())


def test_entries_refused_in_a_batch_are_published_by_the_next_sweep_once_and_the_accepted_never_again(
    aws: dict[str, Any],
) -> None:
    # EventBridge refuses some entries of each PutEvents (every attempt): among them the longest ids (1,024 code
    # points, kept under a digest key), whose claim and release must reach their items.
    store, config = aws["store"], Config(TABLE)
    longest = ["\U0001f600" * 1023 + chr(0x4E00 + i) for i in range(3)]
    for runner_id in longest:
        beat(store, runner_id, NOW - 3000)
    refused = {*longest, *(f"dead-{i:02d}" for i in range(0, DEAD, 3))}
    events_client = aws["publisher"].client

    class PartlyDown:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - botocore's name
            accepted = [e for e in Entries if json.loads(e["Detail"])["taskrunnerId"] not in refused]
            answers = iter(events_client.put_events(Entries=accepted)["Entries"] if accepted else [])
            return {
                "FailedEntryCount": len(Entries) - len(accepted),
                "Entries": [
                    {"ErrorCode": "InternalFailure"} if json.loads(e["Detail"])["taskrunnerId"] in refused
                    else next(answers)
                    for e in Entries
                ],
            }  # fmt: skip

    partly = StaleEventPublisher("default", PartlyDown(), sleep=lambda _: None)  # type: ignore[arg-type]
    first = sweep_at(store, config, NOW, partly)
    assert (first.flagged, first.events_owed) == (DEAD + len(longest), len(refused))
    # The next sweep, EventBridge well again, claims the refused ones at once (their claims were given up).
    second = sweep_at(store, config, NOW + 300, aws["publisher"])
    assert (second.events_published, second.events_owed) == (len(refused), 0)
    assert sweep_at(store, config, NOW + 600, aws["publisher"]).events_published == 0
    assert {runner: len(ids) for runner, ids in event_ids(aws).items()} == dict.fromkeys(
        [*longest, *(f"dead-{i:02d}" for i in range(DEAD))], 1
    )
    assert not any(r.event_pending for r in store.runners())
