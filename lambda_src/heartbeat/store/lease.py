"""The sweep lease: one of the store's own items, so that two sweeps never run at once.

A scheduled sweep (in Lambda) and an operator's sweep (heartbeat-ops, outside Lambda) both take it
before they read the fleet, renew it once the fleet is read (a scan longer than its holder foresaw
must not let another sweep in while it writes) and give it back when they are done. It expires by
itself at the time its holder can no longer be running, so a sweep that died holding it delays the
next one by at most that long.

The item also keeps how far the sweeps have handed their flags to the workers (fan_out.py's lanes):
each sweep reads it as it takes the lease and writes it as it gives the lease back, so that costs
no request of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heartbeat.store.items import number, reserved_key
from heartbeat.store.table import ConditionFailed, StoreError, Table

LEASE_NAME = "sweeper-lease"


@dataclass(frozen=True)
class Lease:
    """The lease as a sweep asked for it: taken (until when), or held by another (until when theirs ends)."""

    taken: bool
    until: float
    handed_out: int = 0  # the first lane the workers' queue may not hold yet (fan_out.first_lane)


def acquire_lease(table: Table, holder: str, now: float, until: float) -> Lease:
    """Take the lease for holder until `until`, unless another holds it past now."""
    try:
        old = table.request(
            "update_item",
            Key=reserved_key(LEASE_NAME),
            UpdateExpression="SET holder = :holder, leaseUntil = :until",
            ConditionExpression="attribute_not_exists(taskrunnerId) OR leaseUntil <= :now OR holder = :holder",
            ExpressionAttributeValues={":now": number(now), ":holder": {"S": holder}, ":until": number(until)},
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ).get("Attributes", {})
    except ConditionFailed as held:
        return Lease(taken=False, until=float(held.item["leaseUntil"]["N"]) if held.item else until)
    return Lease(taken=True, until=until, handed_out=_lanes(old.get("handedOut")))


def _lanes(value: Mapping[str, Any] | None) -> int:
    """The recorded first lane not handed out; 0 (hand out from the first lane) for anything but a whole number.

    A record edited by hand must not stop every sweep: handing out from lane 0 again only repeats
    flags that their condition refuses.
    """
    try:
        return int(value["N"]) if value is not None else 0
    except (KeyError, TypeError, ValueError):
        return 0


def renew_lease(table: Table, holder: str, until: float) -> Lease:
    """Hold the lease until `until` if holder still has it (expired or not): nobody has taken it since.

    Taking the lease replaces its holder and giving it back removes it, so the holder alone tells
    whether another sweep came in between, even one that has finished since.
    """
    try:
        table.request(
            "update_item",
            Key=reserved_key(LEASE_NAME),
            UpdateExpression="SET leaseUntil = :until",
            ConditionExpression="holder = :holder",
            ExpressionAttributeValues={":holder": {"S": holder}, ":until": number(until)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ConditionFailed as held:
        return Lease(taken=False, until=float(held.item["leaseUntil"]["N"]) if held.item else until)
    return Lease(taken=True, until=until)


def release_lease(table: Table, holder: str, handed_out: int) -> None:
    """Give the lease back and record the workers' lanes, if holder still has it; a failure only leaves it to expire.

    The lanes are then not recorded: the next sweep that finds the queue busy hands out again from
    an earlier lane, and the flags it repeats are refused by their condition (no event twice).
    """
    with contextlib.suppress(ConditionFailed, StoreError):
        table.request(
            "update_item",
            Key=reserved_key(LEASE_NAME),
            UpdateExpression="SET leaseUntil = :free, handedOut = :lanes REMOVE holder",
            ConditionExpression="holder = :holder",
            ExpressionAttributeValues={":holder": {"S": holder}, ":free": number(0), ":lanes": number(handed_out)},
        )
