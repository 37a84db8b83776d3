"""An operator's commands on one runner: terminate (a drain), retire, reset, forget, rebind to another key."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from heartbeat.access_keys import AccessKey, KeyStatus
from heartbeat.runners import Runner, Status
from heartbeat.store.items import KEY_ATTRIBUTE, TTL_ATTRIBUTE, address, number, to_runner
from heartbeat.store.keys import count_change
from heartbeat.store.table import ConditionFailed, StoreError, Table, TransactionFailed, UnknownRunner, transact

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


def retire(table: Table, taskrunner_id: str, *, by: str, reason: str | None, now: float) -> Runner:
    """The runner left the fleet on purpose: out of the sweeper's census at once, never flagged, no stale event.

    Sticky: a heartbeat after it answers terminate: true and keeps the record retired (so a late
    heartbeat during an instance's shutdown cannot bring it back as active, to go stale later).
    An event still owed from an earlier flag is dropped: the runner is gone on purpose.
    """
    values: dict[str, AttributeValueTypeDef] = {
        ":retired": {"S": Status.RETIRED.value},
        ":now": number(now),
        ":by": {"S": by},
    }
    assignments = "#status = :retired, retiredAt = :now, retiredBy = :by"
    if reason:
        assignments += ", retireReason = :reason"
        values[":reason"] = {"S": reason}
    return _update_live(table, taskrunner_id, f"SET {assignments} REMOVE eventPending, eventClaimUntil", values)


def reset(table: Table, taskrunner_id: str, now: float) -> Runner:
    """Clear a stale, terminate or retired status, for a runner an operator has repaired or brought back.

    Records resetAt = now: the sweeper counts the runner's silence from then at the earliest,
    so it gets a full threshold to beat again.
    """
    return _update_live(
        table,
        taskrunner_id,
        "SET #status = :active, resetAt = :now REMOVE staleAt, eventPending, eventClaimUntil, terminateRequestedAt, "
        "terminateRequestedBy, terminateReason, retiredAt, retiredBy, retireReason",
        {":active": {"S": Status.ACTIVE.value}, ":now": number(now)},
    )


def forget(table: Table, taskrunner_id: str, keys_table: str | None = None) -> None:
    """Delete the runner's record; a runner bound to a key leaves its key's count in the same transaction."""
    where = address(taskrunner_id)
    bound_to = _bound_to(table, where.key) if keys_table else None
    if bound_to is None or keys_table is None:
        # Unbound when read: it must still be (a heartbeat binding it meanwhile makes the operator look again).
        exists = "attribute_exists(taskrunnerId)"
        if keys_table:
            exists += f" AND attribute_not_exists({KEY_ATTRIBUTE})"
        try:
            table.request(
                "delete_item",
                Key=where.key,
                ConditionExpression=where.condition(exists),
                **({"ExpressionAttributeValues": where.values} if where.values else {}),
            )
        except ConditionFailed:
            raise UnknownRunner(taskrunner_id) from None
        return
    delete = {
        "Delete": {
            "TableName": table.name,
            "Key": where.key,
            "ConditionExpression": where.condition(f"{KEY_ATTRIBUTE} = :key"),
            "ExpressionAttributeValues": {":key": {"S": bound_to}, **where.values},
        }
    }
    try:
        transact(table.client, [delete, count_change(keys_table, bound_to, -1, within_cap=False)], _token())
    except TransactionFailed:
        raise UnknownRunner(taskrunner_id) from None  # changed meanwhile: the operator looks again


class RebindRefused(Exception):
    """The runner cannot move to that key; the message says why."""


def rebind(table: Table, keys_table: str, taskrunner_id: str, key: AccessKey, now: float) -> Runner:
    """Move a live runner to another key (within that key's scope and cap), counts moved in one transaction."""
    where = address(taskrunner_id)
    item = table.request("get_item", Key=where.key, ConsistentRead=True).get("Item")
    if not item or float(item[TTL_ATTRIBUTE]["N"]) <= now:
        raise UnknownRunner(taskrunner_id)
    runner = to_runner(item)
    if runner.taskrunner_id != taskrunner_id:
        raise UnknownRunner(taskrunner_id)
    if key.status != KeyStatus.ACTIVE.value:
        raise RebindRefused(f"key {key.access_key_id} is revoked")
    if key.worker_groups is not None and runner.worker_group not in key.worker_groups:
        raise RebindRefused(
            f"the runner's workerGroup {runner.worker_group!r} is outside key {key.access_key_id}'s scope "
            f"({', '.join(repr(g) for g in key.worker_groups)}): its heartbeats would be refused"
        )
    if runner.key_id == key.access_key_id:
        return runner
    values: dict[str, Any] = {":key": {"S": key.access_key_id}, ":now": number(now), **where.values}
    if runner.key_id is None:
        was_bound = f"attribute_not_exists({KEY_ATTRIBUTE})"
    else:
        was_bound = f"{KEY_ATTRIBUTE} = :old"
        values[":old"] = {"S": runner.key_id}
    items: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": table.name,
                "Key": where.key,
                "UpdateExpression": f"SET {KEY_ATTRIBUTE} = :key",
                "ConditionExpression": where.condition(f"{was_bound} AND {TTL_ATTRIBUTE} > :now"),
                "ExpressionAttributeValues": values,
            }
        },
        count_change(keys_table, key.access_key_id, 1, within_cap=True),
    ]
    if runner.key_id is not None:
        items.append(count_change(keys_table, runner.key_id, -1, within_cap=False))
    try:
        transact(table.client, items, _token())
    except TransactionFailed as failed:
        if failed.failed(1) is not None:
            raise RebindRefused(
                f"key {key.access_key_id} is at its cap of {key.max_runners} runners (or was revoked meanwhile)"
            ) from None
        raise StoreError("the runner's record changed meanwhile: try again") from None
    return to_runner({**item, KEY_ATTRIBUTE: {"S": key.access_key_id}})


def _bound_to(table: Table, key: dict[str, Any]) -> str | None:
    item = table.request("get_item", Key=key, ConsistentRead=True, ProjectionExpression=KEY_ATTRIBUTE).get("Item")
    return str(item[KEY_ATTRIBUTE]["S"]) if item and KEY_ATTRIBUTE in item else None


def _token() -> str:
    return secrets.token_urlsafe(12)


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
