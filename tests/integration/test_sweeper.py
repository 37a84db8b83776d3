"""The sweeper on moto: who gets flagged, the guards, and the stale -> terminate story."""

from __future__ import annotations

import json
from typing import Any

import pytest

from heartbeat.config import (
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_STALE_AFTER_SECONDS,
    DEFAULT_SWEEP_INTERVAL_SECONDS,
    Config,
)
from heartbeat.handler import Dependencies, make_handler
from heartbeat.model import HeartbeatRequest
from heartbeat.plan import SweepState
from heartbeat.runners import Status
from heartbeat.store import RunnerStore
from heartbeat.sweeper import SweepReport, lambda_handler, sweep
from tests.conftest import TABLE
from tests.support import FakeClock, LambdaContext, heartbeat_event

THRESHOLD = DEFAULT_STALE_AFTER_SECONDS
RETENTION = DEFAULT_RETENTION_SECONDS


def beat(store: RunnerStore, runner_id: str, now: float) -> None:
    store.record_heartbeat(HeartbeatRequest(runner_id, "wg", f"{runner_id}.host"), now, RETENTION)


def heartbeat_answer(dependencies: Dependencies, runner_id: str) -> bool:
    result = make_handler(lambda: dependencies)(
        heartbeat_event({"taskrunnerId": runner_id}),
        LambdaContext(),  # type: ignore[arg-type]
    )
    assert result["statusCode"] == 200
    return bool(json.loads(result["body"])["terminate"])


def sweep_through(
    store: RunnerStore,
    config: Config,
    clock: FakeClock,
    seconds: float,
    interval: float = DEFAULT_SWEEP_INTERVAL_SECONDS,
) -> int:
    """Advance the clock by seconds with the sweeper running every interval, as the schedule does.

    Returns how many runners those sweeps flagged; the last sweep runs at the final time.
    """
    end = clock.now + seconds
    flagged = 0
    while clock.now < end:
        clock.advance(min(interval, end - clock.now))
        flagged += sweep(store, config, clock.now).flagged
    return flagged


PERIOD = 900  # Task Runner's beat


def sweep_fleet(
    store: RunnerStore, config: Config, clock: FakeClock, size: int, silent: int, *, seconds: float = 2 * THRESHOLD
) -> list[SweepReport]:
    """A staggered fleet, as real Task Runners beat: r-i beats every PERIOD at offset i * PERIOD / size.

    It beats for a period; then r-0..r-(silent-1) stop at once while the rest go on, and the
    sweeper runs every 300 s for `seconds`. Returns the reports of the sweeps after the stop.
    """
    sweep(store, config, clock.now)
    start = clock.now
    beats = [(start + i * PERIOD / size + k * PERIOD, f"r-{i}", i) for i in range(size) for k in range(100)]
    stop = start + PERIOD
    sweeps = [start + 17 + k * 300 for k in range(int((PERIOD + seconds) // 300))]
    timeline = sorted(
        [(t, 1, runner, i) for t, runner, i in beats if t < stop + seconds] + [(t, 0, "", 0) for t in sweeps]
    )
    reports = []
    for when, kind, runner, index in timeline:
        clock.now = when
        if kind == 1 and (index >= silent or when < stop):
            beat(store, runner, when)
        elif kind == 0:
            report = sweep(store, config, when)
            if when >= stop:
                reports.append(report)
    return reports


def status_of(store: RunnerStore, runner_id: str) -> str:
    runner = store.get_runner(runner_id)
    assert runner is not None
    return runner.status


def test_stale_runner_gets_terminate_on_next_heartbeat_and_keeps_getting_it(
    dependencies: Dependencies, store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    assert heartbeat_answer(dependencies, "silent") is False
    sweep(store, config, clock.now)  # the sweeper starts watching
    assert sweep_through(store, config, clock, THRESHOLD) == 0
    clock.advance(1)
    report = sweep(store, config, clock.now)
    assert (report.examined, report.stale, report.flagged, report.held) == (1, 1, 1, [])
    assert status_of(store, "silent") == Status.STALE
    count_before = store.get_runner("silent").heartbeat_count  # type: ignore[union-attr]
    assert heartbeat_answer(dependencies, "silent") is True
    clock.advance(900)
    assert heartbeat_answer(dependencies, "silent") is True  # sticky
    runner = store.get_runner("silent")
    assert runner is not None
    assert (runner.heartbeat_count, runner.last_seen) == (count_before + 2, clock.now)  # still recorded


def test_runner_that_comes_back_before_any_sweep_is_alive(
    dependencies: Dependencies, store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    heartbeat_answer(dependencies, "late")
    sweep(store, config, clock.now)
    clock.advance(THRESHOLD * 3)  # silent far past the threshold, but no sweep ran meanwhile
    assert heartbeat_answer(dependencies, "late") is False
    assert sweep(store, config, clock.now).flagged == 0


def test_runner_beating_within_the_threshold_is_never_flagged(
    dependencies: Dependencies, store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    sweep(store, config, clock.now)
    for _ in range(40):  # ten hours of heartbeats every 15 minutes, a sweep every 5
        assert heartbeat_answer(dependencies, "live") is False
        for _ in range(3):
            clock.advance(300)
            assert sweep(store, config, clock.now).flagged == 0
    assert status_of(store, "live") == Status.ACTIVE


def test_only_the_silent_runner_of_a_staggered_fleet_is_flagged(
    store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    reports = sweep_fleet(store, config, clock, size=10, silent=1)
    assert sum(r.flagged for r in reports) == 1
    assert not any(r.held for r in reports)
    assert [status_of(store, f"r-{i}") for i in range(10)] == ["stale"] + ["active"] * 9


def test_heartbeat_that_lands_after_the_scan_wins_over_the_flag(
    store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    beat(store, "racer", clock.now)
    cutoff = clock.now + 1
    clock.advance(THRESHOLD + 2)
    beat(store, "racer", clock.now)  # arrives between the sweeper's scan and its write
    assert store.flag_stale("racer", last_seen_before=cutoff, now=clock.now, claim_until=clock.now) is False
    assert status_of(store, "racer") == Status.ACTIVE


def test_already_flagged_runner_is_not_flagged_twice(store: RunnerStore, config: Config, clock: FakeClock) -> None:
    beat(store, "r", clock.now)
    sweep(store, config, clock.now)
    assert sweep_through(store, config, clock, THRESHOLD + 1) == 1
    clock.advance(300)
    report = sweep(store, config, clock.now)
    assert (report.examined, report.flagged) == (0, 0)


def test_expired_records_are_not_examined(store: RunnerStore, config: Config, clock: FakeClock) -> None:
    beat(store, "gone", clock.now)
    clock.advance(RETENTION + 1)
    sweep(store, config, clock.now)
    assert sweep(store, config, clock.now + 1).examined == 0


@pytest.mark.parametrize("removed", [3, 6, 9])
def test_a_fleet_that_shrinks_without_deregistering_flags_exactly_the_removed_runners_and_is_never_held(
    store: RunnerStore, config: Config, clock: FakeClock, log_lines: Any, removed: int
) -> None:
    # A scale-in of 30%, 60% or 90%: the survivors beat on, which proves the heartbeat path works.
    reports = sweep_fleet(store, config, clock, size=10, silent=removed)
    assert sum(r.flagged for r in reports) == removed
    assert not any(r.held for r in reports)
    assert [status_of(store, f"r-{i}") for i in range(10)] == ["stale"] * removed + ["active"] * (10 - removed)
    if removed > 5:
        assert any(r.partial == ["fleet"] for r in reports)
        assert any(line["message"].startswith("Most of a scope is silent") for line in log_lines())


def test_a_survivor_that_dies_after_a_scale_in_is_flagged_within_threshold_and_two_sweeps(
    store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    sweep(store, config, clock.now)
    start = clock.now
    size, removed = 10, 6
    died = start + 2 * PERIOD  # r-9 dies two periods after the scale-in
    events = sorted(
        [(start + i * PERIOD / size + k * PERIOD, f"r-{i}") for i in range(size) for k in range(12)]
        + [(start + 17 + k * 300, "") for k in range(int(12 * PERIOD // 300))]
    )
    flagged_at: dict[str, float] = {}
    last_beat: dict[str, float] = {}
    for when, runner in events:
        clock.now = when
        if runner:
            index = int(runner[2:])
            if (index < removed and when >= start + PERIOD) or (runner == "r-9" and when >= died):
                continue
            beat(store, runner, when)
            last_beat[runner] = when
            continue
        report = sweep(store, config, when)
        assert not report.held
        for i in range(size):
            record = store.get_runner(f"r-{i}")
            if f"r-{i}" not in flagged_at and record is not None and record.status == Status.STALE:
                flagged_at[f"r-{i}"] = when
    assert sorted(flagged_at) == [f"r-{i}" for i in range(removed)] + ["r-9"]
    assert flagged_at["r-9"] - last_beat["r-9"] <= THRESHOLD + 2 * 300
    assert all(flagged_at[f"r-{i}"] - last_beat[f"r-{i}"] <= THRESHOLD + 2 * 300 for i in range(removed))


def test_a_fleet_that_goes_silent_whole_is_held_until_an_operator_overrides(
    store: RunnerStore, config: Config, clock: FakeClock, log_lines: Any
) -> None:
    reports = sweep_fleet(store, config, clock, size=10, silent=10)
    assert sum(r.flagged for r in reports) == 0
    assert reports[-1].stale == 10
    assert reports[-1].held == ["fleet"]
    assert any(line["message"].startswith("Sweep held") for line in log_lines())
    # The operator confirms they are gone.
    report = sweep(store, config, clock.advance(300), override_guard=True)
    assert report.flagged == 10


def test_whole_staggered_fleet_silent_as_in_our_outage_is_never_flagged(
    store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    reports = sweep_fleet(store, config, clock, size=20, silent=20, seconds=4 * THRESHOLD)
    assert sum(r.flagged for r in reports) == 0
    # The guard held before the first runner crossed its threshold.
    first_stale = next(i for i, r in enumerate(reports) if r.stale)
    assert reports[first_stale].held == ["fleet"]
    assert all(r.held == ["fleet"] for r in reports[first_stale:])


def test_fleet_back_from_our_outage_gets_a_full_threshold_to_beat_again(
    store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    sweep_fleet(store, config, clock, size=10, silent=10, seconds=2 * THRESHOLD)  # held
    back = clock.now
    for i in range(10):  # the fleet comes back over one period, one runner every 90 s, sweeps on schedule
        beat(store, f"r-{i}", back + i * 90)
        if i % 3 == 2:
            assert sweep(store, config, back + i * 90 + 1).flagged == 0
    assert sweep_through(store, config, clock, THRESHOLD + 300) == 0


def test_resets_during_our_outage_do_not_let_the_guard_go(store: RunnerStore, config: Config, clock: FakeClock) -> None:
    reports = sweep_fleet(store, config, clock, size=10, silent=10, seconds=THRESHOLD)
    assert reports[-1].held == ["fleet"]
    for i in range(6):  # an operator resets most of the fleet while the path is still down
        store.reset(f"r-{i}", now=clock.now)
    assert sweep_through(store, config, clock, 2 * THRESHOLD) == 0
    assert sweep(store, config, clock.now).held == ["fleet"]
    assert all(status_of(store, f"r-{i}") == Status.ACTIVE for i in range(10))


def test_reset_runner_is_not_flagged_until_silent_a_full_threshold_after_the_reset(
    store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    beat(store, "r", clock.now)
    sweep(store, config, clock.now)
    assert sweep_through(store, config, clock, THRESHOLD + 300) == 1
    reset_at = clock.now
    store.reset("r", now=reset_at)
    assert sweep_through(store, config, clock, THRESHOLD) == 0  # not before a full threshold
    assert status_of(store, "r") == Status.ACTIVE
    assert sweep_through(store, config, clock, 300) == 1  # silent past it: flagged again


def test_reset_that_lands_between_scan_and_flag_wins(store: RunnerStore, config: Config, clock: FakeClock) -> None:
    beat(store, "r", clock.now)
    clock.advance(THRESHOLD + 10)
    store.reset("r", now=clock.now)
    assert store.flag_stale("r", last_seen_before=clock.now - THRESHOLD, now=clock.now, claim_until=clock.now) is False


def test_older_sweep_never_overwrites_the_state_of_a_newer_one(
    store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    sweep(store, config, clock.now)
    newer = clock.now + 300
    sweep(store, config, newer)  # the scheduled sweep
    report = sweep(store, config, clock.now + 200)  # an operator's manual sweep that started earlier, ends later
    assert report.state_saved is False
    state = store.load_sweep_state()
    assert state is not None
    assert state.last_sweep_at == newer


def test_a_long_sweep_does_not_restart_the_watch(store: RunnerStore, config: Config, clock: FakeClock) -> None:
    watching = clock.now - 86_400
    # The last sweep started a threshold and more ago, but ran long and finished a minute ago.
    store.save_sweep_state(
        SweepState(last_sweep_at=clock.now - THRESHOLD - 600, watching_since=watching, finished_at=clock.now - 60)
    )
    assert sweep(store, config, clock.now).watching_since == watching
    # Measured from its end, a real gap still restarts it.
    store.save_sweep_state(
        SweepState(last_sweep_at=clock.now + 1, watching_since=watching, finished_at=clock.now + 1 - THRESHOLD - 1)
    )
    assert sweep(store, config, clock.now + 2).watching_since == clock.now + 2


def test_fraction_of_one_turns_the_guard_off(store: RunnerStore, clock: FakeClock) -> None:
    config = Config(TABLE, stale_after_seconds=THRESHOLD, retention_seconds=RETENTION, mass_stale_fraction=1)
    sweep(store, config, clock.now)
    for i in range(12):
        beat(store, f"r-{i}", clock.now)
    assert sweep_through(store, config, clock, THRESHOLD + 1) == 12


def test_after_a_sweeper_outage_every_runner_gets_a_full_threshold_of_grace(
    store: RunnerStore, config: Config, clock: FakeClock
) -> None:
    start = clock.now
    beat(store, "r", start)
    sweep(store, config, start)
    clock.advance(3 * THRESHOLD)  # the sweeper did not run for three thresholds
    resumed = sweep(store, config, clock.now)
    assert (resumed.stale, resumed.in_grace, resumed.flagged, resumed.watching_since) == (1, 1, 0, clock.now)
    assert sweep_through(store, config, clock, THRESHOLD) == 0  # grace runs to exactly one threshold
    clock.advance(1)
    assert sweep(store, config, clock.now).flagged == 1


def test_first_sweep_ever_flags_nobody(store: RunnerStore, config: Config, clock: FakeClock) -> None:
    beat(store, "old", clock.now - 10 * THRESHOLD)
    report = sweep(store, config, clock.now)
    assert (report.stale, report.in_grace, report.flagged) == (1, 1, 0)


def test_sweeper_state_item_is_invisible_to_the_scan(store: RunnerStore, config: Config, clock: FakeClock) -> None:
    sweep(store, config, clock.now)
    assert list(store.sweep_candidates(clock.now)) == []


def test_lambda_handler_reports_and_counts_metrics(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TABLE_NAME", TABLE)
    result = lambda_handler({"source": "aws.events"}, LambdaContext(function_name="sweeper", remaining_ms=300_000))  # type: ignore[arg-type]
    assert (result["examined"], result["flagged"], result["held"]) == (0, 0, [])
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert (emf["RunnersFlagged"], emf["ScopesHeld"], emf["ShortThresholds"], emf["SweepsCompleted"]) == (
        [0.0], [0.0], [0.0], [1.0],
    )  # fmt: skip
