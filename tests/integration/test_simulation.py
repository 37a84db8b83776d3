"""The fleet simulator's representative set, at N = 10 (make simulate plays the whole grid at larger N).

Each case plays a staggered fleet through the real handler, store (moto) and sweeper on a
simulated clock (tests/simulation). Our outages flag nobody and every runner's answers stay
terminate: false; real deaths are flagged, in time, and nobody else.
"""

from __future__ import annotations

import pytest

from tests.simulation.fleet import Simulation, Window
from tests.simulation.scenarios import OUR_OUTAGES, PER_GROUP, REAL_DEATHS, Scenario


def named(scenarios: list[Scenario], *names: str) -> list[Scenario]:
    chosen = [s for s in scenarios if s.name in names]
    assert len(chosen) == len(names)
    return chosen


OUTAGES = [
    *named(
        OUR_OUTAGES, "heartbeat path down 1 h", "DynamoDB writes fail 1 h, reads work", "sweeper down 1 h, then back"
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


def test_a_group_with_its_own_threshold_dying_whole_is_held_until_an_operator_overrides() -> None:
    [scenario] = named(PER_GROUP, "worker group 'fast' (50%, own threshold) dies whole (per-group thresholds)")
    outcome = Simulation(scenario, size=10).run()
    assert (outcome.wrongly_flagged, outcome.deaths_flagged) == (0, 0)
    assert outcome.held_then_overridden == outcome.deaths > 0
