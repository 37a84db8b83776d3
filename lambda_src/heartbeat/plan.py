"""The sweep's decision, "who is flagged now", as one pure function: plan_sweep.

The sweeper executes the plan (sweeper.py); heartbeat-ops prints it (runners list, show, sweep
--dry-run); the store's flag condition is each judgement's cutoff. docs/guarantees.md gives the
reasoning and what the simulator proves. The words, used alike in code, logs, metrics and docs:

- a runner is *heard* while its last heartbeat is within half its threshold, *silent* after that;
- it is *stale* once its silence, counted from its silence start (the latest of its last
  heartbeat, its last reset, the start of the sweeper's *watch* and its scope's *grace*), exceeds
  its threshold: the sweeper *flags* it, and its next heartbeat answers terminate: true;
- a *scope* is the whole fleet, or a worker group with a threshold of its own;
- the *guard* judges each scope at every sweep, and *holds* a scope whose silence looks like our
  own outage: no runner of a held scope is flagged, and once the hold ends each gets a full
  threshold of *grace* to beat again;
- a *retired* runner left the fleet on purpose: it is not in the census and is never flagged.

Everything here is a function of plain values: the scan's census, the deployment's Config, the
service's time and the previous sweep's state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from heartbeat.config import Config
from heartbeat.events import iso
from heartbeat.runners import Status

MIN_RUNNERS_TO_JUDGE = 3  # a scope with fewer active runners has no guard of its own
GAP_INTERVALS = 1.5  # no sweep completed for this many sweep intervals: the sweeper's watch had a gap
FUTURE_TOLERANCE_SECONDS = (
    600.0  # a sweep state stamped later than now by more than this (longer than a sweep runs) is bogus
)
SHORT_THRESHOLD_RATIO = 2.0  # a threshold under this many typical beat periods cannot tell our outage in time
PERIOD_BUCKETS_PER_DOUBLING = 8  # the beat-period histogram's resolution: about 9% a bucket
MIN_RUNNERS_FOR_PERIOD = 3  # a worker group's typical period is reported once this many runners show one
FLEET: None = None  # the whole fleet's scope key; a worker group with its own threshold is keyed by its name


class Observed(Protocol):
    """What the plan needs to know of a runner: a sweep candidate and a stored record both have it."""

    @property
    def taskrunner_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def last_seen(self) -> float: ...
    @property
    def first_seen(self) -> float | None: ...
    @property
    def heartbeat_count(self) -> int | None: ...
    @property
    def worker_group(self) -> str | None: ...
    @property
    def reset_at(self) -> float | None: ...


# The sweeper's memory between runs


@dataclass(frozen=True)
class Hold:
    """A run of consecutive sweeps that held a scope: since when (at the latest) and its last held sweep."""

    since: float
    last: float


@dataclass(frozen=True)
class ScopeSummary:
    """A scope as the last sweep judged it, recorded for heartbeat-ops."""

    scope: str | None
    state: str
    why: str


@dataclass(frozen=True)
class SweepState:
    """The sweeper's state after a completed sweep.

    last_sweep_at is when it started (it orders sweeps), finished_at when it ended (the
    sweeper's down time is measured from there), watching_since when its unbroken watch
    began, holds the scopes' latest holds (FLEET for the fleet), settings the Config it ran
    with (Config.to_record: heartbeat-ops judges with these) and scopes how it judged each.
    """

    last_sweep_at: float
    watching_since: float
    finished_at: float | None = None
    holds: Mapping[str | None, Hold] = field(default_factory=dict)
    settings: Mapping[str, Any] | None = None
    scopes: tuple[ScopeSummary, ...] = ()

    def latest_stamp(self) -> float:
        return max(
            [self.last_sweep_at, self.watching_since, self.finished_at or 0.0] + [h.last for h in self.holds.values()]
        )


# The census: what the scan saw, per worker group, in memory that does not grow with the fleet


@dataclass
class GroupCensus:
    """One worker group's active runners: how many, how many silent, its newest heartbeat, its beat periods."""

    active: int = 0
    silent: int = 0
    newest: float | None = None
    periods: dict[int, int] = field(default_factory=dict)  # histogram: bucket -> runners (see period_bucket)

    def merge(self, other: GroupCensus) -> GroupCensus:
        periods = dict(self.periods)
        for bucket, count in other.periods.items():
            periods[bucket] = periods.get(bucket, 0) + count
        newest = max((n for n in (self.newest, other.newest) if n is not None), default=None)
        return GroupCensus(self.active + other.active, self.silent + other.silent, newest, periods)


def period_bucket(period: float) -> int:
    """The histogram bucket of a beat period in seconds (buckets grow by 2^(1/8), about 9%)."""
    return round(PERIOD_BUCKETS_PER_DOUBLING * math.log2(max(period, 1.0)))


def bucket_period(bucket: int) -> float:
    return float(2 ** (bucket / PERIOD_BUCKETS_PER_DOUBLING))


@dataclass
class Census:
    """The scan's active runners by worker group, counted one at a time (add) and mergeable (merge).

    Memory grows with the number of worker groups, never with the number of runners, so scan
    segments (or workers) can each count their share and the guard still judges whole scopes.
    """

    now: float
    groups: dict[str | None, GroupCensus] = field(default_factory=dict)

    def add(self, runner: Observed, config: Config) -> None:
        """Count one active runner. Heard is judged by heartbeats alone: a reset is no sign that heartbeats arrive."""
        threshold = config.stale_after_for(runner.worker_group)
        group = self.groups.setdefault(runner.worker_group, GroupCensus())
        group.active += 1
        group.silent += int(self.now - runner.last_seen > threshold / 2)
        group.newest = runner.last_seen if group.newest is None else max(group.newest, runner.last_seen)
        if runner.heartbeat_count is not None and runner.first_seen is not None and runner.heartbeat_count >= 3:
            bucket = period_bucket((runner.last_seen - runner.first_seen) / (runner.heartbeat_count - 1))
            group.periods[bucket] = group.periods.get(bucket, 0) + 1

    def merge(self, other: Census) -> Census:
        groups = dict(self.groups)
        for name, group in other.groups.items():
            groups[name] = groups[name].merge(group) if name in groups else group
        return Census(self.now, groups)

    @classmethod
    def of(cls, runners: Iterable[Observed], config: Config, now: float) -> Census:
        census = cls(now)
        for runner in runners:
            if runner.status == Status.ACTIVE.value:
                census.add(runner, config)
        return census

    def scope(self, scope: str | None) -> GroupCensus:
        """The fleet's counts (FLEET), or one worker group's."""
        if scope is FLEET:
            total = GroupCensus()
            for group in self.groups.values():
                total = total.merge(group)
            return total
        return self.groups.get(scope, GroupCensus())


# The guard: each scope's state


class ScopeState(StrEnum):
    """How the guard judges a scope at one sweep (Kubernetes' zone states are the model)."""

    NORMAL = "normal"  # at most the fraction silent: flags go ahead
    PARTIAL = "partial"  # more than the fraction silent while others are heard: flags go ahead
    SILENT = "silent"  # nobody heard: held (Kubernetes' full disruption)
    UNWATCHED = "unwatched"  # more than the fraction went silent while the sweeper could not watch: held
    UNGUARDED = "unguarded"  # too few runners to judge, or MASS_STALE_FRACTION is 1

    @property
    def held(self) -> bool:
        return self in (ScopeState.SILENT, ScopeState.UNWATCHED)


def scope_name(scope: str | None) -> str:
    return "the fleet" if scope is FLEET else f"worker group {scope!r}"


def compute_scope_state(
    counts: GroupCensus, threshold: int, fraction: float, *, fleet_newest: float | None, watch_gap: bool
) -> tuple[ScopeState, str]:
    """Judge one scope: hold it only where its silence can be ours.

    Our outage (front door, Lambda or DynamoDB writes down) stops every heartbeat, so a scope
    whose runners are all silent (no heartbeat for half a threshold) may be deaf rather than
    dead: held, as Kubernetes stops evictions in full disruption. For a worker group with its
    own threshold, only if nobody in the fleet was heard either after the group fell silent:
    a heartbeat from anyone later proves the path works. Where some of the scope is heard,
    the path works and the silent runners are gone (a scale-in) or cut off alone (one zone):
    flagged, as Kubernetes evicts from a zone cut off alone; a partial state is only reported.
    A silence that began while no sweep completed (sweeps failing on our own store) is held
    too, once more than the fraction is silent, since nobody watched whether heartbeats came.
    """
    if fraction >= 1 or counts.active < MIN_RUNNERS_TO_JUDGE or counts.newest is None:
        off = fraction >= 1
        why = (
            "the guard is off (MASS_STALE_FRACTION is 1)"
            if off
            else f"{counts.active} active runners, too few to judge"
        )
        return ScopeState.UNGUARDED, why
    share = f"{counts.silent} of {counts.active} silent"
    if counts.silent == counts.active:
        heard_after = fleet_newest is not None and fleet_newest > counts.newest + threshold / 2
        if not heard_after:
            return ScopeState.SILENT, f"{share}: nobody heard since {iso(counts.newest)}"
        return ScopeState.PARTIAL, (
            f"{share} since {iso(counts.newest)}, but the fleet was heard at {iso(fleet_newest or 0)}: the path works"
        )
    if counts.silent > fraction * counts.active:
        if watch_gap:
            return ScopeState.UNWATCHED, f"{share} after a gap in the sweeper's watch"
        return ScopeState.PARTIAL, f"{share}, the rest heard: the path works, so the silent ones are gone or cut off"
    return ScopeState.NORMAL, share


def next_hold(
    previous: Hold | None, held_now: bool, now: float, previous_sweep_at: float | None, threshold: int
) -> Hold | None:
    """A scope's hold after this sweep.

    A hold goes on while consecutive sweeps hold, and also when the scope is held again while the
    previous hold's grace still runs (a heartbeat or two got through our outage, then it went on):
    a new hold dated later would drop that grace, and flag the runners it protected while the
    scope is held. Otherwise a new one is dated from the previous completed sweep, the last time
    the scope was seen not held: our outage may have begun at any time after it.
    """
    if not held_now:
        return previous
    if previous is not None and (
        (previous_sweep_at is not None and previous.last >= previous_sweep_at) or now - previous.last <= threshold
    ):
        return Hold(previous.since, now)
    return Hold(previous_sweep_at if previous_sweep_at is not None else now, now)


def hold_grace(hold: Hold | None, silence_start: float, threshold: int) -> float | None:
    """From when a hold makes a runner's silence count, if it protects the runner at all.

    It protects a runner that was not yet stale when the hold began: its silence counts only
    from the hold's last held sweep (this one, while the hold goes on), so a fleet coming back
    from our outage gets a full threshold to beat again.
    """
    if hold is None or silence_start + threshold < hold.since:
        return None
    return hold.last


def watch_start(previous: SweepState | None, now: float, shortest_threshold: int) -> float:
    """When the sweeper's unbroken watch began: now, if it has not completed a run for longer than a threshold.

    A sweeper that was down cannot tell a silent runner from its own outage, so a new watch
    grants every runner one full threshold. Its down time runs from the end of its last run.
    """
    if previous is None or now - (previous.finished_at or previous.last_sweep_at) > shortest_threshold:
        return now
    return previous.watching_since


def past_threshold(runner: Observed, config: Config, now: float) -> bool:
    """Whether a runner is silent past its threshold on its own account: its last heartbeat and reset alone.

    Only such a runner can be judged stale (the watch and holds only ever move its silence start
    later), so the sweeper keeps these while it counts the census and judges them once the plan
    is made; the rest of the fleet is counted by the census alone.
    """
    return now - max(runner.last_seen, runner.reset_at or 0.0) > config.stale_after_for(runner.worker_group)


# The plan


class Verdict(StrEnum):
    """What the plan says of one runner."""

    HEARD = "heard"  # a heartbeat within half its threshold
    SILENT = "silent"  # silent, not yet past its threshold
    STALE = "stale"  # past its threshold: flag it
    GRACE = "grace"  # past its threshold, but its silence does not count yet (a hold, a new watch, a reset)
    NOT_ACTIVE = "not active"  # already stale, terminating or retired: not judged


@dataclass(frozen=True)
class Judgement:
    """The plan's verdict on one runner, and why.

    cutoff is the store's flag condition: the flag is written only if neither a heartbeat nor a
    reset has landed at or after it, so one that lands between the scan and the write wins.
    """

    verdict: Verdict
    reason: Callable[[], str] = field(compare=False, repr=False)  # why, written only when asked for
    threshold: int
    silence_start: float
    cutoff: float

    @property
    def why(self) -> str:
        """Why, in words: formatted on demand, as a sweep of millions writes it only for the runners it logs."""
        return self.reason()


@dataclass(frozen=True)
class ScopeDecision:
    """The guard's judgement of one scope at this sweep."""

    scope: str | None
    state: ScopeState
    why: str
    threshold: int


@dataclass(frozen=True)
class ShortThreshold:
    """A worker group whose threshold is under SHORT_THRESHOLD_RATIO times its typical beat period."""

    worker_group: str | None
    threshold: int
    period: float


@dataclass(frozen=True)
class SweepPlan:
    """The plan for one sweep: each scope's state and why, each runner's verdict (judge), and the next state."""

    now: float
    config: Config
    watching_since: float
    scopes: Mapping[str | None, ScopeDecision]
    holds: Mapping[str | None, Hold]  # after this sweep: held now, or lately and still giving grace
    periods: Mapping[str | None, float]  # worker group -> typical beat period, where known
    short_thresholds: tuple[ShortThreshold, ...]
    override_guard: bool = False
    notes: tuple[str, ...] = ()  # why the watch restarted, why the previous state was ignored

    @property
    def held(self) -> list[str | None]:
        return [s for s, d in self.scopes.items() if d.state.held]

    def judge(self, runner: Observed) -> Judgement:
        """The verdict on one runner, and why; O(1), so a sweep can stream its candidates through it."""
        threshold = self.config.stale_after_for(runner.worker_group)
        cutoff = self.now - threshold
        if runner.status != Status.ACTIVE.value:
            return Judgement(Verdict.NOT_ACTIVE, lambda: f"status {runner.status}", threshold, runner.last_seen, cutoff)
        moments = [(runner.last_seen, "its last heartbeat")]
        if runner.reset_at is not None:
            moments.append((runner.reset_at, "its reset"))
        moments.append((self.watching_since, "the start of the sweeper's watch"))
        start = max(moments)
        if not self.override_guard:
            scopes = [FLEET] + (
                [runner.worker_group] if runner.worker_group in self.config.stale_after_by_worker_group else []
            )
            for scope in scopes:
                grace = hold_grace(self.holds.get(scope), start[0], threshold)
                if grace is not None and grace > start[0]:
                    held = self.scopes.get(scope)
                    how = "is held" if held is not None and held.state.held else "was held until then"
                    start = (grace, f"the grace of a hold: {scope_name(scope)} {how}")
        since, counted_from = start
        last_seen = runner.last_seen
        if self.now - since > threshold:
            return Judgement(
                Verdict.STALE,
                lambda: f"silent since {iso(since)} ({counted_from}), over its threshold of {threshold} s",
                threshold,
                since,
                cutoff,
            )
        if self.now - last_seen > threshold:
            return Judgement(
                Verdict.GRACE,
                lambda: (
                    f"last heard {iso(last_seen)}; its silence counts from {iso(since)} ({counted_from}): "
                    f"stale after {iso(since + threshold)}"
                ),
                threshold,
                since,
                cutoff,
            )
        if self.now - last_seen > threshold / 2:
            return Judgement(
                Verdict.SILENT,
                lambda: f"last heard {iso(last_seen)}; stale after {threshold} s",
                threshold,
                since,
                cutoff,
            )
        return Judgement(Verdict.HEARD, lambda: f"last heard {iso(last_seen)}", threshold, since, cutoff)

    def next_state(self, finished_at: float | None = None) -> SweepState:
        """The state to save once the plan is carried out."""
        return SweepState(
            last_sweep_at=self.now,
            watching_since=self.watching_since,
            finished_at=finished_at,
            holds=dict(self.holds),
            settings=self.config.to_record(),
            scopes=tuple(ScopeSummary(d.scope, d.state.value, d.why) for d in self.scopes.values()),
        )


def plan_sweep(
    census: Census | None,
    config: Config,
    now: float,
    previous: SweepState | None,
    *,
    override_guard: bool = False,
) -> SweepPlan:
    """The sweep's decision: each scope's state, each runner's verdict (SweepPlan.judge), the next state.

    census is the scan's, taken at now (the service's time). Without one (heartbeat-ops list and
    show, which do not scan the fleet first) the plan judges with the last sweep's holds only.
    override_guard flags past holds and their grace, for an operator who confirmed the runners
    are gone. A previous state stamped in the future (a skewed clock, a bug) is ignored: a new
    watch starts, and the saved state replaces it.
    """
    notes: list[str] = []
    if previous is not None and previous.latest_stamp() > now + FUTURE_TOLERANCE_SECONDS:
        notes.append(f"the sweep state was stamped in the future ({iso(previous.latest_stamp())}): ignored")
        previous = None
    thresholds = [config.stale_after_seconds, *config.stale_after_by_worker_group.values()]
    watching_since = watch_start(previous, now, min(thresholds))
    if previous is None or watching_since != previous.watching_since:
        notes.append(f"a new watch starts at {iso(watching_since)}: every runner gets one full threshold of grace")
    previous_sweep_at = previous.last_sweep_at if previous else None
    watch_gap = previous is not None and now - (previous.finished_at or previous.last_sweep_at) > (
        GAP_INTERVALS * config.sweep_interval_seconds
    )
    # Holds that can still give grace (within the longest threshold); older ones are dropped.
    holds = {s: h for s, h in (previous.holds if previous else {}).items() if now - h.last <= max(thresholds)}
    scopes: dict[str | None, ScopeDecision] = {}
    periods: dict[str | None, float] = {}
    short: list[ShortThreshold] = []
    if census is not None:
        fleet_newest = census.scope(FLEET).newest
        for scope in [FLEET, *sorted(g for g in config.stale_after_by_worker_group if g in census.groups)]:
            threshold = config.stale_after_for(scope)
            state, why = compute_scope_state(
                census.scope(scope),
                threshold,
                config.mass_stale_fraction,
                fleet_newest=fleet_newest,
                watch_gap=watch_gap,
            )
            scopes[scope] = ScopeDecision(scope, state, why, threshold)
            hold = next_hold(holds.get(scope), state.held, now, previous_sweep_at, threshold)
            if hold is not None:
                holds[scope] = hold
        # Right after our outage (a hold or a new watch within the longest threshold) every runner's average
        # period includes the gap: the check waits until then rather than cry wolf.
        recovering = bool(holds) or now - watching_since <= max(thresholds)
        for group, counts in census.groups.items():
            period = typical_period(counts)
            if period is None:
                continue
            periods[group] = period
            threshold = config.stale_after_for(group)
            if threshold < SHORT_THRESHOLD_RATIO * period and not recovering:
                short.append(ShortThreshold(group, threshold, period))
    return SweepPlan(
        now=now,
        config=config,
        watching_since=watching_since,
        scopes=scopes,
        holds=holds,
        periods=periods,
        short_thresholds=tuple(short),
        override_guard=override_guard,
        notes=tuple(notes),
    )


def typical_period(counts: GroupCensus) -> float | None:
    """The median beat period of a worker group's runners, from firstSeen, lastSeen and heartbeatCount.

    A runner's own average inflates after a gap in its history (an outage, a restart); the
    median over the group shrugs off a few such runners, and plan_sweep skips the check for a
    threshold after our own outage, when every runner's history has the gap (a young fleet's
    averages stay inflated longer: its warning may come late or linger). Reported for the
    misconfiguration check only: the guard judges silence by the threshold, the operator's
    statement of the beat.
    """
    total = sum(counts.periods.values())
    if total < MIN_RUNNERS_FOR_PERIOD:
        return None
    seen = 0
    for bucket in sorted(counts.periods):
        seen += counts.periods[bucket]
        if 2 * seen >= total:
            return bucket_period(bucket)
    return None  # pragma: no cover - the loop always reaches half
