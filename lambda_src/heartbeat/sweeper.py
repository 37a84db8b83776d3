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

import math
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat.clients import SWEEPER_CLIENT_CONFIG
from heartbeat.config import Config
from heartbeat.events import StaleEventPublisher, StaleRunner
from heartbeat.fan_out import WorkQueue
from heartbeat.flagging import Deadline, FlagOrder, Outcome, carry_out, event_from_row, event_to_row
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
from heartbeat.spool import Spool
from heartbeat.store import RunnerStore, SweepCandidate, SweepState


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
    left: int = 0  # to flag, but not attempted before the sweep's deadline: the next sweep continues
    lost: int = 0  # to flag, but a heartbeat or a reset won the race
    fanned_out: int = 0  # to flag, handed to the workers (fan_out.py) in work_messages messages
    work_messages: int = 0
    workers_busy: bool = False  # the workers' queue still held work: this sweep judged, and flagged nothing


class SweepInProgress(Exception):
    """Another sweep holds the lease; until is when its lease ends at the latest."""

    def __init__(self, until: float) -> None:
        super().__init__(f"another sweep is running (its lease ends by {until:.0f})")
        self.until = until


# A sweep with no deadline of its own (tests, a caller that waits) holds the lease this long at most.
LEASE_WITHOUT_DEADLINE_SECONDS = 300.0


def sweep(
    store: RunnerStore,
    config: Config,
    now: float,
    events: StaleEventPublisher | None = None,
    *,
    override_guard: bool = False,
    clock: Callable[[], float] | None = None,
    deadline: Deadline | None = None,
    work_queue: WorkQueue | None = None,
) -> SweepReport:
    """Flag every stale, still-active runner, unless that looks like our own outage; publish their events.

    now is when the sweep starts; clock, when given, tells when it finished, so that the
    sweeper's down time is measured from the end of its last run, not its start.
    override_guard flags past a held guard and its grace: for an operator who has
    confirmed the runners are gone. deadline: past it the sweep starts no new flag and saves its
    state; the runners it did not reach are still stale, and the next sweep flags them. work_queue:
    where flags go when more are due than this sweep can write before its deadline (fan_out.py).
    Raises SweepInProgress when another sweep holds the lease.
    """
    deadline = deadline or Deadline.never()
    holder = uuid.uuid4().hex
    remaining = deadline.remaining()
    until = now + (remaining if math.isfinite(remaining) else LEASE_WITHOUT_DEADLINE_SECONDS) + LEASE_MARGIN_SECONDS
    held_until = store.acquire_lease(holder, now, until)
    if held_until is not None:
        raise SweepInProgress(held_until)
    try:
        with Spool() as maybe_stale, Spool() as owed:
            return _sweep(
                store, config, now, events,
                override_guard=override_guard, clock=clock, deadline=deadline, work_queue=work_queue,
                spools=_Spools(maybe_stale, owed),
            )  # fmt: skip
    finally:
        store.release_lease(holder)


# A sweep writes its flags itself when they fit the time it has left at this rate (flags a second, with their
# events: make bench measures about twice this on one vCPU); beyond, it hands them to the workers.
INLINE_FLAGS_PER_SECOND = 300


def inline_capacity(deadline: Deadline) -> float:
    """How many flags a sweep writes itself before its deadline (inf without one)."""
    return deadline.remaining() * INLINE_FLAGS_PER_SECOND


# Past the deadline a sweep still waits for its writes in flight, publishes the last events and saves its state.
LEASE_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class _Spools:
    maybe_stale: Spool  # active runners stale by their threshold, before the guard has judged
    owed: Spool  # events owed from earlier sweeps


def _sweep(
    store: RunnerStore,
    config: Config,
    now: float,
    events: StaleEventPublisher | None,
    *,
    override_guard: bool,
    clock: Callable[[], float] | None,
    deadline: Deadline,
    work_queue: WorkQueue | None,
    spools: _Spools,
) -> SweepReport:
    maybe_stale = spools.maybe_stale
    previous = store.load_sweep_state()
    since = _watch(previous, now, config)
    census = _read(store, config, now, since, spools)
    verdict = judge_fleet(census, config.stale_after_by_worker_group.keys(), config.mass_stale_fraction)
    fleet_hold, group_holds = _holds(previous, verdict, now, config)
    examined = sum(c.active for c in census.values())
    quiet = sum(c.quiet for c in census.values())
    if verdict.fleet_held or verdict.groups_held:
        logger.error(
            "Mass-staleness guard tripped: " + ("overridden by the operator" if override_guard else "flags held back"),
            extra={
                "stale": len(maybe_stale),
                "quiet": quiet,
                "active": examined,
                "fleetWide": verdict.fleet_held,
                "workerGroups": sorted(str(g) for g in verdict.groups_held),
                "massStaleFraction": config.mass_stale_fraction,
            },
        )
    decisions = _Decisions(maybe_stale, now, since, fleet_hold, group_holds, override_guard=override_guard)
    written = _write(store, events, deadline=deadline, work_queue=work_queue, decisions=decisions, owed=spools.owed)
    outcome = written.outcome
    left = (decisions.ordered - written.started) + (len(maybe_stale) - decisions.decided)
    if left and not written.workers_busy:
        logger.warning(
            "Sweep deadline reached: the next sweep flags the rest", extra={"flagged": outcome.flagged, "left": left}
        )
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
        stale=len(maybe_stale),
        flagged=outcome.flagged,
        guard_tripped=verdict.fleet_held,
        guarded_groups=sorted(str(g) for g in verdict.groups_held),
        events_published=outcome.events_published,
        events_owed=outcome.events_owed,
        watching_since=since,
        quiet=quiet,
        in_grace=decisions.in_grace,
        state_saved=saved,
        left=left,
        lost=outcome.lost,
        fanned_out=written.fanned_out,
        work_messages=written.messages,
        workers_busy=written.workers_busy,
    )


def _read(store: RunnerStore, config: Config, now: float, since: float, spools: _Spools) -> dict[str | None, Census]:
    """Count the census, and spool the runners that may be flagged and the events still owed.

    The census needs the whole fleet before the guard can judge; meanwhile every runner that may
    be flagged waits in a spool (memory stays flat however many there are).
    """
    census: defaultdict[str | None, Census] = defaultdict(Census)
    for candidate in store.sweep_candidates(now):
        threshold = stale_after_for(
            candidate.worker_group, config.stale_after_seconds, config.stale_after_by_worker_group
        )
        if candidate.status == Status.ACTIVE.value:
            # Quiet is judged by heartbeats alone: an operator's resets during our outage are no sign that
            # heartbeats arrive, and must not let the guard go.
            census[candidate.worker_group] += Census(1, int(is_quiet(candidate.last_seen, now, threshold)))
            heard = silence_start(candidate.last_seen, candidate.reset_at)
            if is_stale(heard, now, threshold, since):
                spools.maybe_stale.append(_candidate_row(candidate, threshold))
        elif candidate.event_pending:
            spools.owed.append(event_to_row(_stale_runner(candidate, candidate.stale_at or now, threshold)))
    return census


class _Decisions:
    """The spooled runners decided one at a time, as they are taken: the runners to flag, in grace counted.

    Lazy, so a sweep past its deadline decides no more than it writes or sends.
    """

    def __init__(
        self,
        maybe_stale: Spool,
        now: float,
        since: float,
        fleet_hold: Hold | None,
        group_holds: dict[str | None, Hold],
        *,
        override_guard: bool,
    ) -> None:
        self._rows, self._now, self._since = maybe_stale, now, since
        self._fleet_hold, self._group_holds, self._override = fleet_hold, group_holds, override_guard
        self.decided = self.in_grace = self.ordered = 0

    @property
    def due(self) -> int:
        """The runners that may be flagged, decided or not."""
        return len(self._rows)

    def __iter__(self) -> Iterator[FlagOrder]:
        for row in self._rows:
            candidate, threshold = _from_candidate_row(row)
            self.decided += 1
            if not self._override and _in_grace(
                candidate, threshold, self._now, self._since,
                fleet_hold=self._fleet_hold, group_holds=self._group_holds,
            ):  # fmt: skip
                self.in_grace += 1
                continue
            self.ordered += 1
            yield _order(candidate, threshold, self._now)


@dataclass(frozen=True)
class _Written:
    outcome: Outcome
    started: int = 0  # orders written here or handed to the workers
    fanned_out: int = 0
    messages: int = 0
    workers_busy: bool = False


def _write(
    store: RunnerStore,
    events: StaleEventPublisher | None,
    *,
    deadline: Deadline,
    work_queue: WorkQueue | None,
    decisions: _Decisions,
    owed: Spool,
) -> _Written:
    """Write the flags and publish the owed events: here, or through the workers when they would not fit.

    Whether they fit is judged by the runners that may be flagged (an upper bound: some may be in
    grace), so the decision needs no second pass over them.
    """
    due = decisions.due
    to_publish = (event_from_row(row) for row in owed)
    backlog = work_queue.backlog() if work_queue is not None else None
    if backlog:
        # The workers are still writing an earlier sweep's flags (their runners are still stale, and their events
        # maybe not yet published): this sweep leaves them theirs.
        logger.warning("Workers still busy with an earlier sweep's flags: none sent", extra={"due": due})
        return _Written(Outcome(events_owed=len(owed)), workers_busy=True)
    if work_queue is not None and backlog is not None and due > inline_capacity(deadline):
        sent = work_queue.send(decisions, to_publish, deadline)
        logger.info("Flags handed to the workers", extra={"due": due, **asdict(sent)})
        return _Written(
            Outcome(events_owed=len(owed) - sent.owed), started=sent.orders, fanned_out=sent.orders,
            messages=sent.messages,
        )  # fmt: skip
    outcome = carry_out(decisions, to_publish, store, events, deadline)
    return _Written(outcome, started=outcome.attempted)


def _in_grace(
    candidate: SweepCandidate,
    threshold: int,
    now: float,
    since: float,
    *,
    fleet_hold: Hold | None,
    group_holds: dict[str | None, Hold],
) -> bool:
    """Whether a stale runner is held back: its scope held now or lately (see runners.judge_fleet)."""
    # Held now or lately: silence counts only from the spell's last held sweep (now, while it lasts),
    # so a fleet coming back from our outage gets a full threshold to beat again.
    heard = silence_start(candidate.last_seen, candidate.reset_at, since)
    start = silence_start(
        heard,
        hold_grace(fleet_hold, heard, threshold),
        hold_grace(group_holds.get(candidate.worker_group), heard, threshold),
    )
    return not is_stale(start, now, threshold, since)


def _order(candidate: SweepCandidate, threshold: int, now: float) -> FlagOrder:
    return FlagOrder(
        taskrunner_id=candidate.taskrunner_id,
        last_seen=candidate.last_seen,
        stale_after_seconds=threshold,
        stale_at=now,
        hostname=candidate.hostname,
        worker_group=candidate.worker_group,
    )


def _candidate_row(candidate: SweepCandidate, threshold: int) -> tuple[Any, ...]:
    return (
        candidate.taskrunner_id,
        candidate.last_seen,
        candidate.worker_group,
        candidate.hostname,
        candidate.reset_at,
        threshold,
    )


def _from_candidate_row(row: tuple[Any, ...]) -> tuple[SweepCandidate, int]:
    candidate = SweepCandidate(
        taskrunner_id=row[0],
        status=Status.ACTIVE.value,
        last_seen=row[1],
        worker_group=row[2],
        hostname=row[3],
        reset_at=row[4],
    )
    return candidate, int(row[5])


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


# In Lambda a sweep keeps this much of its invocation for what follows its deadline: the writes in flight
# (each bounded by the client's timeouts and retries), the last events, and saving its state.
RESERVE_SECONDS = 30.0


@cache
def _dependencies() -> tuple[RunnerStore, Config, StaleEventPublisher, WorkQueue | None]:
    import boto3

    config = Config.from_env(os.environ)
    client = boto3.client("dynamodb", config=SWEEPER_CLIENT_CONFIG)
    work_queue = WorkQueue(config.work_queue_url) if config.work_queue_url else None
    return RunnerStore(config.table_name, client=client), config, StaleEventPublisher(config.event_bus_name), work_queue


def deadline_for(context: LambdaContext, config: Config, clock: Callable[[], float] = time.monotonic) -> Deadline:
    """The sweep's deadline: the invocation's remaining time less the reserve, and SWEEP_BUDGET_SECONDS if set."""
    seconds = context.get_remaining_time_in_millis() / 1000 - RESERVE_SECONDS
    if config.sweep_budget_seconds is not None:
        seconds = min(seconds, config.sweep_budget_seconds)
    return Deadline(max(0.0, seconds), clock)


@logger.inject_lambda_context
@trace_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store, config, events, work_queue = _dependencies()
    deadline = deadline_for(context, config)
    try:
        report = sweep(store, config, time.time(), events, clock=time.time, deadline=deadline, work_queue=work_queue)
    except SweepInProgress as busy:
        logger.warning("Another sweep holds the lease: this run stops", extra={"leaseUntil": busy.until})
        metrics.add_metric(name=MetricName.SWEEPS_SKIPPED, unit=MetricUnit.Count, value=1)
        return {"skipped": True, "lease_until": busy.until}
    metrics.add_metric(name=MetricName.RUNNERS_EXAMINED, unit=MetricUnit.Count, value=report.examined)
    metrics.add_metric(name=MetricName.RUNNERS_STALE, unit=MetricUnit.Count, value=report.stale)
    metrics.add_metric(name=MetricName.RUNNERS_FLAGGED, unit=MetricUnit.Count, value=report.flagged)
    tripped = report.guard_tripped or bool(report.guarded_groups)  # fleet-wide or in any one worker group
    metrics.add_metric(name=MetricName.SWEEP_GUARD_TRIPPED, unit=MetricUnit.Count, value=int(tripped))
    metrics.add_metric(name=MetricName.EVENTS_PUBLISHED, unit=MetricUnit.Count, value=report.events_published)
    metrics.add_metric(name=MetricName.EVENTS_OWED, unit=MetricUnit.Count, value=report.events_owed)
    metrics.add_metric(name=MetricName.FLAGS_LEFT, unit=MetricUnit.Count, value=report.left)
    metrics.add_metric(name=MetricName.SWEEPS_COMPLETED, unit=MetricUnit.Count, value=1)
    logger.info("Sweep finished", extra=asdict(report))
    return asdict(report)
