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
        }
    )


OUR_OUTAGES = [
    Scenario("heartbeat path down 10 min", path_down=(Window(0, 600),)),
    Scenario("heartbeat path down 1 h", path_down=(Window(0, HOUR),)),
    Scenario("heartbeat path down 6 h", path_down=(Window(0, 6 * HOUR),)),
    Scenario("heartbeat path down 3 days", path_down=(Window(0, 72 * HOUR),)),
    Scenario(
        "heartbeat path down 6 h, but for 5 min after 1 h",  # some heartbeats get through, then it goes on
        path_down=(Window(0, HOUR), Window(HOUR + 300, 6 * HOUR)),
    ),
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
AFTER = ((600, "10 min"), (HOUR, "1 h"), (6 * HOUR, "6 h"))
# A scale-in with no deregistration: the removed runners just stop; then 10% of the survivors die.
SCALE_INS = [
    *(
        Scenario(
            f"scale-in {share:.0%} at once, survivors die {label} after",
            scale_in=((0, share),), die_survivors=(after, 0.1), tail_thresholds=2,
        )
        for share in (0.3, 0.51, 0.6, 0.9)
        for after, label in AFTER
    ),
    *(
        Scenario(
            f"scale-in 10% an hour for 6 h, survivors die {label} after it began",
            scale_in=tuple((k * HOUR, 0.1) for k in range(6)), die_survivors=(after, 0.1), tail_thresholds=2,
        )
        for after, label in AFTER
    ),
]  # fmt: skip
RETIRED = Scenario(
    "scale-in 60% retired by EC2 signals, survivors die 1 h after",
    scale_in=((0, 0.6),),
    retire_by_signal=True,
    die_survivors=(HOUR, 0.1),
    tail_thresholds=2,
)


def _slow(minutes: int) -> Scenario:
    groups = tuple(Group(g.name, g.share, period=minutes * 60.0) for g in Scenario("").groups)
    return Scenario(f"{minutes}-minute beats (threshold 45 min), 20% die", groups=groups, die_share=(2 * HOUR, 0.2))


SLOW_BEATS = [_slow(25), _slow(30), _slow(40)]
ZONE_CUT = Scenario("one zone of three (34%) cut off from the path 1 h", cut_off=(Window(0, HOUR), 0.34))
CLOCKS = [
    Scenario("20% die; an operator sweeps from a clock 1 day ahead", die_share=(0, 0.2), operator_sweep=(600, 86_400)),
    Scenario("20% die; a sweep state stamped 1 day ahead", die_share=(0, 0.2), state_stamped_ahead=(300, 86_400)),
]
GONE_VS_SILENT = [*SCALE_INS, RETIRED, *SLOW_BEATS, ZONE_CUT, *CLOCKS]
ALL = [*OUR_OUTAGES, BROWNOUT, *REAL_DEATHS, *PER_GROUP, *GONE_VS_SILENT]
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
