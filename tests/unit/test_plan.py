"""The sweep's decision (heartbeat.plan): the guard's scope states, each runner's verdict, the next state. No AWS."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from heartbeat.config import DEFAULT_STALE_AFTER_SECONDS, Config
from heartbeat.plan import (
    FUTURE_TOLERANCE_SECONDS,
    MIN_RUNNERS_TO_JUDGE,
    Census,
    Hold,
    ScopeState,
    SweepState,
    Verdict,
    past_threshold,
    plan_sweep,
)

T = 1_000_000.0
THRESHOLD = DEFAULT_STALE_AFTER_SECONDS
PERIOD = 900
CONFIG = Config("t")
GROUPS = Config("t", stale_after_by_worker_group={"fast": 600})


@dataclass(frozen=True)
class R:
    """A runner as the scan sees it."""

    taskrunner_id: str
    last_seen: float
    worker_group: str | None = "etl"
    reset_at: float | None = None
    first_seen: float | None = None
    heartbeat_count: int | None = None
    status: str = "active"


def steady(now: float = T) -> SweepState:
    """The sweeper has watched for a day and ran 300 s ago."""
    return SweepState(last_sweep_at=now - 300, watching_since=now - 86_400, finished_at=now - 298)


def fleet(heard: int, silent_since: dict[str, float], now: float = T, group: str = "etl") -> list[R]:
    """heard runners beat within the last period (staggered); the others last beat at the times given."""
    runners = [R(f"live-{i}", now - (i + 0.5) * PERIOD / max(heard, 1) / 2, group) for i in range(heard)]
    return runners + [R(name, when, group) for name, when in silent_since.items()]


def plan_of(runners: list[R], config: Config = CONFIG, now: float = T, previous: SweepState | None = None, **kw: bool):  # type: ignore[no-untyped-def]
    return plan_sweep(Census.of(runners, config, now), config, now, steady(now) if previous is None else previous, **kw)


# One runner


def test_silence_of_exactly_the_threshold_is_not_yet_stale() -> None:
    runners = fleet(9, {"r": T - THRESHOLD})
    assert plan_of(runners).judge(runners[-1]).verdict is Verdict.SILENT
    later = plan_of(runners, now=T + 0.001)
    judgement = later.judge(runners[-1])
    assert judgement.verdict is Verdict.STALE
    assert judgement.cutoff == T + 0.001 - THRESHOLD  # the store flags only if nothing landed since


def test_heard_within_half_the_threshold_silent_after() -> None:
    plan = plan_of(fleet(9, {}))
    assert plan.judge(R("a", T - THRESHOLD / 2)).verdict is Verdict.HEARD
    assert plan.judge(R("b", T - THRESHOLD / 2 - 1)).verdict is Verdict.SILENT


def test_a_reset_gives_a_full_threshold_from_the_reset() -> None:
    plan = plan_of(fleet(9, {}))
    judgement = plan.judge(R("r", T - 3 * THRESHOLD, reset_at=T - THRESHOLD + 1))
    assert (judgement.verdict, "its reset" in judgement.why) == (Verdict.GRACE, True)
    assert plan.judge(R("r", T - 3 * THRESHOLD, reset_at=T - THRESHOLD - 1)).verdict is Verdict.STALE


def test_a_retired_stale_or_terminating_runner_is_not_judged() -> None:
    plan = plan_of(fleet(9, {}))
    for status in ("retired", "stale", "terminating"):
        assert plan.judge(R("r", T - 10 * THRESHOLD, status=status)).verdict is Verdict.NOT_ACTIVE


def test_a_worker_groups_own_threshold_is_used() -> None:
    plan = plan_of(fleet(9, {}), config=GROUPS)
    assert plan.judge(R("f", T - 601, "fast")).verdict is Verdict.STALE
    assert plan.judge(R("e", T - 601, "etl")).verdict is Verdict.HEARD


# The sweeper's watch


def test_first_sweep_starts_a_watch_and_flags_nobody() -> None:
    runners = fleet(5, {"old": T - 10 * THRESHOLD})
    plan = plan_sweep(Census.of(runners, CONFIG, T), CONFIG, T, None)
    assert plan.watching_since == T
    assert plan.judge(runners[-1]).verdict is Verdict.GRACE
    assert any("new watch" in note for note in plan.notes)


def test_a_sweeper_gap_longer_than_the_shortest_threshold_starts_a_new_watch() -> None:
    runners = fleet(5, {})
    kept = SweepState(last_sweep_at=T - 5000, watching_since=T - 99_999, finished_at=T - 600)
    assert plan_of(runners, config=GROUPS, previous=kept).watching_since == T - 99_999  # measured from its end
    gone = SweepState(last_sweep_at=T - 5000, watching_since=T - 99_999, finished_at=T - 601)
    assert plan_of(runners, config=GROUPS, previous=gone).watching_since == T  # 601 s > fast's 600


def test_a_state_stamped_in_the_future_is_ignored_and_never_blocks() -> None:
    runners = fleet(9, {"dead": T - THRESHOLD - 1})
    ahead = SweepState(last_sweep_at=T + 86_400, watching_since=T - 86_400, finished_at=T + 86_401)
    plan = plan_of(runners, previous=ahead)
    assert plan.watching_since == T  # a new watch: safe, and the saved state replaces the bogus one
    assert any("stamped in the future" in note for note in plan.notes)
    assert plan.next_state(T + 2).last_sweep_at == T
    near = SweepState(last_sweep_at=T + FUTURE_TOLERANCE_SECONDS - 1, watching_since=T - 86_400)
    assert plan_of(runners, previous=near).watching_since == T - 86_400  # within tolerance: kept


# The guard: scope states


@pytest.mark.parametrize(
    ("heard", "silent", "state"),
    [
        (0, 10, ScopeState.SILENT),  # nobody heard: maybe us
        (4, 6, ScopeState.PARTIAL),  # a 60% scale-in: the rest is heard, so the path works
        (1, 9, ScopeState.PARTIAL),  # even one runner heard proves the path
        (5, 5, ScopeState.NORMAL),
        (0, MIN_RUNNERS_TO_JUDGE - 1, ScopeState.UNGUARDED),  # too few to judge
    ],
)
def test_fleet_state(heard: int, silent: int, state: ScopeState) -> None:
    runners = fleet(heard, {f"s-{i}": T - THRESHOLD / 2 - 60 - i for i in range(silent)})
    assert plan_of(runners).scopes[None].state is state


def test_fraction_of_one_turns_the_guard_off() -> None:
    config = Config("t", mass_stale_fraction=1)
    runners = fleet(0, {f"s-{i}": T - THRESHOLD - 1 for i in range(10)})
    plan = plan_of(runners, config=config)
    assert plan.scopes[None].state is ScopeState.UNGUARDED
    assert {plan.judge(r).verdict for r in runners} == {Verdict.STALE}


def test_a_scale_in_flags_the_removed_runners_and_holds_nothing() -> None:
    removed = {f"gone-{i}": T - THRESHOLD - 60 - i for i in range(60)}
    runners = fleet(40, removed)
    plan = plan_of(runners)
    assert plan.held == []
    assert [plan.judge(r).verdict for r in runners].count(Verdict.STALE) == 60


def test_our_outage_holds_the_fleet_and_gives_its_runners_grace() -> None:
    # The path went down at T - 2000: every runner last beat in the period before it.
    runners = [R(f"r-{i}", T - 2000 - i * PERIOD / 10) for i in range(10)]
    plan = plan_of(runners)
    assert plan.scopes[None].state is ScopeState.SILENT
    assert plan.held == [None]
    past = [r for r in runners if T - r.last_seen > THRESHOLD]
    assert past
    for runner in past:
        judgement = plan.judge(runner)
        assert (judgement.verdict, "the fleet is held" in judgement.why) == (Verdict.GRACE, True)
    assert plan.holds[None] == Hold(since=T - 300, last=T)  # dated from the previous sweep


def test_after_our_outage_every_runner_gets_a_full_threshold_from_the_last_held_sweep() -> None:
    held = SweepState(T - 300, T - 86_400, T - 298, holds={None: Hold(T - 7200, T - 300)})
    runners = fleet(6, {f"back-soon-{i}": T - 9000 for i in range(4)})  # the fleet is beating again
    plan = plan_of(runners, previous=held)
    assert plan.scopes[None].state is ScopeState.NORMAL
    assert {plan.judge(r).verdict for r in runners[6:]} == {Verdict.GRACE}
    after = plan_of(runners, previous=held, now=T - 300 + THRESHOLD + 1)
    assert {after.judge(r).verdict for r in runners[6:]} == {Verdict.STALE}


def test_one_heartbeat_getting_through_our_outage_does_not_end_its_grace() -> None:
    # Our outage began at T - 2000 and goes on; at T + 3600 one runner's heartbeat gets through, then
    # the path is down again. The fleet is held again once that runner falls silent: the new hold must
    # not drop the grace of the first, or every runner it protected is flagged while the fleet is held.
    runners = [R(f"r-{i}", T - 2000 - i * PERIOD / 10) for i in range(10)]
    flicker = T + 3600
    state = steady(T)
    for now in range(int(T), int(flicker + 2 * THRESHOLD), 300):
        seen = [R("r-0", flicker), *runners[1:]] if now >= flicker else runners
        plan = plan_of(seen, now=float(now), previous=state)
        stale = [r.taskrunner_id for r in seen if plan.judge(r).verdict is Verdict.STALE]
        assert stale == [], (now - T, plan.scopes[None].state, stale)
        state = plan.next_state(float(now) + 2)


def test_runners_already_stale_when_a_hold_began_are_still_flagged() -> None:
    runners = [R(f"r-{i}", T - 2000 - i * 90) for i in range(10)] + [R("died-earlier", T - THRESHOLD - 400)]
    plan = plan_of(runners)
    assert plan.held == [None]
    assert plan.judge(runners[-1]).verdict is Verdict.STALE  # stale before the hold's start (T - 300)


def test_override_flags_past_a_hold() -> None:
    runners = [R(f"r-{i}", T - THRESHOLD - 1 - i) for i in range(10)]
    assert {plan_of(runners).judge(r).verdict for r in runners} == {Verdict.GRACE}
    assert {plan_of(runners, override_guard=True).judge(r).verdict for r in runners} == {Verdict.STALE}


def test_a_gap_in_the_sweepers_watch_holds_a_mostly_silent_fleet_for_that_sweep() -> None:
    # DynamoDB writes failed for 40 minutes (no sweep completed); a third of the fleet has beaten since.
    runners = fleet(3, {f"r-{i}": T - 2400 - i * 60 for i in range(7)})
    gap = SweepState(last_sweep_at=T - 2400, watching_since=T - 86_400, finished_at=T - 2398)
    plan = plan_of(runners, previous=gap)
    assert plan.scopes[None].state is ScopeState.UNWATCHED
    assert plan.holds[None] == Hold(since=T - 2400, last=T)
    # The next sweep, on schedule: the path works, flags go ahead, after the grace of that hold.
    later = plan_of(runners, previous=plan.next_state(T + 2), now=T + 300)
    assert later.scopes[None].state is ScopeState.PARTIAL
    assert {later.judge(r).verdict for r in runners[3:]} <= {Verdict.SILENT, Verdict.GRACE}


def test_a_group_with_its_own_threshold_is_held_only_while_the_fleet_is_not_heard_after_it() -> None:
    # 'fast' fell silent 400 s ago; the rest of the fleet beat 10 s ago: the path works.
    fast = [R(f"fast-{i}", T - 400 - i * 30, "fast") for i in range(6)]
    etl = fleet(10, {})
    plan = plan_of(fast + [R(r.taskrunner_id, T - 10 - i, "etl") for i, r in enumerate(etl)], config=GROUPS)
    assert plan.scopes["fast"].state is ScopeState.PARTIAL
    # Our outage seen first by 'fast': nobody anywhere heard since shortly after fast's newest heartbeat.
    outage = fast + [R(f"etl-{i}", T - 400 - i * 60, "etl") for i in range(10)]
    plan = plan_of(outage, config=GROUPS)
    assert plan.scopes["fast"].state is ScopeState.SILENT
    assert plan.scopes[None].state is ScopeState.NORMAL  # etl is silent only at half its own threshold
    assert plan.held == ["fast"]
    assert plan.judge(R("fast-x", T - 650, "fast")).verdict is Verdict.GRACE


# Learning the beat period


def test_a_threshold_under_twice_the_typical_beat_period_is_reported() -> None:
    def beating(period: float, group: str) -> list[R]:
        return [R(f"{group}-{i}", T - i, group, first_seen=T - i - 20 * period, heartbeat_count=21) for i in range(5)]

    config = Config("t", stale_after_by_worker_group={"fast": 600})
    plan = plan_of(beating(2400, "slow") + beating(900, "etl") + beating(180, "fast"), config=config)
    assert [(s.worker_group, s.threshold) for s in plan.short_thresholds] == [("slow", THRESHOLD)]
    assert plan.periods["slow"] == pytest.approx(2400, rel=0.05)
    assert plan.periods["etl"] == pytest.approx(900, rel=0.05)


def test_no_short_threshold_is_reported_right_after_our_outage() -> None:
    runners = [R(f"r-{i}", T - i, first_seen=T - 3 * 3600, heartbeat_count=4) for i in range(5)]  # a 2 h gap inside
    held = SweepState(T - 300, T - 86_400, T - 298, holds={None: Hold(T - 3600, T - 600)})
    assert plan_of(runners, previous=held).short_thresholds == ()
    assert len(plan_of(runners).short_thresholds) == 1  # the same averages, with no outage of ours to explain them


def test_the_typical_period_is_the_median_so_a_runner_back_from_a_gap_does_not_move_it() -> None:
    runners = [R(f"r-{i}", T, first_seen=T - 20 * PERIOD, heartbeat_count=21) for i in range(4)]
    runners.append(R("gap", T, first_seen=T - 100 * PERIOD, heartbeat_count=3))
    assert plan_of(runners).periods["etl"] == pytest.approx(PERIOD, rel=0.05)


# The census, the plan without a census, the next state


def test_census_of_parts_merged_is_the_census_of_the_whole() -> None:
    fast = R("f", T - 100, "fast", first_seen=T - 1800, heartbeat_count=11)
    runners = [*fleet(7, {"a": T - 5000, "b": T - 3000}), fast]
    whole = Census.of(runners, GROUPS, T)
    merged = Census.of(runners[:4], GROUPS, T).merge(Census.of(runners[4:], GROUPS, T))
    assert merged == whole
    assert (whole.scope(None).active, whole.scope(None).silent, whole.scope("fast").active) == (10, 2, 1)


def test_a_segment_judged_alone_would_be_held_but_the_merged_census_is_judged_whole() -> None:
    # One scan segment (or worker) saw only the dead runners: judged alone, its silence looks like our outage.
    heard = fleet(8, {})
    dead = [R(f"dead-{i}", T - 5000) for i in range(4)]
    alone = plan_sweep(Census.of(dead, CONFIG, T), CONFIG, T, steady())
    assert alone.scopes[None].state is ScopeState.SILENT
    merged = Census.of(heard, CONFIG, T).merge(Census.of(dead, CONFIG, T))
    plan = plan_sweep(merged, CONFIG, T, steady())
    assert plan.scopes[None].state is ScopeState.NORMAL
    assert {plan.judge(r).verdict for r in dead} == {Verdict.STALE}


def test_only_a_runner_past_its_own_threshold_can_be_stale() -> None:
    # The sweeper keeps only runners past_threshold while it counts the census: the plan never flags another.
    held = SweepState(T - 300, T - 86_400, T - 298, holds={None: Hold(T - 3600, T - 300)})
    for previous in (steady(), held, None):
        for last_seen in (T - 5000, T - THRESHOLD - 1, T - THRESHOLD, T - 2000, T - 10):
            for reset_at in (None, T - 4000, T - 100):
                runner = R("r", last_seen, reset_at=reset_at)
                for override in (False, True):
                    plan = plan_sweep(Census.of([runner], CONFIG, T), CONFIG, T, previous, override_guard=override)
                    if plan.judge(runner).verdict is Verdict.STALE:
                        assert past_threshold(runner, CONFIG, T)


def test_without_a_census_the_plan_judges_with_the_last_sweeps_holds() -> None:
    held = SweepState(T - 300, T - 86_400, T - 298, holds={None: Hold(T - 3600, T - 300)})
    plan = plan_sweep(None, CONFIG, T, held)
    assert plan.scopes == {}
    assert plan.judge(R("r", T - THRESHOLD - 500)).verdict is Verdict.GRACE  # silent through the hold


def test_the_next_state_records_the_rules_and_the_holds() -> None:
    runners = [R(f"r-{i}", T - 2000 - i) for i in range(5)]
    state = plan_of(runners, config=GROUPS).next_state(finished_at=T + 3)
    assert (state.last_sweep_at, state.finished_at, state.watching_since) == (T, T + 3, T - 86_400)
    assert state.holds[None] == Hold(T - 300, T)
    assert Config.from_record("t", state.settings or {}) == GROUPS
    assert [(s.scope, s.state) for s in state.scopes] == [(None, "silent")]
