"""The sweeper's writes to runners: a stale flag, the claim on its owed event, and the record that it is out.

A stale event is owed (eventPending) from the flag until EventBridge has accepted it. Whoever
publishes it holds a claim first (eventClaimUntil): the flag's own writer takes it in the flag
write itself, anyone else publishing an owed event takes it with claim_event. So a work message
delivered twice, or an operator's sweep next to a worker, never publishes one event twice; a
claim lasts until its holder can no longer be running (flagging.carry_out's claim_until), so a
publisher that died leaves it to expire, and the event is published by the next.
"""

from __future__ import annotations

import contextlib

from heartbeat.runners import Status
from heartbeat.store.items import TTL_ATTRIBUTE, address, number
from heartbeat.store.table import ConditionFailed, Table

# The event owed is the one of the flag at :staleAt (an event's id is its runner and its flag time).
_OWED_FOR = "attribute_exists(eventPending) AND staleAt = :staleAt"


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


def claim_event(table: Table, taskrunner_id: str, stale_at: float, now: float, until: float) -> bool:
    """Claim the runner's owed event of the flag at stale_at until `until`, unless it is no longer owed (out,
    dropped by a reset or retire, or owed for a later flag: an old work message must not take that one over)
    or another holds a claim past now."""
    where = address(taskrunner_id)
    try:
        table.request(
            "update_item",
            Key=where.key,
            UpdateExpression="SET eventClaimUntil = :until",
            ConditionExpression=where.condition(
                f"{_OWED_FOR} AND (attribute_not_exists(eventClaimUntil) OR eventClaimUntil <= :now)"
            ),
            ExpressionAttributeValues={
                ":now": number(now), ":until": number(until), ":staleAt": number(stale_at), **where.values,
            },
        )  # fmt: skip
    except ConditionFailed:
        return False
    return True


def release_claim(table: Table, taskrunner_id: str, stale_at: float) -> None:
    """Give up the claim on an event EventBridge refused: still owed, it is the next publisher's at once."""
    where = address(taskrunner_id)
    with contextlib.suppress(ConditionFailed):  # no longer owed (a reset, a retire, a later flag): nothing to give up
        table.request(
            "update_item",
            Key=where.key,
            UpdateExpression="REMOVE eventClaimUntil",
            ConditionExpression=where.condition(_OWED_FOR),
            ExpressionAttributeValues={":staleAt": number(stale_at), **where.values},
        )


def event_published(table: Table, taskrunner_id: str, stale_at: float) -> None:
    """The runner's stale event of the flag at stale_at is out: it owes none any more (a later flag's stays owed)."""
    where = address(taskrunner_id)
    with contextlib.suppress(ConditionFailed):  # already recorded (a concurrent sweep), or a reset or later flag
        table.request(
            "update_item",
            Key=where.key,
            UpdateExpression="REMOVE eventPending, eventClaimUntil",
            ConditionExpression=where.condition(_OWED_FOR),
            ExpressionAttributeValues={":staleAt": number(stale_at), **where.values},
        )
