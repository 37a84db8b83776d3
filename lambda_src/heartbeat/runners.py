"""The rules about runners: plain functions of plain values and the time.

Nothing here touches AWS; the store and the handlers call these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

MIN_FLEET_FOR_GUARD = 10  # below this many active runners the mass-staleness guard stays off


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


def should_terminate(runner: Runner) -> bool:
    """The answer to a heartbeat: terminate unless the runner is still active."""
    return runner.status != Status.ACTIVE.value


def expires_at(last_seen: float, retention_seconds: int) -> int:
    """The TTL for a record last seen at last_seen (whole epoch seconds, as DynamoDB wants)."""
    return int(last_seen) + retention_seconds


def is_stale(last_seen: float, now: float, stale_after_seconds: int, watching_since: float) -> bool:
    """Whether a runner has been silent for longer than the threshold.

    Silence is counted from the later of its last heartbeat and the moment the
    sweeper started watching (after a gap in the sweeper's own runs), so that an
    outage of the sweeper never counts against a runner.
    """
    return now - max(last_seen, watching_since) > stale_after_seconds


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


def mass_staleness_guard_trips(stale_count: int, active_count: int, mass_stale_fraction: float) -> bool:
    """Whether flagging stale_count of active_count runners looks like our outage, not theirs.

    As Kubernetes' node lifecycle controller does, a sweep that would flag more than
    the fraction of at least MIN_FLEET_FOR_GUARD active runners flags none.
    A fraction of 1 turns the guard off.
    """
    if mass_stale_fraction >= 1 or active_count < MIN_FLEET_FOR_GUARD:
        return False
    return stale_count > mass_stale_fraction * active_count
