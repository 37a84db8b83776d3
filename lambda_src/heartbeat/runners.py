"""The rules about runners: plain functions of plain values and the time.

Nothing here touches AWS; the store and the handlers call these.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

MIN_FLEET_FOR_GUARD = 3  # below this many active runners (the fleet, or a worker group) its guard stays off


class Status(StrEnum):
    """A runner's status. Only ACTIVE runners are told to keep working."""

    ACTIVE = "active"
    STALE = "stale"  # flagged by the sweeper; sticky until reset or the record expires
    TERMINATING = "terminating"  # an operator asked it to stop (a graceful drain)


@dataclass(frozen=True)
class Runner:
    """A runner's record as stored. Times are epoch seconds."""

    taskrunner_id: str
    status: str
    first_seen: float
    last_seen: float
    heartbeat_count: int
    expires_at: int
    hostname: str | None = None
    worker_group: str | None = None
    stale_at: float | None = None
    event_pending: bool = False  # flagged, and its stale event not yet published
    terminate_requested_at: float | None = None
    terminate_requested_by: str | None = None
    terminate_reason: str | None = None
    reset_at: float | None = None  # an operator's last reset
    key_id: str | None = None  # the access key it is bound to (authentication on)


def should_terminate(runner: Runner) -> bool:
    """The answer to a heartbeat: terminate unless the runner is still active."""
    return runner.status != Status.ACTIVE.value


def expires_at(last_seen: float, retention_seconds: int) -> int:
    """The TTL for a record last seen at last_seen (whole epoch seconds, as DynamoDB wants)."""
    return int(last_seen) + retention_seconds


def silence_start(*moments: float | None) -> float:
    """When a runner's silence started counting: the latest of the moments given that are known.

    The sweeper passes the runner's last heartbeat, its last reset by an operator, the
    start of the sweeper's own unbroken watch and the last time the guard held the
    runner's fleet or worker group: silence during any of those never counts against it.
    """
    return max(moment for moment in moments if moment is not None)


def is_stale(last_seen: float, now: float, stale_after_seconds: int, watching_since: float) -> bool:
    """Whether a runner has been silent for longer than the threshold.

    Silence is counted from the later of its last heartbeat and watching_since (see
    silence_start), so that an outage of the sweeper never counts against a runner.
    """
    return now - max(last_seen, watching_since) > stale_after_seconds


def is_quiet(last_seen: float, now: float, stale_after_seconds: int) -> bool:
    """Whether a runner has gone without a heartbeat for more than half its threshold.

    The guard's evidence of a heartbeat path that has stopped taking heartbeats (see judge_fleet).
    """
    return now - last_seen > stale_after_seconds / 2


def stale_after_for(worker_group: str | None, default_seconds: int, by_worker_group: Mapping[str, int]) -> int:
    """The silence after which a runner of this worker group is stale: its group's override, or the default.

    The sweeper, its guard and the operator CLI all decide with this one function.
    """
    if worker_group is not None and worker_group in by_worker_group:
        return by_worker_group[worker_group]
    return default_seconds


def watching_since(
    previous_sweep_at: float | None, previous_watching_since: float | None, now: float, stale_after_seconds: int
) -> float:
    """When the sweeper's current unbroken watch began.

    A sweeper that has not run for longer than the threshold (or never ran)
    cannot tell a silent runner from its own outage, so it starts a new watch
    now and grants every runner one full threshold of grace.
    """
    if previous_sweep_at is None or previous_watching_since is None or now - previous_sweep_at > stale_after_seconds:
        return now
    return previous_watching_since


@dataclass(frozen=True)
class Census:
    """A scope's active runners, and how many of them are quiet (is_quiet)."""

    active: int = 0
    quiet: int = 0

    def __add__(self, other: Census) -> Census:
        return Census(self.active + other.active, self.quiet + other.quiet)


@dataclass(frozen=True)
class GuardVerdict:
    """Which scopes the mass-staleness guard holds at this sweep."""

    fleet_held: bool
    groups_held: frozenset[str]  # worker groups with their own threshold, held on their own


def judge_fleet(
    census_by_group: Mapping[str | None, Census], own_threshold_groups: Collection[str], mass_stale_fraction: float
) -> GuardVerdict:
    """The mass-staleness guard: which scopes' silences look like our outage rather than the runners'.

    The rule. A scope is held when more than mass_stale_fraction of its active runners (at
    least MIN_FLEET_FOR_GUARD of them) are quiet: without a heartbeat for more than half
    their threshold. The scopes are the whole fleet, and each worker group that
    has a threshold of its own (STALE_AFTER_BY_WORKER_GROUP). A hold lasts a spell of
    consecutive held sweeps (next_hold), and protects every runner of the scope that was not
    yet stale when the spell began: silence counts against it only from the spell's last
    held sweep (hold_grace). A fraction of 1 turns the guard off.

    Why quiet, not stale. Our outage (API, Lambda or DynamoDB writes down) stops every
    heartbeat at once, but a staggered fleet crosses the threshold in slices one beat period
    wide: counted by stale runners, the first slice (a third of the fleet, with 15-minute
    beats and a 45-minute threshold) is below any sane fraction and gets flagged before the
    guard trips. Quiet is an ingest-health signal: a live runner that beats at least every
    half threshold (the default threshold is three beats) is never quiet, so a healthy
    fleet is quiet only where runners died, while in our outage the whole fleet is quiet
    well before its first live runner can go stale (needs each threshold to be over about
    twice its runners' beat period). The guard is then held before anyone crosses.

    Why the spell and its grace. Holding alone is not enough: when the path recovers, the
    fleet beats again over one period and the guard lets go once half of it has beaten,
    while the other half is past its threshold. So a runner silent during a spell is judged
    only a full threshold after the spell's last held sweep. A spell is dated from the sweep
    before it, the last time the scope was seen not held (earlier, if sweeps failed in
    between): so runners already stale before it began, who died before any outage we could
    see, are still flagged, which keeps a steady trickle of deaths from holding a small
    scope for ever.

    Why half the threshold rather than a learned beat period. A period learned from
    firstSeen, lastSeen and heartbeatCount inflates after any gap in the history (an
    earlier outage, a count a lost response made approximate) and would blunt the signal
    when it matters; the threshold is the operator's own statement of the beat, per group.

    Why worker groups with their own threshold are judged alone. Such a group can go stale
    before the fleet as a whole turns quiet. The price: such a group that really dies whole
    is held until an operator confirms (heartbeat-ops runners sweep --override-guard), and
    one smaller than MIN_FLEET_FOR_GUARD is not protected by a guard of its own. Other
    groups are judged with the fleet, so one that dies whole while the fleet lives is
    flagged in time; a majority of the fleet dying at once holds everyone until an override.

    Why not a cap on flags per sweep. Our outage flags a slice of the fleet at every sweep;
    a cap slows the loss but a long outage still flags the fleet.

    What it cannot tell apart. A brownout that fails a share of heartbeats (after the
    clients' retries) leaves most of the fleet beating, so no scope is held, and a live
    runner whose every heartbeat failed for a whole threshold is flagged as if it had died.
    """
    if mass_stale_fraction >= 1:
        return GuardVerdict(fleet_held=False, groups_held=frozenset())

    def held(census: Census) -> bool:
        return census.active >= MIN_FLEET_FOR_GUARD and census.quiet > mass_stale_fraction * census.active

    return GuardVerdict(
        fleet_held=held(sum(census_by_group.values(), Census())),
        groups_held=frozenset(
            group
            for group, census in census_by_group.items()
            if group is not None and group in own_threshold_groups and held(census)
        ),
    )


@dataclass(frozen=True)
class Hold:
    """A spell of the guard holding a scope: since when (at the latest) and its last held sweep."""

    since: float
    last: float


def next_hold(previous: Hold | None, held_now: bool, now: float, previous_sweep_at: float | None) -> Hold | None:
    """The scope's hold after this sweep (see judge_fleet).

    A spell goes on while consecutive sweeps hold. A new one is dated from the previous
    completed sweep, the last time the scope was seen not held: our outage may have begun
    at any time after it.
    """
    if not held_now:
        return previous
    if previous is not None and previous_sweep_at is not None and previous.last >= previous_sweep_at:
        return Hold(previous.since, now)
    return Hold(previous_sweep_at if previous_sweep_at is not None else now, now)


def hold_grace(hold: Hold | None, silence_started: float, stale_after_seconds: int) -> float | None:
    """From when a hold makes a runner's silence count, if it protects the runner at all (see judge_fleet).

    It protects a runner that was not yet stale when the spell began: its silence counts
    only from the spell's last held sweep (this sweep, while the spell goes on).
    """
    if hold is None or silence_started + stale_after_seconds < hold.since:
        return None
    return hold.last
