"""The keys table: one item per access key the service issued, partition key ``accessKeyId``.

Item: ``status`` (active | revoked), ``secretCiphertext`` (the secret sealed by
key_secrets, binary), ``workerGroups`` (a list; absent: any group), ``maxRunners`` (absent: no
cap), ``runnerCount``, ``registrations``, ``description``, ``createdAt``, ``revokedAt``,
``predecessor``/``successor`` (a rotation) and ``lastSeen`` (the sweeper's census).

A table of its own rather than items in the runners table: listing the keys reads a few items
instead of scanning every runner, and the functions' grants on it can be narrower than on
the runners table.

Counting runners. ``runnerCount`` is what the cap is checked against, atomically: a runner
is bound to a key (registered, claimed, or moved to it in a rotation) in one transaction with
``ADD runnerCount 1`` conditioned on the key being active and under its cap, so a refused
registration stores nothing. An operator's forget or rebind takes its runner off the count in
the same way. A record that expires (DynamoDB's TTL deletes it silently) is taken off by the
sweeper's census (``recount``), which also corrects any other drift: it counts each key's live
runners in its scan and adds the registrations made since the scan began, so the count errs
high (a runner bound during the scan may count twice until the next census). One caveat: the
scan is eventually consistent, so a runner bound in the instant before the census began could
be missed once, and the key then exceed its cap by that runner until the next census.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from heartbeat.access_keys import AccessKey, KeyStatus
from heartbeat.store.items import number, optional_number
from heartbeat.store.table import ConditionFailed, StoreError, Table, raise_store_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

PARTITION_KEY = "accessKeyId"


class UnknownKey(LookupError):
    """No key with that access key id."""


@dataclass(frozen=True)
class StoredKey:
    """A key's record and its sealed secret, as the keys table holds them."""

    key: AccessKey
    secret_ciphertext: bytes


def key_of(access_key_id: str) -> dict[str, AttributeValueTypeDef]:
    return {PARTITION_KEY: {"S": access_key_id}}


def to_item(stored: StoredKey) -> dict[str, AttributeValueTypeDef]:
    key = stored.key
    item: dict[str, AttributeValueTypeDef] = {
        **key_of(key.access_key_id),
        "status": {"S": key.status},
        "secretCiphertext": {"B": stored.secret_ciphertext},
        "runnerCount": number(key.runner_count),
        "registrations": {"N": "0"},
    }
    if key.worker_groups is not None:
        item["workerGroups"] = {"L": [{"S": group} for group in key.worker_groups]}
    if key.max_runners is not None:
        item["maxRunners"] = number(key.max_runners)
    if key.description:
        item["description"] = {"S": key.description}
    if key.created_at is not None:
        item["createdAt"] = number(key.created_at)
    if key.predecessor:
        item["predecessor"] = {"S": key.predecessor}
    return item


def to_key(item: dict[str, Any]) -> AccessKey:
    groups = item.get("workerGroups")
    return AccessKey(
        access_key_id=item[PARTITION_KEY]["S"],
        status=item["status"]["S"],
        worker_groups=None if groups is None else tuple(entry["S"] for entry in groups["L"]),
        max_runners=int(item["maxRunners"]["N"]) if "maxRunners" in item else None,
        runner_count=max(0, int(float(item.get("runnerCount", {}).get("N", "0")))),
        description=item.get("description", {}).get("S"),
        created_at=optional_number(item, "createdAt"),
        revoked_at=optional_number(item, "revokedAt"),
        predecessor=item.get("predecessor", {}).get("S"),
        successor=item.get("successor", {}).get("S"),
        last_seen=optional_number(item, "lastSeen"),
    )


def to_stored(item: dict[str, Any]) -> StoredKey:
    return StoredKey(to_key(item), bytes(item["secretCiphertext"]["B"]))


@dataclass
class KeyCensus:
    """One sweep's count of each key's live runners (see KeyTable.recount), begun before its scan."""

    registrations_before: dict[str, int]
    live: Counter[str] = field(default_factory=Counter)
    last_seen: dict[str, float] = field(default_factory=dict)

    def saw(self, access_key_id: str, last_seen: float) -> None:
        """A live runner bound to the key, seen by the scan."""
        self.live[access_key_id] += 1
        if last_seen > self.last_seen.get(access_key_id, 0.0):
            self.last_seen[access_key_id] = last_seen


class KeyTable:
    """The keys table's reads and writes. The runner store binds runners with transact items from here."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table = Table(table_name, client)

    @property
    def name(self) -> str:
        return self.table.name

    def get(self, access_key_id: str) -> StoredKey | None:
        """The key's record as stored now (a consistent read), whatever its status; None if there is none."""
        item = self.table.request("get_item", Key=key_of(access_key_id), ConsistentRead=True).get("Item")
        return to_stored(item) if item else None

    def create(self, stored: StoredKey) -> None:
        """Store a new key (its id is fresh: an existing one is never overwritten)."""
        self.table.request(
            "put_item", Item=to_item(stored), ConditionExpression=f"attribute_not_exists({PARTITION_KEY})"
        )

    def rotate(self, old_id: str, new: StoredKey) -> None:
        """Store the key that old_id is rotated to, and name it on old_id, in one transaction.

        UnknownKey unless old_id is active and not already rotated.
        """
        try:
            self.table.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.name,
                            "Item": to_item(new),
                            "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.name,
                            "Key": key_of(old_id),
                            "UpdateExpression": "SET successor = :new",
                            "ConditionExpression": "#status = :active AND attribute_not_exists(successor)",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": {
                                ":new": {"S": new.key.access_key_id},
                                ":active": {"S": KeyStatus.ACTIVE.value},
                            },
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise UnknownKey(old_id) from None
            raise_store_error("transact_write_items", error)
        except BotoCoreError as error:
            raise_store_error("transact_write_items", error)

    def revoke(self, access_key_id: str, now: float) -> AccessKey:
        """Mark the key revoked (at once in the table; every execution environment within KeyCache's bound)."""
        try:
            response = self.table.request(
                "update_item",
                Key=key_of(access_key_id),
                UpdateExpression="SET #status = :revoked, revokedAt = if_not_exists(revokedAt, :now)",
                ConditionExpression=f"attribute_exists({PARTITION_KEY})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":revoked": {"S": KeyStatus.REVOKED.value}, ":now": number(now)},
                ReturnValues="ALL_NEW",
            )
        except ConditionFailed:
            raise UnknownKey(access_key_id) from None
        return to_key(response["Attributes"])

    def keys(self) -> Iterator[AccessKey]:
        """Every key, page by page."""
        pages = self.table.client.get_paginator("scan").paginate(TableName=self.name, ConsistentRead=True)
        try:
            for page in pages:
                for item in page.get("Items", []):
                    yield to_key(item)
        except (ClientError, BotoCoreError) as error:
            raise_store_error("scan", error)

    def registrations(self) -> dict[str, int]:
        """Each key's registrations counter, read before a census (see recount)."""
        counters: dict[str, int] = {}
        pages = self.table.client.get_paginator("scan").paginate(
            TableName=self.name, ConsistentRead=True, ProjectionExpression=f"{PARTITION_KEY}, registrations"
        )
        try:
            for page in pages:
                for item in page.get("Items", []):
                    counters[item[PARTITION_KEY]["S"]] = int(item.get("registrations", {}).get("N", "0"))
        except (ClientError, BotoCoreError) as error:
            raise_store_error("scan", error)
        return counters

    def recount(self, access_key_id: str, live: int, registrations_before: int, last_seen: float | None) -> None:
        """Set the key's runner count from a census: its live runners as counted, plus those bound since.

        live counts the runners bound to the key that a scan begun after registrations_before was
        read saw unexpired. A runner bound since then is in the counter's difference (and may have
        been seen too: the count then errs high until the next census, never low).
        """
        for _ in range(4):
            stored = self.table.request(
                "get_item", Key=key_of(access_key_id), ConsistentRead=True, ProjectionExpression="registrations"
            ).get("Item")
            if not stored:
                return  # the key was deleted meanwhile
            now_registered = int(stored.get("registrations", {}).get("N", "0"))
            values: dict[str, AttributeValueTypeDef] = {
                ":count": number(live + max(0, now_registered - registrations_before)),
                ":seen": number(now_registered),
            }
            assignments = "runnerCount = :count"
            if last_seen is not None:
                assignments += ", lastSeen = :lastSeen"
                values[":lastSeen"] = number(last_seen)
            try:
                self.table.request(
                    "update_item",
                    Key=key_of(access_key_id),
                    UpdateExpression="SET " + assignments,
                    ConditionExpression="registrations = :seen",
                    ExpressionAttributeValues=values,
                )
            except ConditionFailed:
                continue  # a runner was bound meanwhile: count again with it
            return
        raise StoreError(f"key {access_key_id}: its runners kept changing during the census")


def count_change(table_name: str, access_key_id: str, delta: int, *, within_cap: bool) -> dict[str, Any]:
    """A transact item that moves the key's runner count by delta.

    within_cap: a runner is being bound to the key, which must be active and under its cap
    (the item fails its condition otherwise, and the whole transaction with it).
    """
    update: dict[str, Any] = {
        "TableName": table_name,
        "Key": key_of(access_key_id),
        "UpdateExpression": "ADD runnerCount :delta",
        "ExpressionAttributeValues": {":delta": {"N": str(delta)}},
    }
    if within_cap:
        update["UpdateExpression"] += ", registrations :one"
        update["ConditionExpression"] = (
            "#status = :active AND (attribute_not_exists(maxRunners) OR runnerCount < maxRunners)"
        )
        update["ExpressionAttributeNames"] = {"#status": "status"}
        update["ExpressionAttributeValues"].update({":active": {"S": KeyStatus.ACTIVE.value}, ":one": {"N": "1"}})
        update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    else:
        update["ConditionExpression"] = f"attribute_exists({PARTITION_KEY})"
    return {"Update": update}
