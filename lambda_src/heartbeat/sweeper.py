"""The sweeper: run on a schedule, it flags runners that went silent.

A flagged runner's next heartbeat answers ``terminate: true``. Each flag is a
conditional write, so a heartbeat (or an operator's reset) landing at the same moment
wins. Two guards keep an outage of our own from becoming a fleet-wide kill: the
mass-staleness guard (runners.judge_fleet), and a full threshold of grace after the
sweeper itself has not run for a while. Silence counts from the latest of the runner's
last heartbeat, its last reset, the start of the sweeper's watch and the last sweep
at which the guard held its fleet or worker group (runners.silence_start).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat.clients import SWEEPER_CLIENT_CONFIG
from heartbeat.config import AuthMode, Config
from heartbeat.events import StaleEventPublisher, StaleRunner
from heartbeat.observability import MetricName, logger, metrics, trace_lambda_handler
from heartbeat.runners import (
    Census,
    GuardVerdict,
    Hold,
    Status,
    hold_grace,
    is_quiet,
    is_stale,
    judge_fleet,
    next_hold,
    silence_start,
    stale_after_for,
    watching_since,
)
from heartbeat.store import RunnerStore, StoreError, SweepCandidate, SweepState


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    examined: int  # active runners looked at
    stale: int  # of those, silent for longer than their threshold since the sweeper's watch began
    flagged: int  # flagged by this sweep (a heartbeat may win the race for the others)
    guard_tripped: bool  # the fleet-wide mass-staleness guard held every flag back
    guarded_groups: list[str]  # worker groups whose own guard held their flags back
    events_published: int  # stale events accepted by EventBridge, this sweep's and any owed from before
    events_owed: int  # stale events still owed after this sweep (published by the next)
    watching_since: float  # since when silence counts against a runner
    quiet: int = 0  # active runners with no heartbeat for more than half their threshold (the guard's evidence)
    in_grace: int = 0  # stale, but held by the guard now or within a threshold of its last held sweep
    state_saved: bool = True  # False: a sweep that started later had already saved its state


def sweep(
    store: RunnerStore,
    config: Config,
    now: float,
    events: StaleEventPublisher | None = None,
    *,
    override_guard: bool = False,
    clock: Callable[[], float] | None = None,
) -> SweepReport:
    """Flag every stale, still-active runner, unless that looks like our own outage; publish their events.

    now is when the sweep starts; clock, when given, tells when it finished, so that the
    sweeper's down time is measured from the end of its last run, not its start.
    override_guard flags past a held guard and its grace: for an operator who has
    confirmed the runners are gone.
    """
    previous = store.load_sweep_state()
    since = _watch(previous, now, config)
    census: defaultdict[str | None, Census] = defaultdict(Census)
    stale: list[tuple[SweepCandidate, int]] = []
    owed: list[StaleRunner] = []
    keys = store.begin_key_census()  # with authentication on: each key's runners, counted by this scan
    for candidate in store.sweep_candidates(now, keys):
        threshold = stale_after_for(
            candidate.worker_group, config.stale_after_seconds, config.stale_after_by_worker_group
        )
        if candidate.status == Status.ACTIVE.value:
            # Quiet is judged by heartbeats alone: an operator's resets during our outage are no sign that
            # heartbeats arrive, and must not let the guard go.
            census[candidate.worker_group] += Census(1, int(is_quiet(candidate.last_seen, now, threshold)))
            heard = silence_start(candidate.last_seen, candidate.reset_at)
            if is_stale(heard, now, threshold, since):
                stale.append((candidate, threshold))
        elif candidate.event_pending:
            owed.append(_stale_runner(candidate, candidate.stale_at or now, threshold))

    verdict = judge_fleet(census, config.stale_after_by_worker_group.keys(), config.mass_stale_fraction)
    fleet_hold, group_holds = _holds(previous, verdict, now, config)
    examined = sum(c.active for c in census.values())
    quiet = sum(c.quiet for c in census.values())
    if verdict.fleet_held or verdict.groups_held:
        logger.error(
            "Mass-staleness guard tripped: " + ("overridden by the operator" if override_guard else "flags held back"),
            extra={
                "stale": len(stale),
                "quiet": quiet,
                "active": examined,
                "fleetWide": verdict.fleet_held,
                "workerGroups": sorted(str(g) for g in verdict.groups_held),
                "massStaleFraction": config.mass_stale_fraction,
            },
        )
    flagged = in_grace = 0
    for candidate, threshold in stale:
        if not override_guard:
            # Held now or lately: silence counts only from the spell's last held sweep (now, while it lasts),
            # so a fleet coming back from our outage gets a full threshold to beat again.
            heard = silence_start(candidate.last_seen, candidate.reset_at, since)
            start = silence_start(
                heard,
                hold_grace(fleet_hold, heard, threshold),
                hold_grace(group_holds.get(candidate.worker_group), heard, threshold),
            )
            if not is_stale(start, now, threshold, since):
                in_grace += 1
                continue
        if store.flag_stale(candidate.taskrunner_id, last_seen_before=now - threshold, now=now):
            flagged += 1
            owed.append(_stale_runner(candidate, now, threshold))
            logger.info(
                "Flagged runner stale",
                extra={"taskrunnerId": candidate.taskrunner_id, "lastSeen": candidate.last_seen},
            )

    published, still_owed = _publish(store, events, owed)
    if keys is not None:
        try:
            store.record_key_census(keys)
        except StoreError:  # the flags are done; the next sweep counts again
            logger.exception("Could not record the keys' runner counts; the next sweep counts again")
    saved = store.save_sweep_state(
        SweepState(
            last_sweep_at=now,
            watching_since=since,
            finished_at=clock() if clock is not None else now,
            fleet_hold=fleet_hold,
            group_holds=group_holds,
        )
    )
    if not saved:
        logger.warning("A sweep that started later has saved its state already; this one's is dropped")
    return SweepReport(
        examined=examined,
        stale=len(stale),
        flagged=flagged,
        guard_tripped=verdict.fleet_held,
        guarded_groups=sorted(str(g) for g in verdict.groups_held),
        events_published=len(published),
        events_owed=len(still_owed),
        watching_since=since,
        quiet=quiet,
        in_grace=in_grace,
        state_saved=saved,
    )


def _watch(previous: SweepState | None, now: float, config: Config) -> float:
    """Since when the sweeper has watched without a gap, its down time measured from the end of its last run."""
    shortest_threshold = min([config.stale_after_seconds, *config.stale_after_by_worker_group.values()])
    since = watching_since(
        (previous.finished_at or previous.last_sweep_at) if previous else None,
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
    return since


def _holds(
    previous: SweepState | None, verdict: GuardVerdict, now: float, config: Config
) -> tuple[Hold | None, dict[str | None, Hold]]:
    """The fleet's and the worker groups' holds after this sweep."""
    previous_sweep_at = previous.last_sweep_at if previous else None
    fleet_hold = next_hold(previous.fleet_hold if previous else None, verdict.fleet_held, now, previous_sweep_at)
    group_holds = _recent_holds(previous, now, config)
    for group in verdict.groups_held:
        hold = next_hold(group_holds.get(group), True, now, previous_sweep_at)
        if hold is not None:
            group_holds[group] = hold
    return fleet_hold, group_holds


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


def _recent_holds(previous: SweepState | None, now: float, config: Config) -> dict[str | None, Hold]:
    """The worker groups' holds that still give grace (within the longest threshold); older ones are dropped."""
    if previous is None:
        return {}
    longest = max([config.stale_after_seconds, *config.stale_after_by_worker_group.values()])
    return {group: hold for group, hold in previous.group_holds.items() if now - hold.last <= longest}


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
