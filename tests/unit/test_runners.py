"""The rules: staleness, the sweeper's watch, the mass-staleness guard, the answer."""

from __future__ import annotations

import pytest

from heartbeat.runners import (
    MIN_FLEET_FOR_GUARD,
    Census,
    Hold,
    Runner,
    Status,
    expires_at,
    hold_grace,
    is_quiet,
    is_stale,
    judge_fleet,
    next_hold,
    should_terminate,
    silence_start,
    watching_since,
)

T = 1_000_000.0
THRESHOLD = 2700


def runner(status: str) -> Runner:
    return Runner("r", status, first_seen=T, last_seen=T, heartbeat_count=1, expires_at=int(T) + 10)


def test_only_active_runners_keep_working() -> None:
    assert should_terminate(runner(Status.ACTIVE)) is False
    assert should_terminate(runner(Status.STALE)) is True


def test_silence_of_exactly_the_threshold_is_not_yet_stale() -> None:
    assert not is_stale(T, T + THRESHOLD, THRESHOLD, watching_since=0)
    assert is_stale(T, T + THRESHOLD + 0.001, THRESHOLD, watching_since=0)


def test_silence_counts_only_from_when_the_sweeper_started_watching() -> None:
    last_seen = T - 10 * THRESHOLD
    assert not is_stale(last_seen, T + THRESHOLD, THRESHOLD, watching_since=T)
    assert is_stale(last_seen, T + THRESHOLD + 1, THRESHOLD, watching_since=T)


def test_first_sweep_starts_a_watch() -> None:
    assert watching_since(None, None, T, THRESHOLD) == T


def test_regular_sweeps_keep_the_watch() -> None:
    assert watching_since(T - 60, T - 3600, T, THRESHOLD) == T - 3600


def test_sweeper_gap_longer_than_threshold_starts_a_new_watch() -> None:
    assert watching_since(T - THRESHOLD - 1, T - 99_999, T, THRESHOLD) == T
    assert watching_since(T - THRESHOLD, T - 99_999, T, THRESHOLD) == T - 99_999


@pytest.mark.parametrize(
    ("quiet", "active", "fraction", "held"),
    [
        (6, 10, 0.5, True),
        (5, 10, 0.5, False),  # exactly the fraction is still allowed
        (MIN_FLEET_FOR_GUARD - 1, MIN_FLEET_FOR_GUARD - 1, 0.5, False),  # too few runners to judge
        (MIN_FLEET_FOR_GUARD, MIN_FLEET_FOR_GUARD, 0.5, True),
        (10, 10, 1.0, False),  # 1 turns the guard off
        (1, 10, 0.05, True),
        (501, 1000, 0.5, True),
    ],
)
def test_fleet_is_held_when_more_than_the_fraction_is_quiet(
    quiet: int, active: int, fraction: float, held: bool
) -> None:
    assert judge_fleet({"wg": Census(active, quiet)}, (), fraction).fleet_held is held


def test_fleet_is_judged_across_all_its_worker_groups() -> None:
    census = {"a": Census(10, 10), "b": Census(10, 0), None: Census(2, 2)}
    verdict = judge_fleet(census, (), 0.5)
    assert (verdict.fleet_held, verdict.groups_held) == (True, frozenset())  # 12 of 22 quiet


def test_only_worker_groups_with_their_own_threshold_are_judged_alone() -> None:
    census = {"fast": Census(5, 5), "etl": Census(5, 5), "big": Census(100, 0)}
    verdict = judge_fleet(census, ("fast", "idle"), 0.5)
    assert (verdict.fleet_held, verdict.groups_held) == (False, frozenset({"fast"}))


def test_quiet_means_silent_for_more_than_half_the_threshold() -> None:
    assert not is_quiet(T, T + THRESHOLD / 2, THRESHOLD)
    assert is_quiet(T, T + THRESHOLD / 2 + 0.001, THRESHOLD)


def test_silence_starts_at_the_latest_known_moment() -> None:
    assert silence_start(T, None, T + 5, None) == T + 5
    assert silence_start(T) == T


def test_a_spell_goes_on_while_consecutive_sweeps_hold_and_is_dated_from_the_sweep_before() -> None:
    first = next_hold(None, True, T, previous_sweep_at=T - 300)
    assert first == Hold(since=T - 300, last=T)
    assert next_hold(first, True, T + 300, previous_sweep_at=T) == Hold(since=T - 300, last=T + 300)
    assert next_hold(first, False, T + 300, previous_sweep_at=T) == first  # kept: it still gives grace
    # Not held at the sweep before: a new spell.
    assert next_hold(first, True, T + 900, previous_sweep_at=T + 600) == Hold(since=T + 600, last=T + 900)
    assert next_hold(None, True, T, previous_sweep_at=None) == Hold(since=T, last=T)


def test_a_spell_after_failed_sweeps_is_dated_from_the_last_completed_one() -> None:
    # The sweeps between T - 3000 and T failed (DynamoDB writes down): the outage may have begun at T - 3000.
    assert next_hold(None, True, T, previous_sweep_at=T - 3000) == Hold(since=T - 3000, last=T)


def test_a_hold_protects_runners_not_yet_stale_when_its_spell_began() -> None:
    hold = Hold(since=T, last=T + 600)
    assert hold_grace(hold, silence_started=T - THRESHOLD, stale_after_seconds=THRESHOLD) == T + 600
    assert hold_grace(hold, silence_started=T - THRESHOLD - 1, stale_after_seconds=THRESHOLD) is None  # stale before
    assert hold_grace(None, silence_started=T, stale_after_seconds=THRESHOLD) is None


def test_ttl_is_whole_seconds_after_last_seen() -> None:
    assert expires_at(T + 0.75, 3600) == int(T) + 3600
