"""The sweeper's writes to runners: a stale flag, the claim on its owed event, and the record that it is out.

A stale event is owed (eventPending) from the flag until EventBridge has accepted it. Whoever
publishes it holds a claim first (eventClaimUntil): the flag's own writer takes it in the flag
write itself, anyone else publishing an owed event takes it with claim_event. So a work message
delivered twice, or an operator's sweep next to a worker, never publishes one event twice; a
publisher that died holding a claim leaves it to expire, and the event is published by the next.
"""

from __future__ import annotations

import contextlib

from heartbeat.runners import Status
from heartbeat.store.items import TTL_ATTRIBUTE, address, number
from heartbeat.store.table import ConditionFailed, Table


def flag_stale(table: Table, taskrunner_id: str, last_seen_before: float, now: float, claim_until: float) -> bool:
    """Flag an active runner stale unless a heartbeat or a reset since last_seen_before wins the race.

    last_seen_before is the plan's cutoff (plan.Judgement.cutoff); a retire or terminate that lands
    first wins too (the runner is no longer active). The writer holds the claim on the runner's
    event until claim_until. Returns whether this call flagged it.
    """
    where = address(taskrunner_id)
    try:
        table.request(
            "update_item",
            Key=where.key,
            # eventPending: the stale event is owed until it is published (see sweeper.py).
            UpdateExpression="SET #status = :stale, staleAt = :now, eventPending = :true, eventClaimUntil = :claim",
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
                ":claim": number(claim_until),
                **where.values,
            },
        )
    except ConditionFailed:
        return False
    return True


def claim_event(table: Table, taskrunner_id: str, now: float, until: float) -> bool:
    """Claim the runner's owed event until `until`, unless it is no longer owed or another holds a claim past now."""
    where = address(taskrunner_id)
    try:
        table.request(
            "update_item",
            Key=where.key,
            UpdateExpression="SET eventClaimUntil = :until",
            ConditionExpression=where.condition(
                "attribute_exists(eventPending) AND (attribute_not_exists(eventClaimUntil) OR eventClaimUntil <= :now)"
            ),
            ExpressionAttributeValues={":now": number(now), ":until": number(until), **where.values},
        )
    except ConditionFailed:
        return False
    return True


def release_claim(table: Table, taskrunner_id: str) -> None:
    """Give up the claim on an event EventBridge refused: still owed, it is the next publisher's at once."""
    where = address(taskrunner_id)
    with contextlib.suppress(ConditionFailed):  # no longer owed (a reset, a retire): nothing to give up
        table.request(
            "update_item",
            Key=where.key,
            UpdateExpression="REMOVE eventClaimUntil",
            ConditionExpression=where.condition("attribute_exists(eventPending)"),
            **({"ExpressionAttributeValues": where.values} if where.values else {}),
        )


def event_published(table: Table, taskrunner_id: str) -> None:
    """The runner's stale event is out: it owes none any more."""
    where = address(taskrunner_id)
    with contextlib.suppress(ConditionFailed):  # already recorded (a concurrent sweep, or a reset)
        table.request(
            "update_item",
            Key=where.key,
            UpdateExpression="REMOVE eventPending, eventClaimUntil",
            ConditionExpression=where.condition("attribute_exists(eventPending)"),
            **({"ExpressionAttributeValues": where.values} if where.values else {}),
        )
