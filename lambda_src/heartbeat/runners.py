"""The rules about one runner: plain functions of plain values and the time.

Nothing here touches AWS; the store and the handlers call these. Who is flagged is plan.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """A runner's status. Only ACTIVE runners are told to keep working."""

    ACTIVE = "active"
    STALE = "stale"  # flagged by the sweeper; sticky until reset or the record expires
    TERMINATING = "terminating"  # an operator asked it to stop (a graceful drain)
    RETIRED = "retired"  # removed on purpose (heartbeat-ops runners retire, or an AWS signal): out of the census


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
    retired_at: float | None = None
    retired_by: str | None = None  # who or what retired it: an operator's ARN, or the AWS signal
    retire_reason: str | None = None
    key_id: str | None = None  # the access key it is bound to (authentication on)


def should_terminate(runner: Runner) -> bool:
    """The answer to a heartbeat: terminate unless the runner is still active."""
    return runner.status != Status.ACTIVE.value


def expires_at(last_seen: float, retention_seconds: int) -> int:
    """The TTL for a record last seen at last_seen (whole epoch seconds, as DynamoDB wants)."""
    return int(last_seen) + retention_seconds
