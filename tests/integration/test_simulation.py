"""The fleet simulator's representative set, at N = 10 (make simulate plays the whole grid at larger N).

Each case plays a staggered fleet through the real handler, store (moto) and sweeper on a
simulated clock (tests/simulation). Our outages flag nobody and every runner's answers stay
terminate: false; real deaths are flagged, in time, and nobody else.
"""

from __future__ import annotations

import pytest

from heartbeat.config import DEFAULT_STALE_AFTER_SECONDS, DEFAULT_SWEEP_INTERVAL_SECONDS
from tests.simulation.fleet import Simulation, Window
from tests.simulation.scenarios import (
    CLOCKS,
    OUR_OUTAGES,
    PER_GROUP,
    REAL_DEATHS,
    RETIRED,
    SCALE_INS,
    SLOW_BEATS,
    ZONE_CUT,
    Scenario,
)


def named(scenarios: list[Scenario], *names: str) -> list[Scenario]:
    chosen = [s for s in scenarios if s.name in names]
    assert len(chosen) == len(names)
    return chosen


OUTAGES = [
    *named(
        OUR_OUTAGES,
        "heartbeat path down 1 h",
        "heartbeat path down 6 h, but for 5 min after 1 h",
        "DynamoDB writes fail 1 h, reads work",
        "sweeper down 1 h, then back",
    ),
    *named(PER_GROUP, "heartbeat path down 1 h (per-group thresholds)"),
]
DEATHS = [
    *named(REAL_DEATHS, "20% die at once", "worker group 'batch' (20%) dies whole"),
    Scenario("rolling: one dies every sweep for 1 h, replaced", rolling=Window(0, 3600)),
    *named(PER_GROUP, "20% die at once (per-group thresholds)"),
]


@pytest.mark.parametrize("scenario", OUTAGES, ids=lambda s: s.name)
def test_our_outage_flags_nobody_in_a_staggered_fleet(scenario: Scenario) -> None:
    outcome = Simulation(scenario, size=10).run()
    assert outcome.wrongly_flagged == 0  # includes any live runner answered terminate: true after recovery
    assert outcome.heartbeats > 0


@pytest.mark.parametrize("scenario", DEATHS, ids=lambda s: s.name)
def test_real_deaths_are_flagged_in_time_and_nobody_else(scenario: Scenario) -> None:
    outcome = Simulation(scenario, size=10).run()
    assert outcome.deaths > 0
    assert (outcome.wrongly_flagged, outcome.deaths_flagged) == (0, outcome.deaths)
    assert outcome.in_time, f"flagged {outcome.worst_overrun:.0f} s after threshold + silence"


def test_deaths_before_our_outage_are_flagged_after_it_and_nobody_else() -> None:
    [scenario] = named(REAL_DEATHS, "20% die, path down 1 h from 20 min later")
    outcome = Simulation(scenario, size=10).run()
    assert (outcome.wrongly_flagged, outcome.deaths_flagged) == (0, outcome.deaths)


def test_a_group_with_its_own_threshold_dying_whole_while_the_fleet_beats_is_flagged_in_time() -> None:
    # Before, such a group was held until an operator overrode: the rest of the fleet being heard proves the path.
    [scenario] = named(PER_GROUP, "worker group 'fast' (50%, own threshold) dies whole (per-group thresholds)")
    outcome = Simulation(scenario, size=10).run()
    assert (outcome.wrongly_flagged, outcome.deaths_flagged, outcome.held_then_overridden) == (0, outcome.deaths, None)
    assert outcome.in_time


SHRINKING = named(
    SCALE_INS,
    "scale-in 60% at once, survivors die 1 h after",
    "scale-in 90% at once, survivors die 1 h after",
)


@pytest.mark.parametrize("scenario", SHRINKING, ids=lambda s: s.name)
def test_a_scale_in_never_blinds_the_sweeper(scenario: Scenario) -> None:
    outcome = Simulation(scenario, size=10).run()
    assert (outcome.wrongly_flagged, outcome.held_sweeps) == (0, 0)
    assert outcome.deaths_flagged == outcome.deaths > 0  # the survivors' later deaths
    assert outcome.in_time, f"flagged {outcome.worst_overrun:.0f} s after threshold + silence"
    assert outcome.removed_flagged == outcome.removed > 0
    assert outcome.removed_in_bound(scenario.config().stale_after_seconds)


def test_runners_retired_by_aws_signals_leave_with_no_flag_and_no_hold() -> None:
    outcome = Simulation(RETIRED, size=10).run()
    assert (outcome.wrongly_flagged, outcome.held_sweeps, outcome.removed_flagged) == (0, 0, 0)
    assert outcome.removed_retired == outcome.removed > 0
    assert outcome.deaths_flagged == outcome.deaths > 0
    assert outcome.in_time


def test_forty_minute_beats_hold_nothing_flag_deaths_in_time_and_report_the_short_threshold() -> None:
    [scenario] = [s for s in SLOW_BEATS if s.name.startswith("40-minute")]
    outcome = Simulation(scenario, size=10).run()
    assert (outcome.wrongly_flagged, outcome.held_sweeps) == (0, 0)
    assert outcome.deaths_flagged == outcome.deaths > 0
    assert outcome.in_time
    assert outcome.short_threshold_warned


def test_a_zone_cut_off_alone_for_longer_than_the_threshold_is_flagged_and_nobody_else() -> None:
    outcome = Simulation(ZONE_CUT, size=10).run()
    assert outcome.wrongly_flagged == 0
    assert outcome.cut_off_flagged == 3  # the zone's runners, as docs/guarantees.md says
    assert outcome.held_sweeps == 0


def test_an_operators_clock_a_day_ahead_changes_nothing() -> None:
    [scenario] = [s for s in CLOCKS if "operator" in s.name]
    outcome = Simulation(scenario, size=10).run()
    assert outcome.notes == []  # the CLI's sweep ran
    assert (outcome.wrongly_flagged, outcome.deaths_flagged) == (0, outcome.deaths)
    assert outcome.in_time


def test_a_sweep_state_stamped_a_day_ahead_delays_deaths_by_at_most_one_threshold() -> None:
    [scenario] = [s for s in CLOCKS if "stamped" in s.name]
    outcome = Simulation(scenario, size=10).run()
    assert (outcome.wrongly_flagged, outcome.deaths_flagged) == (0, outcome.deaths)
    assert outcome.worst_overrun is not None
    # A new watch: one threshold of grace, once.
    assert outcome.worst_overrun <= DEFAULT_STALE_AFTER_SECONDS + 2 * DEFAULT_SWEEP_INTERVAL_SECONDS
