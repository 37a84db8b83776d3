"""An operator's commands on one runner: terminate (a drain), reset, forget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from heartbeat.runners import Runner, Status
from heartbeat.store.items import TTL_ATTRIBUTE, address, number, to_runner
from heartbeat.store.table import ConditionFailed, Table, UnknownRunner

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def request_terminate(table: Table, taskrunner_id: str, *, by: str, reason: str | None, now: float) -> Runner:
    """An operator's drain: the runner's next heartbeat answers terminate: true. Records who, when and why."""
    values: dict[str, AttributeValueTypeDef] = {
        ":terminating": {"S": Status.TERMINATING.value},
        ":now": number(now),
        ":by": {"S": by},
    }
    assignments = "#status = :terminating, terminateRequestedAt = :now, terminateRequestedBy = :by"
    if reason:
        assignments += ", terminateReason = :reason"
        values[":reason"] = {"S": reason}
    return _update_live(table, taskrunner_id, "SET " + assignments, values)


def reset(table: Table, taskrunner_id: str, now: float) -> Runner:
    """Clear a stale or terminate flag, for a runner an operator has repaired.

    Records resetAt = now: the sweeper counts the runner's silence from then at the earliest,
    so it gets a full threshold to beat again.
    """
    return _update_live(
        table,
        taskrunner_id,
        "SET #status = :active, resetAt = :now REMOVE staleAt, eventPending, terminateRequestedAt, "
        "terminateRequestedBy, terminateReason",
        {":active": {"S": Status.ACTIVE.value}, ":now": number(now)},
    )


def forget(table: Table, taskrunner_id: str) -> None:
    """Delete the runner's record."""
    where = address(taskrunner_id)
    try:
        table.request(
            "delete_item",
            Key=where.key,
            ConditionExpression=where.condition("attribute_exists(taskrunnerId)"),
            **({"ExpressionAttributeValues": where.values} if where.values else {}),
        )
    except ConditionFailed:
        raise UnknownRunner(taskrunner_id) from None


def _update_live(table: Table, taskrunner_id: str, expression: str, values: dict[str, AttributeValueTypeDef]) -> Runner:
    """Change a live record; one past its TTL counts as absent (values must hold :now)."""
    where = address(taskrunner_id)
    try:
        response = table.request(
            "update_item",
            Key=where.key,
            UpdateExpression=expression,
            ConditionExpression=where.condition(f"attribute_exists(taskrunnerId) AND {TTL_ATTRIBUTE} > :now"),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={**values, **where.values},
            ReturnValues="ALL_NEW",
        )
    except ConditionFailed:
        raise UnknownRunner(taskrunner_id) from None
    return to_runner(response["Attributes"])
