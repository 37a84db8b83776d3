"""The sweeper's writes to runners: a stale flag, and the record that its event is out."""

from __future__ import annotations

import contextlib

from heartbeat.runners import Status
from heartbeat.store.items import TTL_ATTRIBUTE, address, number
from heartbeat.store.table import ConditionFailed, Table


def flag_stale(table: Table, taskrunner_id: str, last_seen_before: float, now: float) -> bool:
    """Flag an active runner stale unless a heartbeat or a reset since last_seen_before wins the race.

    last_seen_before is the plan's cutoff (plan.Judgement.cutoff); a retire or terminate that lands
    first wins too (the runner is no longer active). Returns whether this call flagged it.
    """
    where = address(taskrunner_id)
    try:
        table.request(
            "update_item",
            Key=where.key,
            # eventPending: the stale event is owed until it is published (see sweeper.py).
            UpdateExpression="SET #status = :stale, staleAt = :now, eventPending = :true",
            ConditionExpression=where.condition(
                f"#status = :active AND lastSeen < :cutoff AND {TTL_ATTRIBUTE} > :now "
                "AND (attribute_not_exists(resetAt) OR resetAt < :cutoff)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":stale": {"S": Status.STALE.value},
                ":active": {"S": Status.ACTIVE.value},
                ":cutoff": number(last_seen_before),
                ":now": number(now),
                ":true": {"BOOL": True},
                **where.values,
            },
        )
    except ConditionFailed:
        return False
    return True


def event_published(table: Table, taskrunner_id: str) -> None:
    """The runner's stale event is out: it owes none any more."""
    where = address(taskrunner_id)
    with contextlib.suppress(ConditionFailed):  # already recorded (a concurrent sweep, or a reset)
        table.request(
            "update_item",
            Key=where.key,
            UpdateExpression="REMOVE eventPending",
            ConditionExpression=where.condition("attribute_exists(eventPending)"),
            **({"ExpressionAttributeValues": where.values} if where.values else {}),
        )
