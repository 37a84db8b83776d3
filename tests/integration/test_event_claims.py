"""The claim on an owed stale event under attack, on moto: old work messages, throttled writes, long ids.

Built on test_sweeper_budget's fleet (40 live runners, 20 dead) and its workers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from heartbeat import sweeper
from heartbeat.config import DEFAULT_STALE_AFTER_SECONDS, Config
from heartbeat.events import StaleEventPublisher, iso
from heartbeat.fan_out import Work, WorkQueue
from heartbeat.store import SweepState
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
