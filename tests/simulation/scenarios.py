"""The scenarios the simulator plays: our outages, real deaths, and both; default and per-group thresholds.

Times are seconds after the fleet has settled (see fleet.Simulation).
"""

from __future__ import annotations

from tests.simulation.fleet import Group, Scenario, Window

HOUR = 3600.0
FAST = (Group("fast", 0.5, period=180.0), Group("etl", 0.5))  # "fast" beats every 3 minutes
FAST_THRESHOLDS = (("fast", 600),)


def _per_group(scenario: Scenario) -> Scenario:
    """The same scenario on a fleet where half the runners beat every 3 minutes with a 10-minute threshold."""
    return Scenario(
        **{
            **scenario.__dict__,
            "name": ("worker group 'fast' (50%, own threshold) dies whole" if scenario.die_group else scenario.name)
            + " (per-group thresholds)",
            "groups": FAST,
            "stale_after_by_worker_group": FAST_THRESHOLDS,
            "die_group": (scenario.die_group[0], "fast") if scenario.die_group else None,
            # a group with its own threshold is judged alone: dying whole, it is held until an override
            "held_by_design": scenario.die_group is not None,
        }
    )


OUR_OUTAGES = [
    Scenario("heartbeat path down 10 min", path_down=(Window(0, 600),)),
    Scenario("heartbeat path down 1 h", path_down=(Window(0, HOUR),)),
    Scenario("heartbeat path down 6 h", path_down=(Window(0, 6 * HOUR),)),
    Scenario("heartbeat path down 3 days", path_down=(Window(0, 72 * HOUR),)),
    Scenario("DynamoDB writes fail 1 h, reads work", writes_down=(Window(0, HOUR),)),
    Scenario("EventBridge down 1 h", events_down=(Window(0, HOUR),)),
    Scenario("sweeper down 1 h, then back", sweeper_down=(Window(0, HOUR),)),
]
BROWNOUT = Scenario("brownout 1 h: half of requests fail, 3 attempts", brownout=(Window(0, HOUR),))
REAL_DEATHS = [
    Scenario("20% die at once", die_share=(0, 0.2)),
    Scenario("rolling: one dies every sweep for 4 h, replaced", rolling=Window(0, 4 * HOUR)),
    Scenario("worker group 'batch' (20%) dies whole", die_group=(0, "batch")),
    Scenario(
        "20% die, path down 1 h from 20 min later",
        die_share=(0, 0.2),
        path_down=(Window(1200, 1200 + HOUR),),
        tail_thresholds=2,
    ),
    Scenario("20% die, EventBridge down meanwhile", die_share=(0, 0.2), events_down=(Window(0, HOUR),)),
]
PER_GROUP = [
    _per_group(OUR_OUTAGES[1]),
    _per_group(OUR_OUTAGES[4]),
    _per_group(OUR_OUTAGES[6]),
    _per_group(REAL_DEATHS[0]),
    _per_group(REAL_DEATHS[1]),
    _per_group(REAL_DEATHS[2]),
    _per_group(REAL_DEATHS[3]),
]
ALL = [*OUR_OUTAGES, BROWNOUT, *REAL_DEATHS, *PER_GROUP]
SIZES = (10, 100)  # N = 10,000 plays LARGE (SIMULATE_SIZES=10000, docs/reliability.md, make simulate)


def _named(*names: str) -> list[Scenario]:
    chosen = [s for s in ALL if s.name in names]
    return sorted(chosen, key=lambda s: names.index(s.name))


# At N = 10,000 every heartbeat is a moto UpdateItem (a few ms) and every sweep a scan of 10,000
# items, so the grid there is these rows, cheapest and most telling first. Not here: the 3-day
# outage (864 sweeps, each scanning 10,000 items), the rolling failure for 4 h (replaced by 1 h).
LARGE = [
    *_named(
        "heartbeat path down 1 h",
        "DynamoDB writes fail 1 h, reads work",
        "20% die at once",
        "worker group 'batch' (20%) dies whole",
        "sweeper down 1 h, then back",
        "heartbeat path down 6 h",
    ),
    Scenario("rolling: one dies every sweep for 1 h, replaced", rolling=Window(0, HOUR)),
]
LARGE_SIZE = 10_000  # from this fleet size on, make simulate plays LARGE rather than ALL


def grid(size: int) -> list[Scenario]:
    """The scenarios make simulate plays at this fleet size."""
    return LARGE if size >= LARGE_SIZE else ALL
