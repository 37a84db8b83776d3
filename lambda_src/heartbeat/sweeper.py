"""The sweeper: run on a schedule, it flags runners that went silent.

A flagged runner's next heartbeat answers ``terminate: true``. Each flag is a
conditional write, so a heartbeat landing at the same moment wins. Two guards keep
an outage of our own from becoming a fleet-wide kill: the mass-staleness guard,
and a full threshold of grace after the sweeper itself has not run for a while.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat.config import Config
from heartbeat.events import StaleEventPublisher, StaleRunner
from heartbeat.observability import MetricName, logger, metrics, trace_lambda_handler
from heartbeat.runners import Status, is_stale, mass_staleness_guard_trips, stale_after_for, watching_since
from heartbeat.store import RunnerStore, SweepCandidate, SweepState


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    examined: int  # active runners looked at
    stale: int  # of those, silent for longer than their threshold
    flagged: int  # flagged by this sweep (a heartbeat may win the race for the others)
    guard_tripped: bool  # the fleet-wide mass-staleness guard held every flag back
    guarded_groups: list[str]  # worker groups whose own guard held their flags back
    events_published: int  # stale events accepted by EventBridge, this sweep's and any owed from before
    events_owed: int  # stale events still owed after this sweep (published by the next)
    watching_since: float  # since when silence counts against a runner


def sweep(
    store: RunnerStore,
    config: Config,
    now: float,
    events: StaleEventPublisher | None = None,
    *,
    override_guard: bool = False,
) -> SweepReport:
    """Flag every stale, still-active runner, unless that looks like our own outage; publish their events.

    override_guard flags past a tripped guard: for an operator who has confirmed the runners are gone.
    """
    previous = store.load_sweep_state()
    shortest_threshold = min([config.stale_after_seconds, *config.stale_after_by_worker_group.values()])
    since = watching_since(
        previous.last_sweep_at if previous else None,
        previous.watching_since if previous else None,
        now,
        shortest_threshold,
    )
    if previous is None or since != previous.watching_since:
        logger.warning(
            "Sweeper starts a new watch: every runner gets one full threshold of grace",
            extra={
                "lastSweepAt": previous.last_sweep_at if previous else None,
                "staleAfterSeconds": shortest_threshold,
            },
        )
    active: Counter[str | None] = Counter()
    stale: list[tuple[SweepCandidate, int]] = []
    owed: list[StaleRunner] = []
    for candidate in store.sweep_candidates(now):
        threshold = stale_after_for(
            candidate.worker_group, config.stale_after_seconds, config.stale_after_by_worker_group
        )
        if candidate.status == Status.ACTIVE.value:
            active[candidate.worker_group] += 1
            if is_stale(candidate.last_seen, now, threshold, since):
                stale.append((candidate, threshold))
        elif candidate.event_pending:
            owed.append(_stale_runner(candidate, candidate.stale_at or now, threshold))

    stale_by_group = Counter(candidate.worker_group for candidate, _ in stale)
    guard_tripped = mass_staleness_guard_trips(len(stale), sum(active.values()), config.mass_stale_fraction)
    guarded = {
        group
        for group, count in stale_by_group.items()
        if mass_staleness_guard_trips(count, active[group], config.mass_stale_fraction)
    }
    if guard_tripped or guarded:
        logger.error(
            "Mass-staleness guard tripped: " + ("overridden by the operator" if override_guard else "flags held back"),
            extra={
                "stale": len(stale),
                "active": sum(active.values()),
                "fleetWide": guard_tripped,
                "workerGroups": sorted(str(g) for g in guarded),
                "massStaleFraction": config.mass_stale_fraction,
            },
        )
    flagged = 0
    for candidate, threshold in stale:
        if not override_guard and (guard_tripped or candidate.worker_group in guarded):
            continue
        if store.flag_stale(candidate.taskrunner_id, last_seen_before=now - threshold, now=now):
            flagged += 1
            owed.append(_stale_runner(candidate, now, threshold))
            logger.info(
                "Flagged runner stale",
                extra={"taskrunnerId": candidate.taskrunner_id, "lastSeen": candidate.last_seen},
            )

    published: list[str] = []
    still_owed = [runner.taskrunner_id for runner in owed]
    if events is not None and owed:
        published, still_owed = events.publish(owed)
        for taskrunner_id in published:
            store.event_published(taskrunner_id)
        if still_owed:
            logger.error("Stale events not published; the next sweep retries them", extra={"owed": len(still_owed)})
    store.save_sweep_state(SweepState(last_sweep_at=now, watching_since=since))
    return SweepReport(
        examined=sum(active.values()),
        stale=len(stale),
        flagged=flagged,
        guard_tripped=guard_tripped,
        guarded_groups=sorted(str(g) for g in guarded),
        events_published=len(published),
        events_owed=len(still_owed),
        watching_since=since,
    )


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
    config = Config.from_env(os.environ)
    return RunnerStore(config.table_name), config, StaleEventPublisher(config.event_bus_name)


@logger.inject_lambda_context
@trace_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store, config, events = _dependencies()
    report = sweep(store, config, time.time(), events)
    metrics.add_metric(name=MetricName.RUNNERS_EXAMINED, unit=MetricUnit.Count, value=report.examined)
    metrics.add_metric(name=MetricName.RUNNERS_STALE, unit=MetricUnit.Count, value=report.stale)
    metrics.add_metric(name=MetricName.RUNNERS_FLAGGED, unit=MetricUnit.Count, value=report.flagged)
    tripped = report.guard_tripped or bool(report.guarded_groups)  # fleet-wide or in any one worker group
    metrics.add_metric(name=MetricName.SWEEP_GUARD_TRIPPED, unit=MetricUnit.Count, value=int(tripped))
    metrics.add_metric(name=MetricName.EVENTS_PUBLISHED, unit=MetricUnit.Count, value=report.events_published)
    metrics.add_metric(name=MetricName.EVENTS_OWED, unit=MetricUnit.Count, value=report.events_owed)
    metrics.add_metric(name=MetricName.SWEEPS_COMPLETED, unit=MetricUnit.Count, value=1)
    logger.info("Sweep finished", extra=asdict(report))
    return asdict(report)
