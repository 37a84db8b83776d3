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
    assert cost.alb_lcus(1e6 / 900, http_bytes=1100) == pytest.approx(1e6 / 900 / 25)
    # Were each heartbeat 20 KB of HTTP, processed bytes would be the largest: 80 GB an hour at 0.4 GB an LCU.
    assert cost.alb_lcus(1e6 / 900, http_bytes=20_000) == pytest.approx(1e6 / 900 * 20_000 * 3600 / 1e9 / 0.4)


FIGURES = {
    "write_units_per_heartbeat": 1, "item_bytes": 215, "wire_bytes_per_heartbeat": 6442,
    "wire_bytes_up_per_heartbeat": 1504, "http_bytes_per_heartbeat": 1098,
    "handler_ms_p50": {"rest": 0.8, "alb": 0.8}, "log_bytes_per_heartbeat": {"rest": 236, "alb": 0},
    "sweeper": {"seconds_per_100k": 1.9, "lambda_memory_mb": 1769},
}  # fmt: skip


def line(door: str, name: str, options: cost.Options = cost.DEFAULT) -> float:
    [found] = [item.dollars for item in cost.month(FIGURES, door, 1_000_000, options) if item.part == name]
    return found


def test_two_connections_in_three_cross_an_az_and_pay_both_ways() -> None:
    gb = 1e6 * cost.HEARTBEATS_A_RUNNER_A_MONTH * 6442 / 1e9
    for door in ("alb", "private"):
        assert line(door, "Inter-AZ data") == pytest.approx(gb * 2 / 3 * 2 * 0.01)
    assert "Inter-AZ data" not in [item.part for item in cost.month(FIGURES, "regional", 1000)]


def test_the_scan_reads_every_item_at_its_real_size_half_price() -> None:
    # 1M items of 215 B, eventually consistent: 52,490 units a sweep, 8,760 sweeps a month.
    assert cost.scan_read_units(FIGURES, 1_000_000) == pytest.approx(1e6 * 215 / 4096 / 2)
    assert line("alb", "DynamoDB sweeper reads") == pytest.approx(1e6 * 215 / 4096 / 2 * 8760 / 1e6 * 0.125)


def test_provisioned_capacity_is_the_average_rate_over_70_percent() -> None:
    provisioned = cost.Options(provisioned=True)
    wcu = 1e6 / 900 / 0.7  # one write unit a heartbeat
    assert line("alb", "DynamoDB writes", provisioned) == pytest.approx(wcu * 730 * 0.00065)
    rcu = 1e6 * 215 / 4096 / 2 / 300 / 0.7
    assert line("alb", "DynamoDB sweeper reads", provisioned) == pytest.approx(rcu * 730 * 0.00013)
    # A small fleet keeps auto scaling's minimum.
    small = {i.part: i.dollars for i in cost.month(FIGURES, "alb", 10, provisioned)}
    assert small["DynamoDB writes"] == pytest.approx(5 * 730 * 0.00065)


def test_trace_sampling_traces_its_share_and_zero_traces_nothing() -> None:
    heartbeats = 1e6 * cost.HEARTBEATS_A_RUNNER_A_MONTH
    assert line("private", "X-Ray", cost.Options(trace_share=0.001)) == pytest.approx(heartbeats * 0.001 / 1e6 * 5)
    assert line("alb", "X-Ray", cost.Options(trace_share=0.0)) == 0


def test_the_alb_front_door_meets_its_goal_at_a_million_runners() -> None:
    figures = cost.load_figures()
    runners = 1_000_000
    dollars = sum(line.dollars for line in cost.month(figures, "alb", runners))
    assert dollars / (runners * cost.HEARTBEATS_A_RUNNER_A_MONTH / 1e6) <= 1.50
