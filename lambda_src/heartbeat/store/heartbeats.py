"""The heartbeat upsert: one conditional write per heartbeat, counted once even when its response is lost."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from heartbeat.model import HeartbeatRequest
from heartbeat.runners import Runner, Status, expires_at
from heartbeat.store.items import (
    FULL_ID_ATTRIBUTE,
    TOKEN_ATTRIBUTE,
    TTL_ATTRIBUTE,
    Address,
    address,
    number,
    taskrunner_id,
    to_item,
    to_runner,
)
from heartbeat.store.table import ConditionFailed, StoreError, Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_UPSERT_ATTEMPTS = 4


def record_heartbeat(table: Table, request: HeartbeatRequest, now: float, retention_seconds: int) -> Runner:
    """Upsert the runner's record for a heartbeat received at now, and return it.

    One conditional UpdateItem in the steady state and for a new runner. Rarely, more:
    a record past its TTL (which DynamoDB deletes lazily) is replaced as if new; a
    heartbeat that lost a race to one stamped later is counted without moving lastSeen
    back; and a record deleted meanwhile (an operator's forget) is created afresh.

    heartbeatCount counts each call once. The write carries a token drawn for this call;
    when DynamoDB applied it but its response was lost and botocore resent it, the resend
    finds the token in the item, fails its condition, and the record as it stands is
    the answer. (A second heartbeat of the same runner landing between the write and its
    resend replaces the token, and the resend then counts again.)
    """
    token = secrets.token_urlsafe(12)
    where = address(request.taskrunner_id)
    advance, replace = True, False
    for _ in range(_UPSERT_ATTEMPTS):
        try:
            if replace:
                return _replace_expired(table, request, token, now, retention_seconds)
            return _update(table, request, where, token, now=now, retention_seconds=retention_seconds, advance=advance)
        except ConditionFailed as failed:
            old = failed.item
        advance, replace = True, False
        if old is None:
            continue  # deleted meanwhile: create it
        if old.get(TOKEN_ATTRIBUTE, {}).get("S") == token:
            return to_runner(old)  # this call's write was applied: the resend of a lost response
        if float(old[TTL_ATTRIBUTE]["N"]) <= now:
            replace = True  # past its TTL, so absent, whoever's it was: the runner starts afresh
        elif taskrunner_id(old) != request.taskrunner_id:
            raise StoreError("two taskrunnerIds share one digest key")
        else:
            advance = False  # live, and last seen later than now: count this one, keep the later time
    raise StoreError("the runner's record kept changing under concurrent heartbeats")


def _update(
    table: Table,
    request: HeartbeatRequest,
    where: Address,
    token: str,
    *,
    now: float,
    retention_seconds: int,
    advance: bool,
) -> Runner:
    values: dict[str, AttributeValueTypeDef] = {
        ":now": number(now),
        ":active": {"S": Status.ACTIVE.value},
        ":one": {"N": "1"},
        ":token": {"S": token},
        **where.values,
    }
    assignments = [
        "firstSeen = if_not_exists(firstSeen, :now)",
        "#status = if_not_exists(#status, :active)",
        f"{TOKEN_ATTRIBUTE} = :token",
    ]
    if where.is_runner:
        assignments.append(f"{FULL_ID_ATTRIBUTE} = :fullId")
    not_this_call = f"(attribute_not_exists({TOKEN_ATTRIBUTE}) OR {TOKEN_ATTRIBUTE} <> :token)"
    if advance:
        assignments += ["lastSeen = :now", f"{TTL_ATTRIBUTE} = :expires"]
        values[":expires"] = number(expires_at(now, retention_seconds))
        if request.hostname is not None:
            assignments.append("hostname = :hostname")
            values[":hostname"] = {"S": request.hostname}
        if request.worker_group is not None:
            assignments.append("workerGroup = :workerGroup")
            values[":workerGroup"] = {"S": request.worker_group}
        # New, or live and not last seen later than now (lastSeen never moves backwards).
        live = where.condition(f"{TTL_ATTRIBUTE} > :now AND lastSeen <= :now AND {not_this_call}")
        condition = f"attribute_not_exists(taskrunnerId) OR ({live})"
    else:
        condition = where.condition(f"{TTL_ATTRIBUTE} > :now AND {not_this_call}")
    response = table.request(
        "update_item",
        Key=where.key,
        UpdateExpression="SET " + ", ".join(assignments) + " ADD heartbeatCount :one",
        ConditionExpression=condition,
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=values,
        ReturnValues="ALL_NEW",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    return to_runner(response["Attributes"])


def _replace_expired(table: Table, request: HeartbeatRequest, token: str, now: float, retention_seconds: int) -> Runner:
    runner = Runner(
        taskrunner_id=request.taskrunner_id,
        status=Status.ACTIVE.value,
        first_seen=now,
        last_seen=now,
        heartbeat_count=1,
        expires_at=expires_at(now, retention_seconds),
        hostname=request.hostname,
        worker_group=request.worker_group,
    )
    # An expired record counts as absent, whoever's it was; a deleted one is simply created.
    table.request(
        "put_item",
        Item={**to_item(runner), TOKEN_ATTRIBUTE: {"S": token}},
        ConditionExpression=f"attribute_not_exists(taskrunnerId) OR {TTL_ATTRIBUTE} <= :now",
        ExpressionAttributeValues={":now": number(now)},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    return runner
