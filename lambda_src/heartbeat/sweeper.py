"""The sweeper: run on a schedule, it flags runners that went silent.

A flagged runner's next heartbeat answers ``terminate: true``. Each flag is a
conditional write, so a heartbeat landing at the same moment wins. Two guards keep
an outage of our own from becoming a fleet-wide kill: the mass-staleness guard,
and a full threshold of grace after the sweeper itself has not run for a while.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat.config import Config
from heartbeat.observability import MetricName, logger, metrics, trace_lambda_handler
from heartbeat.runners import is_stale, mass_staleness_guard_trips, watching_since
from heartbeat.store import RunnerStore, SweepState


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    examined: int  # active runners looked at
    stale: int  # of those, silent for longer than the threshold
    flagged: int  # flagged by this sweep (a heartbeat may win the race for the others)
    guard_tripped: bool  # the mass-staleness guard held every flag back
    watching_since: float  # since when silence counts against a runner


def sweep(store: RunnerStore, config: Config, now: float) -> SweepReport:
    """Flag every stale, still-active runner, unless that looks like our own outage."""
    previous = store.load_sweep_state()
    since = watching_since(
        previous.last_sweep_at if previous else None,
        previous.watching_since if previous else None,
        now,
        config.stale_after_seconds,
    )
    if previous is None or since != previous.watching_since:
        logger.warning(
            "Sweeper starts a new watch: every runner gets one full threshold of grace",
            extra={
                "lastSweepAt": previous.last_sweep_at if previous else None,
                "staleAfterSeconds": config.stale_after_seconds,
            },
        )
    examined = 0
    stale = []
    for runner in store.active_runners(now):
        examined += 1
        if is_stale(runner.last_seen, now, config.stale_after_seconds, since):
            stale.append(runner)
    guard_tripped = mass_staleness_guard_trips(len(stale), examined, config.mass_stale_fraction)
    flagged = 0
    if guard_tripped:
        logger.error(
            "Mass-staleness guard tripped: flagged no runner",
            extra={"stale": len(stale), "active": examined, "massStaleFraction": config.mass_stale_fraction},
        )
    else:
        cutoff = now - config.stale_after_seconds
        for runner in stale:
            if store.flag_stale(runner.taskrunner_id, last_seen_before=cutoff, now=now):
                flagged += 1
                logger.info(
                    "Flagged runner stale", extra={"taskrunnerId": runner.taskrunner_id, "lastSeen": runner.last_seen}
                )
    store.save_sweep_state(SweepState(last_sweep_at=now, watching_since=since))
    return SweepReport(
        examined=examined, stale=len(stale), flagged=flagged, guard_tripped=guard_tripped, watching_since=since
    )


@cache
def _store_and_config() -> tuple[RunnerStore, Config]:
    config = Config.from_env(os.environ)
    return RunnerStore(config.table_name), config


@logger.inject_lambda_context
@trace_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store, config = _store_and_config()
    report = sweep(store, config, time.time())
    metrics.add_metric(name=MetricName.RUNNERS_EXAMINED, unit=MetricUnit.Count, value=report.examined)
    metrics.add_metric(name=MetricName.RUNNERS_STALE, unit=MetricUnit.Count, value=report.stale)
    metrics.add_metric(name=MetricName.RUNNERS_FLAGGED, unit=MetricUnit.Count, value=report.flagged)
    metrics.add_metric(name=MetricName.SWEEP_GUARD_TRIPPED, unit=MetricUnit.Count, value=int(report.guard_tripped))
    metrics.add_metric(name=MetricName.SWEEPS_COMPLETED, unit=MetricUnit.Count, value=1)
    logger.info("Sweep finished", extra=asdict(report))
    return asdict(report)
