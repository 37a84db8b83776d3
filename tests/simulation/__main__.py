"""make simulate: every scenario at every fleet size, as a table.

SIMULATE_SIZES (comma-separated, default 10,100) and SIMULATE_ONLY (a substring of scenario
names) choose the grid. At N = 10,000 it plays scenarios.LARGE, a chosen set (see docs/reliability.md).
"""

from __future__ import annotations

import os
import sys
import time

from tests.simulation.fleet import Outcome, Simulation
from tests.simulation.scenarios import SIZES, grid

COLUMNS = ("scenario", "N", "wrongly flagged", "real deaths flagged", "worst detection delay", "wall")


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.0f} min"


def row(outcome: Outcome, wall: float) -> tuple[str, ...]:
    """One line of the table."""
    deaths = f"{outcome.deaths_flagged}/{outcome.deaths}"
    if outcome.held_then_overridden is not None:
        deaths += f" (+{outcome.held_then_overridden} after --override-guard)"
    return (
        outcome.scenario,
        str(outcome.size),
        str(outcome.wrongly_flagged),
        deaths,
        _minutes(outcome.worst_delay) + ("" if outcome.in_time else " (late)"),
        f"{wall:.0f} s",
    )


def main() -> int:
    sizes = [int(s) for s in os.environ.get("SIMULATE_SIZES", ",".join(map(str, SIZES))).split(",")]
    only = os.environ.get("SIMULATE_ONLY", "")
    widths = (66, 6, 15, 42, 21, 6)
    print(" | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)), flush=True)
    print("-+-".join("-" * w for w in widths), flush=True)
    started = time.monotonic()
    for size in sizes:
        for scenario in grid(size):
            if only not in scenario.name:
                continue
            began = time.monotonic()
            outcome = Simulation(scenario, size).run()
            cells = row(outcome, time.monotonic() - began)
            print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)), flush=True)
    print(f"total wall time {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
