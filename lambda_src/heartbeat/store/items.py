"""The runner item codec: where a runner's item lives (its key) and how a Runner maps to attributes.

Item per runner, partition key ``taskrunnerId``: ``status``, ``firstSeen``/``lastSeen``
(epoch seconds, millisecond precision), ``heartbeatCount``, ``hostname``, ``workerGroup``,
``expiresAt`` (the TTL attribute, whole epoch seconds), ``requestToken`` (the last heartbeat
write's, see heartbeats.record_heartbeat) and, with authentication on, ``keyId`` (the access key
the runner is bound to). The store keeps items of its own (the sweeper's state)
under keys that start with U+FFFF, a character no valid taskrunnerId can contain.

Keys: a taskrunnerId of up to 2,048 UTF-8 bytes (DynamoDB's partition-key limit) is its own key.
A longer one (the API allows 1,024 code points, up to 4,096 bytes) is keyed by U+FFFF "sha256:"
and the SHA-256 of its UTF-8 bytes, and the item keeps the id itself in ``fullTaskrunnerId``;
every write to such an item is conditioned on that attribute, so two ids can never share a record
even if their digests collided. Only the store sees keys: the sweeper, the CLI and the events see
real ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from heartbeat.runners import Runner
from heartbeat.store.table import UnknownRunner

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

TTL_ATTRIBUTE = "expiresAt"
# U+FFFF starts every key that is not a taskrunnerId: the service model forbids it in an id.
RESERVED_KEY_START = "\uffff"
LONG_ID_KEY_PREFIX = RESERVED_KEY_START + "sha256:"
MAX_KEY_BYTES = 2048  # DynamoDB's limit on a partition key value, in UTF-8 bytes
FULL_ID_ATTRIBUTE = "fullTaskrunnerId"  # the id itself, in an item keyed by its digest
TOKEN_ATTRIBUTE = "requestToken"  # noqa: S105 - an attribute name, not a secret
KEY_ATTRIBUTE = "keyId"  # the access key a runner is bound to (see access_keys)


def number(value: float) -> AttributeValueTypeDef:
    """A number attribute; times (floats) to the millisecond."""
    return {"N": f"{value:.3f}" if isinstance(value, float) else str(value)}


def optional_number(item: dict[str, Any], name: str) -> float | None:
    return float(item[name]["N"]) if name in item else None


def storage_key(taskrunner_id: str) -> str:
    """The partition key value of a runner's item: the id itself, or a digest key for an id over 2,048 bytes."""
    encoded = taskrunner_id.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_KEY_BYTES:
        return taskrunner_id
    return LONG_ID_KEY_PREFIX + hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class Address:
    """Where a runner's item is, and the condition (with its values) that the item there is that runner's."""

    key: dict[str, AttributeValueTypeDef]
    is_runner: str  # a ConditionExpression fragment, "" for an id that is its own key
    values: dict[str, AttributeValueTypeDef]

    def condition(self, condition: str) -> str:
        return f"({condition}) AND {self.is_runner}" if self.is_runner else condition


def address(taskrunner_id: str) -> Address:
    """The runner's item's address; UnknownRunner for a string that could only reach one of the store's own items."""
    if taskrunner_id.startswith(RESERVED_KEY_START):
        raise UnknownRunner(taskrunner_id)
    key = storage_key(taskrunner_id)
    if key == taskrunner_id:
        return Address({"taskrunnerId": {"S": key}}, "", {})
    return Address({"taskrunnerId": {"S": key}}, f"{FULL_ID_ATTRIBUTE} = :fullId", {":fullId": {"S": taskrunner_id}})


def reserved_key(name: str) -> dict[str, AttributeValueTypeDef]:
    """The key of one of the store's own items."""
    return {"taskrunnerId": {"S": RESERVED_KEY_START + name}}


def is_runner_item(item: dict[str, Any]) -> bool:
    """Whether a scanned item is a runner's: a reserved key is the store's own unless it is a long id's digest key."""
    return not item["taskrunnerId"]["S"].startswith(RESERVED_KEY_START) or FULL_ID_ATTRIBUTE in item


def taskrunner_id(item: dict[str, Any]) -> str:
    """The real taskrunnerId of a runner's item, whatever its key."""
    full = item.get(FULL_ID_ATTRIBUTE)
    return str(full["S"]) if full else str(item["taskrunnerId"]["S"])


def to_item(runner: Runner) -> dict[str, AttributeValueTypeDef]:
    """A runner's identity and heartbeat attributes as an item (flags and operator fields are not written here)."""
    key = storage_key(runner.taskrunner_id)
    item: dict[str, AttributeValueTypeDef] = {
        "taskrunnerId": {"S": key},
        "status": {"S": runner.status},
        "firstSeen": number(runner.first_seen),
        "lastSeen": number(runner.last_seen),
        "heartbeatCount": number(runner.heartbeat_count),
        TTL_ATTRIBUTE: number(runner.expires_at),
    }
    if key != runner.taskrunner_id:
        item[FULL_ID_ATTRIBUTE] = {"S": runner.taskrunner_id}
    if runner.hostname is not None:
        item["hostname"] = {"S": runner.hostname}
    if runner.worker_group is not None:
        item["workerGroup"] = {"S": runner.worker_group}
    if runner.key_id is not None:
        item[KEY_ATTRIBUTE] = {"S": runner.key_id}
    return item


def to_runner(item: dict[str, Any]) -> Runner:
    """A runner's item as a Runner."""
    return Runner(
        taskrunner_id=taskrunner_id(item),
        status=item["status"]["S"],
        first_seen=float(item["firstSeen"]["N"]),
        last_seen=float(item["lastSeen"]["N"]),
        heartbeat_count=int(item["heartbeatCount"]["N"]),
        expires_at=int(float(item[TTL_ATTRIBUTE]["N"])),
        hostname=item.get("hostname", {}).get("S"),
        worker_group=item.get("workerGroup", {}).get("S"),
        stale_at=optional_number(item, "staleAt"),
        event_pending="eventPending" in item,
        terminate_requested_at=optional_number(item, "terminateRequestedAt"),
        terminate_requested_by=item.get("terminateRequestedBy", {}).get("S"),
        terminate_reason=item.get("terminateReason", {}).get("S"),
        reset_at=optional_number(item, "resetAt"),
        retired_at=optional_number(item, "retiredAt"),
        retired_by=item.get("retiredBy", {}).get("S"),
        retire_reason=item.get("retireReason", {}).get("S"),
        key_id=item.get(KEY_ATTRIBUTE, {}).get("S"),
    )
