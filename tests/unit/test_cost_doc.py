"""docs/cost.md is generated: it must be exactly what the generator makes of the committed figures and prices."""

from __future__ import annotations

import pytest

from bench import cost


def test_cost_doc_is_what_make_cost_generates_from_the_committed_figures() -> None:
    expected = cost.render(cost.load_figures())
    assert cost.DOC.read_text() == expected, "docs/cost.md is stale: run `make cost` (after `make bench`)"


def test_the_performance_pages_cost_table_is_what_make_cost_generates() -> None:
    page = cost.TABLE_PAGE.read_text()
    stale = f"{cost.TABLE_PAGE}'s cost table is stale: make cost"
    assert page == cost.page_with_table(page, cost.load_figures()), stale


def test_rest_request_tiers_add_up_across_tier_boundaries() -> None:
    assert cost.api_gateway_dollars(333e6) == pytest.approx(333 * 3.50)
    assert cost.api_gateway_dollars(1e9) == pytest.approx(333 * 3.50 + 667 * 2.80)
    assert cost.api_gateway_dollars(2e9) == pytest.approx(333 * 3.50 + 667 * 2.80 + 1000 * 2.38)


def test_xray_samples_one_request_a_second_then_five_percent() -> None:
    month = cost.SECONDS_A_MONTH
    assert cost.traced(0.5) == pytest.approx(0.5 * month)  # under the reservoir: every request
    assert cost.traced(101) == pytest.approx((1 + 0.05 * 100) * month)


def test_alb_bills_its_largest_lcu_dimension() -> None:
    # 1M runners: 1,111 heartbeats a second, each a new connection: 44.4 LCU of new connections.
    assert cost.alb_lcus(1e6 / 900) == pytest.approx(1e6 / 900 / 25)


def test_the_alb_front_door_meets_its_goal_at_a_million_runners() -> None:
    figures = cost.load_figures()
    runners = 1_000_000
    dollars = sum(line.dollars for line in cost.month(figures, "alb", runners))
    assert dollars / (runners * cost.HEARTBEATS_A_RUNNER_A_MONTH / 1e6) <= 1.50
