"""The heartbeat upsert: one conditional write per heartbeat, counted once even when its response is lost.

With authentication on, the same write also checks that the runner is bound to the key that
signed (``keyId = :key`` in its condition), so a steady heartbeat still costs one UpdateItem.
Binding a runner to a key (a new runner, an expired record replaced, a record from before
authentication claimed, a rotation's move) is one transaction with the key's count, which
refuses it at the key's cap or once the key is revoked, storing nothing (see store.keys).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from heartbeat.access_keys import AccessKey, Binding, KeyStatus, access_denied, binding
from heartbeat.errors import LimitExceededException, UnrecognizedClientException
from heartbeat.model import HeartbeatRequest
from heartbeat.runners import Runner, Status, expires_at
from heartbeat.sigv4 import INVALID_TOKEN_MESSAGE
from heartbeat.store.items import (
    FULL_ID_ATTRIBUTE,
    KEY_ATTRIBUTE,
    TOKEN_ATTRIBUTE,
    TTL_ATTRIBUTE,
    Address,
    address,
    number,
    taskrunner_id,
    to_item,
    to_runner,
)
from heartbeat.store.keys import count_change
from heartbeat.store.table import ConditionFailed, StoreError, Table, TransactionFailed, transact

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_UPSERT_ATTEMPTS = 4


@dataclass(frozen=True)
class Signer:
    """The key a heartbeat was signed with, and the table that counts its runners."""

    key: AccessKey
    keys_table: str


def record_heartbeat(
    table: Table, request: HeartbeatRequest, now: float, retention_seconds: int, signer: Signer | None = None
) -> Runner:
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
    advance, fresh = True, False
    # The key the record must name for a plain update: the signer's, or during a rotation its successor's.
    expected = signer.key.access_key_id if signer else None
    for attempt in range(_UPSERT_ATTEMPTS):
        try:
            if signer is not None and fresh:
                return _register(
                    table, request, token=token, attempt=attempt, now=now, retention_seconds=retention_seconds,
                    signer=signer,
                )  # fmt: skip
            if fresh:
                return _replace_expired(table, request, token, now, retention_seconds)
            return _update(
                table, request, where, token, now=now, retention_seconds=retention_seconds, advance=advance,
                bound_to=expected,
            )  # fmt: skip
        except ConditionFailed as failed:
            old = failed.item
        advance, fresh = True, False
        if old is None:
            fresh = signer is not None  # none yet (or deleted meanwhile): create it
            continue
        if old.get(TOKEN_ATTRIBUTE, {}).get("S") == token:
            return to_runner(old)  # this call's write was applied: the resend of a lost response
        if float(old[TTL_ATTRIBUTE]["N"]) <= now:
            fresh = True  # past its TTL, so absent, whoever's it was: the runner starts afresh
            continue
        if taskrunner_id(old) != request.taskrunner_id:
            raise StoreError("two taskrunnerIds share one digest key")
        bound_to = old.get(KEY_ATTRIBUTE, {}).get("S")
        if signer is None or bound_to == expected:
            advance = False  # live, and last seen later than now: count this one, keep the later time
            continue
        decision = binding(signer.key, bound_to)
        if decision is Binding.KEEP:
            expected = bound_to  # the old key of a rotation: accepted, the runner stays with its new key
        elif decision in (Binding.CLAIM, Binding.MOVE):
            return _rebind(
                table, request, where, token=token, attempt=attempt, now=now, retention_seconds=retention_seconds,
                signer=signer, old=old,
            )  # fmt: skip
        else:
            raise access_denied(signer.key)
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
    bound_to: str | None = None,
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
    # With a key, only a live record bound to it is updated: a new runner is registered apart.
    bound = ""
    if bound_to is not None:
        bound = f"{KEY_ATTRIBUTE} = :key AND "
        values[":key"] = {"S": bound_to}
    if advance:
        assignments += _heartbeat_assignments(request, now, retention_seconds, values)
        # New, or live and not last seen later than now (lastSeen never moves backwards).
        live = where.condition(f"{bound}{TTL_ATTRIBUTE} > :now AND lastSeen <= :now AND {not_this_call}")
        condition = live if bound_to is not None else f"attribute_not_exists(taskrunnerId) OR ({live})"
    else:
        condition = where.condition(f"{bound}{TTL_ATTRIBUTE} > :now AND {not_this_call}")
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


def _heartbeat_assignments(
    request: HeartbeatRequest, now: float, retention_seconds: int, values: dict[str, AttributeValueTypeDef]
) -> list[str]:
    """What a heartbeat sets on a live record (values gains their placeholders)."""
    assignments = ["lastSeen = :now", f"{TTL_ATTRIBUTE} = :expires"]
    values[":expires"] = number(expires_at(now, retention_seconds))
    if request.hostname is not None:
        assignments.append("hostname = :hostname")
        values[":hostname"] = {"S": request.hostname}
    if request.worker_group is not None:
        assignments.append("workerGroup = :workerGroup")
        values[":workerGroup"] = {"S": request.worker_group}
    return assignments


def _register(
    table: Table, request: HeartbeatRequest, *, token: str, attempt: int, now: float, retention_seconds: int,
    signer: Signer,
) -> Runner:  # fmt: skip
    """A new runner (or one whose record expired) bound to the signer's key, if the key may take another."""
    runner = Runner(
        taskrunner_id=request.taskrunner_id,
        status=Status.ACTIVE.value,
        first_seen=now,
        last_seen=now,
        heartbeat_count=1,
        expires_at=expires_at(now, retention_seconds),
        hostname=request.hostname,
        worker_group=request.worker_group,
        key_id=signer.key.access_key_id,
    )
    put = {
        "Put": {
            "TableName": table.name,
            "Item": {**to_item(runner), TOKEN_ATTRIBUTE: {"S": token}},
            # An expired record counts as absent, whoever's it was (its count is the census's to correct).
            "ConditionExpression": f"attribute_not_exists(taskrunnerId) OR {TTL_ATTRIBUTE} <= :now",
            "ExpressionAttributeValues": {":now": number(now)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    counted = count_change(signer.keys_table, signer.key.access_key_id, 1, within_cap=True)
    _bind(table, [put, counted], f"{token}-{attempt}", signer)
    return runner


def _rebind(
    table: Table, request: HeartbeatRequest, where: Address, *, token: str, attempt: int, now: float,
    retention_seconds: int, signer: Signer, old: dict[str, Any],
) -> Runner:  # fmt: skip
    """A live record claimed by the signer's key (it names none) or moved to it from its rotated key."""
    bound_to = old.get(KEY_ATTRIBUTE, {}).get("S")
    values: dict[str, AttributeValueTypeDef] = {
        ":now": number(now),
        ":one": {"N": "1"},
        ":token": {"S": token},
        ":key": {"S": signer.key.access_key_id},
        **where.values,
    }
    assignments = [f"{TOKEN_ATTRIBUTE} = :token", f"{KEY_ATTRIBUTE} = :key"]
    assignments += _heartbeat_assignments(request, now, retention_seconds, values)
    if bound_to is None:
        was_bound = f"attribute_not_exists({KEY_ATTRIBUTE})"
    else:
        was_bound = f"{KEY_ATTRIBUTE} = :old"
        values[":old"] = {"S": bound_to}
    update = {
        "Update": {
            "TableName": table.name,
            "Key": where.key,
            "UpdateExpression": "SET " + ", ".join(assignments) + " ADD heartbeatCount :one",
            "ConditionExpression": where.condition(f"{was_bound} AND {TTL_ATTRIBUTE} > :now AND lastSeen <= :now"),
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    items = [update, count_change(signer.keys_table, signer.key.access_key_id, 1, within_cap=True)]
    if bound_to is not None:
        items.append(count_change(signer.keys_table, bound_to, -1, within_cap=False))
    _bind(table, items, f"{token}-{attempt}", signer)
    runner = to_runner(old)
    return replace(
        runner,
        last_seen=now,
        heartbeat_count=runner.heartbeat_count + 1,
        expires_at=expires_at(now, retention_seconds),
        hostname=request.hostname if request.hostname is not None else runner.hostname,
        worker_group=request.worker_group if request.worker_group is not None else runner.worker_group,
        key_id=signer.key.access_key_id,
    )


def _bind(table: Table, items: list[dict[str, Any]], token: str, signer: Signer) -> None:
    """Run a binding transaction; a refusal by the key is the client's error, a changed record ConditionFailed."""
    try:
        transact(table.client, items, token)
    except TransactionFailed as failed:
        runner = failed.failed(0)
        if runner is not None:
            raise ConditionFailed(runner.get("Item")) from None
        key = failed.failed(1)
        if key is None:
            raise ConditionFailed(None) from None  # another transaction met this one: try again
        item = key.get("Item") or {}
        if item.get("status", {}).get("S") != KeyStatus.ACTIVE.value:
            raise UnrecognizedClientException(INVALID_TOKEN_MESSAGE) from None
        cap = item.get("maxRunners", {}).get("N", "?")
        raise LimitExceededException(
            f"Access key {signer.key.access_key_id} has reached its limit of {cap} runners: "
            "a new taskrunnerId cannot be registered under it"
        ) from None
