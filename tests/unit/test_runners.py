"""The rules: staleness, the sweeper's watch, the mass-staleness guard, the answer."""

from __future__ import annotations

import pytest

from heartbeat.runners import (
    MIN_FLEET_FOR_GUARD,
    Runner,
    Status,
    expires_at,
    is_stale,
    mass_staleness_guard_trips,
    should_terminate,
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
    ("stale", "active", "fraction", "trips"),
    [
        (6, 10, 0.5, True),
        (5, 10, 0.5, False),  # exactly the fraction is still allowed
        (9, MIN_FLEET_FOR_GUARD - 1, 0.5, False),  # too few runners to judge
        (10, 10, 1.0, False),  # 1 turns the guard off
        (1, 10, 0.05, True),
        (501, 1000, 0.5, True),
    ],
)
def test_mass_staleness_guard(stale: int, active: int, fraction: float, trips: bool) -> None:
    assert mass_staleness_guard_trips(stale, active, fraction) is trips


def test_ttl_is_whole_seconds_after_last_seen() -> None:
    assert expires_at(T + 0.75, 3600) == int(T) + 3600
