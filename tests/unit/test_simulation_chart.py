"""docs/reliability.md's simulator chart is generated: valid xychart-beta, drawn from the committed table."""

from __future__ import annotations

import re

from heartbeat.config import DEFAULT_STALE_AFTER_SECONDS
from tests.simulation import chart
from tests.simulation.__main__ import row
from tests.simulation.fleet import Outcome

LABEL = re.compile(r'"([^"]*)"')


def parts(lines: list[str]) -> tuple[str, list[str], int, list[int]]:
    """The chart's kind, its axis labels, its y-axis top and its bars, read back as Mermaid would."""
    assert (lines[0], lines[-1]) == ("```mermaid", "```")
    body = [line.strip() for line in lines[1:-1]]
    if body[0] == "---":  # front matter: Mermaid's config for this chart, YAML between two --- lines
        end = body.index("---", 1)
        assert body[1:3] == ["config:", "xyChart:"]
        assert re.fullmatch(r"height: \d+", body[3])
        assert end == 4
        body = body[end + 1 :]
    kind = body[0]
    [axis] = [line for line in body if line.startswith("x-axis ")]
    [y_axis] = [line for line in body if line.startswith("y-axis ")]
    [bar] = [line for line in body if line.startswith("bar ")]
    assert re.fullmatch(r'x-axis \[(?:"[^"]*"(?:, )?)*\]', axis), axis
    assert re.fullmatch(r'y-axis "[^"]*" 0 --> \d+', y_axis), y_axis
    assert re.fullmatch(r"bar \[(?:\d+(?:, )?)*\]", bar), bar
    return kind, LABEL.findall(axis), int(y_axis.rsplit(" ", 1)[1]), [int(v) for v in re.findall(r"\d+", bar)]


def charted(outcomes: list[Outcome]) -> list[chart.Row]:
    return [(cells[0], *cells[2:]) for cells in (row(o, 1.0, DEFAULT_STALE_AFTER_SECONDS) for o in outcomes)]


def test_the_chart_has_one_bar_per_scenario_with_a_flagged_death_and_states_the_rest_beside_it() -> None:
    outcomes = [
        Outcome("heartbeat path down 1 h", 100, held_sweeps=8, longest_hold=8),
        Outcome("20% die at once", 100, deaths=20, deaths_flagged=20, worst_delay=49 * 60, worst_overrun=0),
        Outcome(
            "20% die, path down 1 h from 20 min later", 100, deaths=20, deaths_flagged=20, worst_delay=129 * 60,
            worst_overrun=3600,
        ),
        Outcome('a "quoted" scenario (per-group thresholds)', 100, deaths=5, deaths_flagged=5, worst_delay=14 * 60),
        Outcome("one zone of three (34%) cut off from the path 1 h", 100, cut_off_flagged=34),
    ]  # fmt: skip
    rows = charted(outcomes)
    kind, labels, top, bars = parts(chart.chart(rows))
    assert kind == "xychart-beta horizontal"
    assert labels == ["20% die at once", "20% die, then path down 1 h", "a 'quoted' scenario (groups)"]
    assert bars == [49, 129, 14]
    assert top >= max(bars)
    text = "\n".join(chart.block(rows, "3 s"))
    assert "Late (past threshold + 2 sweep intervals after the last heartbeat): 20% die, then path down 1 h." in text
    assert "heartbeat path down 1 h: 0; one zone of three (34%) cut off from the path 1 h: 0 (+34 cut off)." in text


def test_the_table_reads_back_as_the_rows_it_was_made_from() -> None:
    rows = charted([Outcome("20% die at once", 100, deaths=20, deaths_flagged=20, worst_delay=2940, worst_overrun=0)])
    page = f"before\n{chart.BEGIN}\n{chart.END}\nafter\n"
    written = chart.page_with_block(page, rows, "7 s")
    assert chart.parse(written) == (rows, "7 s")
    assert written.startswith("before\n")
    assert written.endswith("\nafter\n")


def test_the_committed_block_is_what_the_generator_makes_of_the_committed_table() -> None:
    page = chart.PAGE.read_text()
    rows, total = chart.parse(page)
    assert len(rows) > 30, "the N = 100 table in docs/reliability.md is missing rows"
    assert page == chart.page_with_block(page, rows, total), "docs/reliability.md's chart is stale: make simulate"
    _, labels, top, bars = parts(chart.chart(rows))
    assert top >= max(bars)
    assert len(labels) == len(bars) == sum(1 for r in rows if chart.delay_minutes(r[3]) is not None)
    assert len(set(labels)) == len(labels), "two scenarios share a short name on the chart's axis"
