"""The sweeper: run on a schedule, it carries out the sweep's plan (plan.py), at any scale.

It scans the fleet into a census while it spools the runners past their threshold (spool.py:
memory stays flat however many there are), asks plan.plan_sweep for the plan once the census of
the whole fleet is complete, then judges each spooled runner with plan.judge as it is taken, by
the pool of conditional writes (flagging.py) or by the work messages of the sweep's workers
(fan_out.py). Each flag is a conditional write on the judgement's cutoff, so a heartbeat, reset or
retire landing at the same moment wins. A sweep stops starting flags at its deadline and saves the
plan's next state all the same: the runners it did not reach are still active and stale, and the
next sweep flags them. A lease in the table keeps two sweeps from running at once.
docs/performance.md ("Sweeper scale") has the measured figures and the design's reasons.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext

from heartbeat.clients import SWEEPER_CLIENT_CONFIG
from heartbeat.config import AuthMode, Config
from heartbeat.events import StaleEventPublisher, StaleRunner
from heartbeat.fan_out import CHUNK_ORDERS, LANES, Sent, WorkQueue, handout, lane_of
from heartbeat.flagging import (
    LATE_FLAGS,
    LATE_JUDGED_AT_MOST,
    Deadline,
    FlagOrder,
    Outcome,
    carry_out,
    event_from_row,
    event_to_row,
)
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
from heartbeat.plan import Census, Judgement, ScopeState, SweepPlan, Verdict, past_threshold, plan_sweep, scope_name
from heartbeat.runners import Status
from heartbeat.spool import Spool, Spools
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
    in_grace: int  # judged past their threshold but not flagged (a hold, a new watch or a reset); of those judged
    scopes: dict[str, str] = field(default_factory=dict)  # each scope ("fleet", or a worker group): "state (why)"
    held: list[str] = field(default_factory=list)  # scopes held: "fleet", or a worker group's name
    partial: list[str] = field(default_factory=list)  # scopes mostly silent while the rest is heard
    short_thresholds: list[str] = field(default_factory=list)  # worker groups beating too slowly for their threshold
    events_published: int = 0  # stale events accepted by EventBridge, this sweep's and any owed from before
    events_owed: int = 0  # stale events still owed after this sweep (published by the next)
    watching_since: float = 0.0  # since when silence counts against a runner
    state_saved: bool = True  # False: a sweep that started later had already saved its state
    # Past their threshold and not judged or written by this sweep (its deadline, or lanes the workers hold): the
    # next sweep goes on. Some of them may be in grace: a sweep cut short counts in_grace and left so far.
    left: int = 0
    lost: int = 0  # judged stale, but a heartbeat or a reset won the race
    fanned_out: int = 0  # judged stale and handed to the workers (fan_out.py), in work_messages messages
    work_messages: int = 0
    workers_busy: bool = False  # the workers' queue still held work: this sweep took on only lanes not handed out
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
    """Read the fleet and plan the sweep, holding its candidates in lists; writes nothing.

    heartbeat-ops runners sweep --dry-run prints this. The scheduled sweep reads the same way
    (_read), but spools its candidates instead and judges them as it writes.
    """
    previous = store.load_sweep_state()
    candidates: list[SweepCandidate] = []
    owed: list[StaleRunner] = []
    statuses: StatusCounts = {}
    census, keys = _read(store, config, now, candidate=candidates.append, owed=owed.append, statuses=statuses)
    plan = plan_sweep(census, config, now, previous, override_guard=override_guard)
    return Scan(plan, census, [(c, plan.judge(c)) for c in candidates], owed, keys, statuses)


def _read(
    store: RunnerStore,
    config: Config,
    now: float,
    *,
    candidate: Callable[[SweepCandidate], Any],
    owed: Callable[[StaleRunner], Any],
    statuses: StatusCounts,
) -> tuple[Census, KeyCensus | None]:
    """Count the whole fleet's census; hand on each runner past its threshold, and each event still owed.

    Only the runners past their threshold on their own account (plan.past_threshold) can be
    flagged; every other runner is judged heard or silent by the census alone. statuses counts
    every live runner by worker group and status (the dashboard's gauges).
    """
    census = Census(now)
    keys = store.begin_key_census()
    for runner in store.sweep_candidates(now, keys, statuses):
        if runner.status == Status.ACTIVE.value:
            census.add(runner, config)
            if past_threshold(runner, config, now):
                candidate(runner)
        elif runner.event_pending:
            owed(_stale_runner(runner, runner.stale_at or now, config.stale_after_for(runner.worker_group)))
    return census, keys


class SweepInProgress(Exception):
    """Another sweep holds the lease; until is when its lease ends at the latest."""

    def __init__(self, until: float) -> None:
        super().__init__(f"another sweep is running (its lease ends by {until:.0f})")
        self.until = until


# A sweep with no deadline of its own (tests, a caller that waits) holds the lease this long at most.
LEASE_WITHOUT_DEADLINE_SECONDS = 300.0
# Past the deadline a sweep still waits for its writes in flight, publishes the last events and saves its state.
LEASE_MARGIN_SECONDS = 60.0


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
    on_flag: Callable[[FlagOrder], None] | None = None,
) -> SweepReport:
    """Carry out the plan: flag the stale runners, publish their events, save the next state.

    now is when the sweep starts, by the service's clock; clock, when given, tells when it
    finished, so that the sweeper's down time is measured from the end of its last run.
    override_guard flags past held scopes and their grace: for an operator who has confirmed
    the runners are gone. deadline: past it the sweep starts no new flag and saves its state;
    the runners it did not reach are still stale, and the next sweep flags them. work_queue:
    where flags go when more may be due than this sweep can write before its deadline.
    on_flag, when given, is told of each runner this sweep flagged itself (heartbeat-ops names
    them; the report only counts them, so its size never grows with the fleet). Raises
    SweepInProgress when another sweep holds the lease.
    """
    deadline = deadline or Deadline.never()
    holder = uuid.uuid4().hex
    started = time.monotonic()
    lease = store.acquire_lease(holder, now, _lease_until(now, deadline.remaining()))
    if not lease.taken:
        raise SweepInProgress(lease.until)
    handed_out = lease.handed_out
    try:
        # Read before the scan: an empty queue then means no worker writes or publishes while the scan reads (only
        # the lease's holder hands work out), so the events the scan finds owed are this sweep's alone.
        backlog = work_queue.backlog() if work_queue is not None else None
        previous = store.load_sweep_state()
        statuses: StatusCounts = {}
        with Spools(LANES) as candidates, Spool() as owed:
            census, keys = _read(
                store, config, now,
                candidate=lambda runner: candidates.append(lane_of(runner.taskrunner_id), _candidate_row(runner)),
                owed=lambda runner: owed.append(event_to_row(runner)),
                statuses=statuses,
            )  # fmt: skip
            plan = plan_sweep(census, config, now, previous, override_guard=override_guard)
            # The scan may have taken longer than the lease foresaw: hold it for the writes, or write nothing.
            remaining = deadline.remaining()
            current = clock or (lambda: now + time.monotonic() - started)
            renewed = store.renew_lease(holder, _lease_until(now + time.monotonic() - started, remaining))
            if not renewed.taken:
                raise SweepInProgress(renewed.until)
            _log_plan(plan, override_guard)
            judged = _Judged(plan, candidates, deadline, late=remaining <= 0)
            written = _write(
                store, events, work_queue=work_queue, backlog=backlog, judged=judged, owed=owed, on_flag=on_flag,
                capacity=inline_capacity(remaining), handed_out=lease.handed_out, clock=current,
                # Its claims on events last until this sweep can no longer be running (unbounded: CLAIM_SECONDS).
                claim_until=(
                    current() + remaining + deadline.overrun
                    if math.isfinite(remaining) and deadline.overrun is not None
                    else None
                ),
            )  # fmt: skip
            handed_out = written.handed_out
            return _finish(
                store, plan, census=census, keys=keys, statuses=statuses, judged=judged, written=written, clock=clock
            )
    finally:
        store.release_lease(holder, handed_out)


def _lease_until(now: float, remaining: float) -> float:
    """When a sweep's lease ends: its deadline (or LEASE_WITHOUT_DEADLINE_SECONDS without one) and the margin."""
    seconds = remaining if math.isfinite(remaining) else LEASE_WITHOUT_DEADLINE_SECONDS
    return now + max(0.0, seconds) + LEASE_MARGIN_SECONDS


# A sweep writes its flags itself when they fit the time it has left at this rate (flags a second, with their
# events: make bench measures about twice this on one vCPU); beyond, it hands them to the workers.
INLINE_FLAGS_PER_SECOND = 300


def inline_capacity(remaining: float) -> float:
    """How many flags a sweep writes itself in the seconds remaining before its deadline (inf without one)."""
    return max(0.0, remaining) * INLINE_FLAGS_PER_SECOND


# A sweep judging runners it does not flag (a held fleet: all in grace) reads its deadline once per this many.
JUDGE_DEADLINE_EVERY = 1000


class _Judged:
    """The spooled runners judged by the plan one at a time, as they are taken: the flags to write.

    Lazy, so a sweep past its deadline judges no more than it writes or sends; and it stops at the
    deadline even while it judges runners it does not flag (a held fleet of millions, all in grace),
    so that the sweep still ends in time and saves its state. The runners are spooled by lane
    (fan_out.lane_of), and taken lane after lane from first_lane.
    """

    def __init__(self, plan: SweepPlan, candidates: Spools, deadline: Deadline, *, late: bool) -> None:
        self._plan, self._rows, self.deadline = plan, candidates, deadline
        self.judged = self.in_grace = self.ordered = 0
        self.late = late  # the deadline passed before any work began
        self.first_lane = 0  # set by _write: the lanes below are the workers'
        self._finished: set[int] = set()

    @property
    def due(self) -> int:
        """The runners past their threshold, judged or not."""
        return len(self._rows)

    def due_by_lane(self) -> list[int]:
        return [len(self._rows[lane]) for lane in range(LANES)]

    def finished(self, lane: int) -> bool:
        """Whether every runner of the lane was judged (the deadline did not cut it short)."""
        return lane in self._finished

    def __iter__(self) -> Iterator[FlagOrder]:
        for lane in range(self.first_lane, LANES):
            yield from self.lane(lane)
            if not self.finished(lane):
                return

    def lane(self, lane: int) -> Iterator[FlagOrder]:
        for row in self._rows[lane]:
            # Late (the scan used the time up): judge on until LATE_FLAGS orders, within a bound.
            searching = self.late and self.ordered < LATE_FLAGS and self.judged < LATE_JUDGED_AT_MOST
            if self.judged and self.judged % JUDGE_DEADLINE_EVERY == 0 and self.deadline.passed() and not searching:
                return
            candidate = _from_candidate_row(row)
            judgement = self._plan.judge(candidate)
            self.judged += 1
            if judgement.verdict is Verdict.GRACE:
                self.in_grace += 1
            elif judgement.verdict is Verdict.STALE:
                self.ordered += 1
                yield FlagOrder(
                    taskrunner_id=candidate.taskrunner_id,
                    last_seen=candidate.last_seen,
                    stale_after_seconds=judgement.threshold,
                    stale_at=self._plan.now,
                    cutoff=judgement.cutoff,
                    hostname=candidate.hostname,
                    worker_group=candidate.worker_group,
                )
        self._finished.add(lane)


@dataclass(frozen=True)
class _Written:
    outcome: Outcome
    started: int = 0  # orders written here or handed to the workers
    fanned_out: int = 0
    messages: int = 0
    workers_busy: bool = False
    handed_out: int = 0  # the first lane not handed to the workers, for the lease to record


def _write(
    store: RunnerStore,
    events: StaleEventPublisher | None,
    *,
    work_queue: WorkQueue | None,
    backlog: int | None,
    judged: _Judged,
    owed: Spool,
    on_flag: Callable[[FlagOrder], None] | None,
    capacity: float,
    handed_out: int,
    clock: Callable[[], float],
    claim_until: float | None,
) -> _Written:
    """Write the flags, then publish the owed events: here, or through the workers when they would not fit.

    fan_out.handout decides which lanes are this sweep's and whether they fit its time (judged by
    the runners past their threshold, an upper bound: some may be in grace), so the choice needs no
    second pass over them. A sweep that is late (its scan used the time up) still starts a little,
    or the next sweep, as long, never would.
    """
    decision = handout(backlog, handed_out, judged.due_by_lane(), capacity)
    judged.first_lane = decision.first_lane
    to_publish = (event_from_row(row) for row in owed)  # each claimed before it is published (flagging.py)
    if backlog:
        logger.info(
            "Workers still busy with earlier sweeps' flags: this sweep takes on only the lanes not handed out",
            extra={"backlog": backlog, "firstLane": decision.first_lane, "lanes": LANES},
        )
    if decision.fan_out:
        assert work_queue is not None  # noqa: S101 - handout fans out only with a queue that answered
        sent, through = _hand_out(work_queue, judged, to_publish, judged.late)
        logger.info("Flags handed to the workers", extra={"due": judged.due, "throughLane": through, **asdict(sent)})
        return _Written(
            Outcome(events_owed=len(owed) - sent.owed), started=sent.orders, fanned_out=sent.orders,
            messages=sent.messages, workers_busy=bool(backlog), handed_out=through,
        )  # fmt: skip
    outcome = carry_out(
        judged, to_publish, store, events, judged.deadline, on_flag=on_flag, late=judged.late, clock=clock,
        claim_until=claim_until,
    )  # fmt: skip
    return _Written(outcome, started=outcome.attempted, workers_busy=bool(backlog), handed_out=decision.handed_out)


def _hand_out(work_queue: WorkQueue, judged: _Judged, owed: Iterator[StaleRunner], late: bool) -> tuple[Sent, int]:
    """Send the lanes from judged.first_lane in order, then the owed events; and the first lane not wholly sent.

    A late sweep still sends a message at a time until it has handed out a whole message's worth
    (CHUNK_ORDERS), however few runners each lane holds.
    """
    sent, through = Sent(), judged.first_lane
    for lane in range(judged.first_lane, LANES):
        part = work_queue.send(judged.lane(lane), (), judged.deadline, late=late and sent.orders < CHUNK_ORDERS)
        sent += part
        if not (part.complete and judged.finished(lane)):
            return sent, through
        through = lane + 1
    sent += work_queue.send((), owed, judged.deadline, late=late and sent.orders + sent.owed < CHUNK_ORDERS)
    return sent, through


def _finish(
    store: RunnerStore,
    plan: SweepPlan,
    *,
    census: Census,
    keys: KeyCensus | None,
    statuses: StatusCounts,
    judged: _Judged,
    written: _Written,
    clock: Callable[[], float] | None,
) -> SweepReport:
    """Record the keys' census and the plan's next state, and report: a sweep cut short saves its state too."""
    outcome = written.outcome
    left = (judged.ordered - written.started) + (judged.due - judged.judged)
    if left and not written.workers_busy:
        logger.warning(
            "Sweep deadline reached: the next sweep flags the rest", extra={"flagged": outcome.flagged, "left": left}
        )
    if keys is not None:
        try:
            store.record_key_census(keys)
        except StoreError:  # the flags are done; the next sweep counts again
            logger.exception("Could not record the keys' runner counts; the next sweep counts again")
    saved = store.save_sweep_state(plan.next_state(finished_at=clock() if clock is not None else plan.now))
    if not saved:
        logger.warning("A sweep that started later has saved its state already; this one's is dropped")
    fleet = census.scope(None)
    return SweepReport(
        examined=fleet.active,
        silent=fleet.silent,
        stale=judged.due,
        flagged=outcome.flagged,
        in_grace=judged.in_grace,
        scopes={_scope_label(s): f"{d.state.value} ({d.why})" for s, d in plan.scopes.items()},
        held=[_scope_label(s) for s in plan.held],
        partial=[_scope_label(s) for s, d in plan.scopes.items() if d.state is ScopeState.PARTIAL],
        short_thresholds=[_scope_label(s.worker_group) for s in plan.short_thresholds],
        events_published=outcome.events_published,
        events_owed=outcome.events_owed,
        watching_since=plan.watching_since,
        state_saved=saved,
        left=left,
        lost=outcome.lost,
        fanned_out=written.fanned_out,
        work_messages=written.messages,
        workers_busy=written.workers_busy,
        by_worker_group=worker_group_gauges(statuses),
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


def _candidate_row(candidate: SweepCandidate) -> tuple[Any, ...]:
    """What plan.judge and the stale event need of an active runner, as a compact spool row."""
    return (
        candidate.taskrunner_id,
        candidate.last_seen,
        candidate.worker_group,
        candidate.hostname,
        candidate.reset_at,
    )


def _from_candidate_row(row: tuple[Any, ...]) -> SweepCandidate:
    return SweepCandidate(
        taskrunner_id=row[0],
        status=Status.ACTIVE.value,
        last_seen=row[1],
        worker_group=row[2],
        hostname=row[3],
        reset_at=row[4],
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


# In Lambda a sweep keeps this much of its invocation for what follows its deadline: the writes in flight
# (each bounded by the client's timeouts and retries), the last events, and saving its state.
RESERVE_SECONDS = 30.0


@cache
def _dependencies() -> tuple[RunnerStore, Config, StaleEventPublisher, WorkQueue | None]:
    import boto3

    config = Config.from_env(os.environ)
    client = boto3.client("dynamodb", config=SWEEPER_CLIENT_CONFIG)
    keys_table = config.keys_table_name if config.auth_mode is AuthMode.SIGV4 else None
    store = RunnerStore(config.table_name, client=client, keys_table_name=keys_table or None)
    work_queue = WorkQueue(config.work_queue_url) if config.work_queue_url else None
    return store, config, StaleEventPublisher(config.event_bus_name), work_queue


def deadline_for(context: LambdaContext, config: Config, clock: Callable[[], float] = time.monotonic) -> Deadline:
    """The sweep's deadline: the invocation's remaining time less the reserve, and SWEEP_BUDGET_SECONDS if set."""
    invocation = context.get_remaining_time_in_millis() / 1000
    seconds = invocation - RESERVE_SECONDS
    if config.sweep_budget_seconds is not None:
        seconds = min(seconds, config.sweep_budget_seconds)
    seconds = max(0.0, seconds)
    return Deadline(seconds, clock, overrun=max(0.0, invocation - seconds))


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
        (MetricName.FLAGS_LEFT, report.left),
        (MetricName.SWEEPS_COMPLETED, 1),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    _emit_worker_group_gauges(report.by_worker_group)
    logger.info("Sweep finished", extra=asdict(report))
    return asdict(report)


def _emit_worker_group_gauges(gauges: dict[str, dict[str, int]]) -> None:
    """One EMF record per (worker group, status): dimensions service, workerGroup, status (the dashboard's search).

    single_metric prints even with metrics disabled (make serve, tests), so Powertools' own rule is asked first.
    """
    if is_metrics_disabled():
        return
    for group, counts in gauges.items():
        for status, count in counts.items():
            with single_metric(
                name=MetricName.RUNNERS, unit=MetricUnit.Count, value=count, namespace=NAMESPACE
            ) as gauge:
                gauge.add_dimension(name="service", value=SERVICE)
                gauge.add_dimension(name="workerGroup", value=group)
                gauge.add_dimension(name="status", value=status)
