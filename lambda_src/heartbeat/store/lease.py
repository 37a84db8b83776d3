"""The sweep lease: one of the store's own items, so that two sweeps never run at once.

A scheduled sweep (in Lambda) and an operator's sweep (heartbeat-ops, outside Lambda) both take it
before they read the fleet and give it back when they are done. It expires by itself at the time
its holder can no longer be running (the end of its Lambda invocation), so a sweep that died
holding it delays the next one by at most that long.
"""

from __future__ import annotations

import contextlib

from heartbeat.store.items import number, reserved_key
from heartbeat.store.table import ConditionFailed, StoreError, Table

LEASE_NAME = "sweeper-lease"


def acquire_lease(table: Table, holder: str, now: float, until: float) -> float | None:
    """Take the lease for holder until `until`, unless another holds it past now: then return when theirs ends."""
    try:
        table.request(
            "put_item",
            Item={**reserved_key(LEASE_NAME), "holder": {"S": holder}, "leaseUntil": number(until)},
            ConditionExpression="attribute_not_exists(taskrunnerId) OR leaseUntil <= :now OR holder = :holder",
            ExpressionAttributeValues={":now": number(now), ":holder": {"S": holder}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ConditionFailed as held:
        return float(held.item["leaseUntil"]["N"]) if held.item else until
    return None


def release_lease(table: Table, holder: str) -> None:
    """Give the lease back, if holder still has it; a failure here only leaves it to expire."""
    with contextlib.suppress(ConditionFailed, StoreError):
        table.request(
            "delete_item",
            Key=reserved_key(LEASE_NAME),
            ConditionExpression="holder = :holder",
            ExpressionAttributeValues={":holder": {"S": holder}},
        )
