"""The sweeper: run on a schedule, it carries out the sweep's plan (plan.py).

It scans the fleet into a census, asks plan.plan_sweep who is flagged now, flags those with a
conditional write each (a heartbeat, reset or retire landing at the same moment wins), publishes
their stale events, and saves the plan's next state, which also records the rules it judged
with so that heartbeat-ops judges alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat.clients import SWEEPER_CLIENT_CONFIG
from heartbeat.config import AuthMode, Config
from heartbeat.events import StaleEventPublisher, StaleRunner
from heartbeat.observability import (
    NAMESPACE,
    NO_GROUP,
    OTHER_GROUPS,
    SERVICE,
    WORKER_GROUPS_GAUGED,
    MetricName,
    logger,
    metrics,
    trace_lambda_handler,
)
from heartbeat.plan import Census, Judgement, ScopeState, SweepPlan, Verdict, plan_sweep, scope_name
from heartbeat.runners import Status
from heartbeat.store import RunnerStore, StoreError, SweepCandidate
from heartbeat.store.keys import KeyCensus
from heartbeat.store.scan import StatusCounts


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    examined: int  # active runners in the census
    silent: int  # of those, not heard for more than half their threshold (the guard's evidence)
    stale: int  # silent past their threshold: flagged, or in grace
    flagged: int  # flagged by this sweep (a heartbeat may win the race for the others)
    in_grace: int  # past their threshold, not flagged: a hold, a new watch or a reset
    scopes: dict[str, str] = field(default_factory=dict)  # each scope ("fleet", or a worker group): "state (why)"
    held: list[str] = field(default_factory=list)  # scopes held: "fleet", or a worker group's name
    partial: list[str] = field(default_factory=list)  # scopes mostly silent while the rest is heard
    short_thresholds: list[str] = field(default_factory=list)  # worker groups beating too slowly for their threshold
    events_published: int = 0  # stale events accepted by EventBridge, this sweep's and any owed from before
    events_owed: int = 0  # stale events still owed after this sweep (published by the next)
    watching_since: float = 0.0  # since when silence counts against a runner
    state_saved: bool = True  # False: a sweep that started later had already saved its state
    by_worker_group: dict[str, dict[str, int]] = field(default_factory=dict)  # live runners: worker_group_gauges


@dataclass(frozen=True)
class Scan:
    """A scan judged: the plan, the runners past their threshold with their judgements, and the events owed."""

    plan: SweepPlan
    census: Census
    past_threshold: list[tuple[SweepCandidate, Judgement]]
    owed: list[StaleRunner]
    keys: KeyCensus | None = None  # with authentication on: each key's runners, counted by this scan
    statuses: StatusCounts = field(default_factory=dict)  # every live runner by (worker group, status)


def scan(store: RunnerStore, config: Config, now: float, *, override_guard: bool = False) -> Scan:
    """Read the fleet and plan the sweep; writes nothing (heartbeat-ops runners sweep --dry-run prints this).

    Only the runners past their threshold on their own account are kept until the census is
    complete; every other runner is judged heard or silent by that alone.
    """
    previous = store.load_sweep_state()
    census = Census(now)
    candidates: list[SweepCandidate] = []
    owed: list[StaleRunner] = []
    keys = store.begin_key_census()
    statuses: StatusCounts = {}
    for candidate in store.sweep_candidates(now, keys, statuses):
        threshold = config.stale_after_for(candidate.worker_group)
        if candidate.status == Status.ACTIVE.value:
            census.add(candidate, config)
            if now - max(candidate.last_seen, candidate.reset_at or 0.0) > threshold:
                candidates.append(candidate)
        elif candidate.event_pending:
            owed.append(_stale_runner(candidate, candidate.stale_at or now, threshold))
    plan = plan_sweep(census, config, now, previous, override_guard=override_guard)
    return Scan(plan, census, [(c, plan.judge(c)) for c in candidates], owed, keys, statuses)


def sweep(
    store: RunnerStore,
    config: Config,
    now: float,
    events: StaleEventPublisher | None = None,
    *,
    override_guard: bool = False,
    clock: Callable[[], float] | None = None,
    on_flag: Callable[[SweepCandidate, Judgement], None] | None = None,
) -> SweepReport:
    """Carry out the plan: flag the stale runners, publish their events, save the next state.

    now is when the sweep starts, by the service's clock; clock, when given, tells when it
    finished, so that the sweeper's down time is measured from the end of its last run.
    override_guard flags past held scopes and their grace: for an operator who has confirmed
    the runners are gone. on_flag, when given, is told of each runner this sweep flagged
    (heartbeat-ops names them; the report only counts them, so its size never grows with the fleet).
    """
    scanned = scan(store, config, now, override_guard=override_guard)
    plan = scanned.plan
    _log_plan(plan, override_guard)
    owed = list(scanned.owed)
    flagged = in_grace = 0
    for candidate, judgement in scanned.past_threshold:
        if judgement.verdict is Verdict.GRACE:
            in_grace += 1
        elif judgement.verdict is Verdict.STALE and store.flag_stale(
            candidate.taskrunner_id, last_seen_before=judgement.cutoff, now=now
        ):
            flagged += 1
            if on_flag is not None:
                on_flag(candidate, judgement)
            owed.append(_stale_runner(candidate, now, judgement.threshold))
            logger.info(
                "Flagged runner stale",
                extra={"taskrunnerId": candidate.taskrunner_id, "lastSeen": candidate.last_seen, "why": judgement.why},
            )

    published, still_owed = _publish(store, events, owed)
    if scanned.keys is not None:
        try:
            store.record_key_census(scanned.keys)
        except StoreError:  # the flags are done; the next sweep counts again
            logger.exception("Could not record the keys' runner counts; the next sweep counts again")
    saved = store.save_sweep_state(plan.next_state(finished_at=clock() if clock is not None else now))
    if not saved:
        logger.warning("A sweep that started later has saved its state already; this one's is dropped")
    fleet = scanned.census.scope(None)
    return SweepReport(
        examined=fleet.active,
        silent=fleet.silent,
        stale=len(scanned.past_threshold),
        flagged=flagged,
        in_grace=in_grace,
        scopes={_scope_label(s): f"{d.state.value} ({d.why})" for s, d in plan.scopes.items()},
        held=[_scope_label(s) for s in plan.held],
        partial=[_scope_label(s) for s, d in plan.scopes.items() if d.state is ScopeState.PARTIAL],
        short_thresholds=[_scope_label(s.worker_group) for s in plan.short_thresholds],
        events_published=len(published),
        events_owed=len(still_owed),
        watching_since=plan.watching_since,
        state_saved=saved,
        by_worker_group=worker_group_gauges(scanned.statuses),
    )


def worker_group_gauges(statuses: StatusCounts, at_most: int = WORKER_GROUPS_GAUGED) -> dict[str, dict[str, int]]:
    """Live runners by worker group and status, for the dashboard: the at_most largest groups by name, the rest
    added up as OTHER_GROUPS (each named group is a custom metric per status, billed by CloudWatch)."""
    totals: dict[str | None, int] = {}
    for (group, _), count in statuses.items():
        totals[group] = totals.get(group, 0) + count
    named = set(sorted(totals, key=lambda g: (-totals[g], g or ""))[:at_most])
    gauges: dict[str, dict[str, int]] = {}
    for (group, status), count in sorted(statuses.items(), key=lambda item: (item[0][0] or "", item[0][1])):
        label = (group or NO_GROUP)[:255] if group in named else OTHER_GROUPS  # CloudWatch: at most 255 characters
        row = gauges.setdefault(label, {s.value: 0 for s in Status})
        row[status] = row.get(status, 0) + count
    return gauges


def _scope_label(scope: str | None) -> str:
    return "fleet" if scope is None else scope


def _log_plan(plan: SweepPlan, override_guard: bool) -> None:
    for note in plan.notes:
        logger.warning("Sweep: " + note)
    for scope, decision in plan.scopes.items():
        if decision.state.held:
            logger.error(
                "Sweep held: " + ("overridden by the operator" if override_guard else "no runner of it is flagged"),
                extra={"scope": scope_name(scope), "state": decision.state.value, "why": decision.why},
            )
        elif decision.state is ScopeState.PARTIAL:
            logger.warning(
                "Most of a scope is silent while the rest is heard: its silent runners are flagged",
                extra={"scope": scope_name(scope), "why": decision.why},
            )
    for short in plan.short_thresholds:
        logger.warning(
            "A threshold is under twice its worker group's beat period: the guard cannot tell our outage from "
            "deaths in time there",
            extra={
                "workerGroup": short.worker_group,
                "staleAfterSeconds": short.threshold,
                "beatPeriod": round(short.period),
            },
        )


def _publish(
    store: RunnerStore, events: StaleEventPublisher | None, owed: list[StaleRunner]
) -> tuple[list[str], list[str]]:
    """Publish the owed stale events; returns the ids published and those still owed."""
    if events is None or not owed:
        return [], [runner.taskrunner_id for runner in owed]
    published, still_owed = events.publish(owed)
    for taskrunner_id in published:
        store.event_published(taskrunner_id)
    if still_owed:
        logger.error("Stale events not published; the next sweep retries them", extra={"owed": len(still_owed)})
    return published, still_owed


def _stale_runner(candidate: SweepCandidate, stale_at: float, threshold: int) -> StaleRunner:
    return StaleRunner(
        taskrunner_id=candidate.taskrunner_id,
        last_seen=candidate.last_seen,
        stale_at=stale_at,
        stale_after_seconds=threshold,
        hostname=candidate.hostname,
        worker_group=candidate.worker_group,
    )


@cache
def _dependencies() -> tuple[RunnerStore, Config, StaleEventPublisher]:
    import boto3

    config = Config.from_env(os.environ)
    client = boto3.client("dynamodb", config=SWEEPER_CLIENT_CONFIG)
    keys_table = config.keys_table_name if config.auth_mode is AuthMode.SIGV4 else None
    store = RunnerStore(config.table_name, client=client, keys_table_name=keys_table or None)
    return store, config, StaleEventPublisher(config.event_bus_name)


@logger.inject_lambda_context
@trace_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store, config, events = _dependencies()
    report = sweep(store, config, time.time(), events, clock=time.time)
    for name, value in (
        (MetricName.RUNNERS_EXAMINED, report.examined),
        (MetricName.RUNNERS_STALE, report.stale),
        (MetricName.RUNNERS_FLAGGED, report.flagged),
        (MetricName.RUNNERS_IN_GRACE, report.in_grace),
        (MetricName.SCOPES_HELD, len(report.held)),
        (MetricName.SCOPES_PARTIAL, len(report.partial)),
        (MetricName.SHORT_THRESHOLDS, len(report.short_thresholds)),
        (MetricName.EVENTS_PUBLISHED, report.events_published),
        (MetricName.EVENTS_OWED, report.events_owed),
        (MetricName.SWEEPS_COMPLETED, 1),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    _emit_worker_group_gauges(report.by_worker_group)
    logger.info("Sweep finished", extra=asdict(report))
    return asdict(report)


def _emit_worker_group_gauges(gauges: dict[str, dict[str, int]]) -> None:
    """One EMF record per (worker group, status): dimensions service, workerGroup, status (the dashboard's search)."""
    for group, counts in gauges.items():
        for status, count in counts.items():
            with single_metric(
                name=MetricName.RUNNERS, unit=MetricUnit.Count, value=count, namespace=NAMESPACE
            ) as gauge:
                gauge.add_dimension(name="service", value=SERVICE)
                gauge.add_dimension(name="workerGroup", value=group)
                gauge.add_dimension(name="status", value=status)
