"""make simulate: every scenario at every fleet size, as a table.

SIMULATE_SIZES (comma-separated, default 10,100) and SIMULATE_ONLY (a substring of scenario
names) choose the grid. At N = 10,000 it plays scenarios.LARGE, a chosen set (see docs/reliability.md).
A run that played the whole grid at N = 100 writes its rows and their chart into docs/reliability.md
(tests/simulation/chart.py).
"""

from __future__ import annotations

import os
import sys
import time

from tests.simulation import chart
from tests.simulation.fleet import Outcome, Simulation
from tests.simulation.scenarios import SIZES, grid

COLUMNS = (
    "scenario", "N", "wrongly flagged", "real deaths flagged", "worst detection delay", "removed: flagged/retired",
    "held sweeps", "wall",
)  # fmt: skip


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.0f} min"


def row(outcome: Outcome, wall: float, threshold: int) -> tuple[str, ...]:
    """One line of the table."""
    deaths = f"{outcome.deaths_flagged}/{outcome.deaths}"
    if outcome.held_then_overridden is not None:
        deaths += f" (+{outcome.held_then_overridden} after --override-guard)"
    wrongly = str(outcome.wrongly_flagged)
    if outcome.cut_off_flagged:
        wrongly += f" (+{outcome.cut_off_flagged} cut off)"
    removed = "-"
    if outcome.removed:
        removed = f"{outcome.removed_flagged}+{outcome.removed_retired}/{outcome.removed}"
        if outcome.worst_removed_wait is not None:
            removed += f", <= {outcome.worst_removed_wait / 60:.0f} min"
        removed += "" if outcome.removed_in_bound(threshold) else " (over bound)"
    held = f"{outcome.held_sweeps}" + (f" (longest {outcome.longest_hold})" if outcome.held_sweeps else "")
    held += "; short threshold" if outcome.short_threshold_warned else ""
    return (
        outcome.scenario,
        str(outcome.size),
        wrongly,
        deaths,
        _minutes(outcome.worst_delay) + ("" if outcome.in_time else " (late)"),
        removed,
        held,
        f"{wall:.0f} s",
    )


def main() -> int:
    sizes = [int(s) for s in os.environ.get("SIMULATE_SIZES", ",".join(map(str, SIZES))).split(",")]
    only = os.environ.get("SIMULATE_ONLY", "")
    charting = not only and chart.CHART_SIZE in sizes
    if charting and not all(marker in chart.PAGE.read_text() for marker in (chart.BEGIN, chart.END)):
        sys.exit(f"docs/{chart.PAGE.name} lacks the markers of the block this run would write: {chart.BEGIN}")
    widths = (66, 5, 16, 36, 21, 26, 16, 6)
    print(" | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)), flush=True)
    print("-+-".join("-" * w for w in widths), flush=True)
    started = time.monotonic()
    charted: list[chart.Row] = []
    charted_wall = 0.0
    for size in sizes:
        for scenario in grid(size):
            if only not in scenario.name:
                continue
            began = time.monotonic()
            outcome = Simulation(scenario, size).run()
            wall = time.monotonic() - began
            cells = row(outcome, wall, scenario.config().stale_after_seconds)
            print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)), flush=True)
            if size == chart.CHART_SIZE:
                charted.append((cells[0], *cells[2:]))
                charted_wall += wall
    print(f"total wall time {time.monotonic() - started:.0f} s", flush=True)
    if charting:
        page = chart.page_with_block(chart.PAGE.read_text(), charted, f"{charted_wall:.0f} s")
        chart.PAGE.write_text(page)
        print(f"docs/{chart.PAGE.name}: the N = {chart.CHART_SIZE} results and their chart rewritten", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
