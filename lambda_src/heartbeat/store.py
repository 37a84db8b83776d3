"""DynamoDB access: the one place that knows the table's item shape.

Item per runner, partition key ``taskrunnerId``:
``status``, ``firstSeen``/``lastSeen`` (epoch seconds, millisecond precision),
``heartbeatCount``, ``hostname``, ``workerGroup`` and ``expiresAt`` (the TTL
attribute, whole epoch seconds). The sweeper keeps its own state in one item
whose key holds U+FFFF, a character no valid taskrunnerId can contain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from heartbeat.model import HeartbeatRequest
from heartbeat.runners import Hold, Runner, Status, expires_at

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

TTL_ATTRIBUTE = "expiresAt"
SWEEP_STATE_KEY = "\uffffsweeper-state"

# Bounded: connect 1 s + read 1 s per attempt, 3 attempts with standard back-off
# (under 1 s, then under 2 s), at most about 9 s: inside the 10 s Lambda timeout, so a
# failing table gives a timely 500, which clients retry. No client-side parameter
# validation: this module builds every request from checked values, DynamoDB validates
# them again, and botocore's check was a third of the handler's own time (make bench).
CLIENT_CONFIG = BotoConfig(
    parameter_validation=False,
    connect_timeout=1,
    read_timeout=1,
    retries={"mode": "standard", "total_max_attempts": 3},
)

_UPSERT_ATTEMPTS = 3


class StoreError(Exception):
    """DynamoDB failed (throttled, unavailable, timed out or refused)."""


class _ConditionFailed(Exception):
    """A conditional write's condition did not hold; item is the record as it was, if any."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


@dataclass(frozen=True)
class SweepCandidate:
    """What the sweeper needs to know of an active runner, or of a flagged one that still owes its event."""

    taskrunner_id: str
    status: str
    last_seen: float
    worker_group: str | None = None
    hostname: str | None = None
    stale_at: float | None = None
    event_pending: bool = False
    reset_at: float | None = None  # an operator's last reset: silence counts from then at the earliest


class UnknownRunner(LookupError):
    """No record for that taskrunnerId."""


@dataclass(frozen=True)
class SweepState:
    """The sweeper's memory between runs (see sweeper.py and runners.judge_fleet).

    last_sweep_at is when the last completed sweep started (it orders sweeps), finished_at when
    it ended (the sweeper's down time is measured from there), watching_since when its unbroken
    watch began, and the holds the guard's last spells of holding the whole fleet or a worker group.
    """

    last_sweep_at: float
    watching_since: float
    finished_at: float | None = None
    fleet_hold: Hold | None = None
    group_holds: Mapping[str | None, Hold] = field(default_factory=dict)


def _n(value: float) -> AttributeValueTypeDef:
    return {"N": f"{value:.3f}" if isinstance(value, float) else str(value)}


class RunnerStore:
    """Runner records in one DynamoDB table. Give it a client to use another endpoint or a stub."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("dynamodb", config=CLIENT_CONFIG)
        self.table_name = table_name
        self.client = client

    def record_heartbeat(self, request: HeartbeatRequest, now: float, retention_seconds: int) -> Runner:
        """Upsert the runner's record for a heartbeat received at now, and return it.

        One conditional UpdateItem in the steady state and for a new runner. Rarely, one more:
        a record past its TTL (which DynamoDB deletes lazily) is replaced as if new, and a
        heartbeat that lost a race to one stamped later is counted without moving lastSeen back.
        """
        advance = True
        for _ in range(_UPSERT_ATTEMPTS):
            try:
                return self._update(request, now, retention_seconds, advance=advance)
            except _ConditionFailed as failed:
                old = failed.item
            if old is not None and float(old[TTL_ATTRIBUTE]["N"]) > now:
                advance = False  # live, and last seen later than now: count this one, keep the later time
                continue
            try:
                return self._replace_expired(request, now, retention_seconds)
            except _ConditionFailed:
                continue  # someone else changed it meanwhile: try again
        raise StoreError("the runner's record kept changing under concurrent heartbeats")

    def _update(self, request: HeartbeatRequest, now: float, retention_seconds: int, *, advance: bool) -> Runner:
        values: dict[str, AttributeValueTypeDef] = {
            ":now": _n(now),
            ":active": {"S": Status.ACTIVE.value},
            ":one": {"N": "1"},
        }
        assignments = ["firstSeen = if_not_exists(firstSeen, :now)", "#status = if_not_exists(#status, :active)"]
        if advance:
            assignments += ["lastSeen = :now", f"{TTL_ATTRIBUTE} = :expires"]
            values[":expires"] = _n(expires_at(now, retention_seconds))
            if request.hostname is not None:
                assignments.append("hostname = :hostname")
                values[":hostname"] = {"S": request.hostname}
            if request.worker_group is not None:
                assignments.append("workerGroup = :workerGroup")
                values[":workerGroup"] = {"S": request.worker_group}
            # New, or live and not last seen later than now (lastSeen never moves backwards).
            condition = f"attribute_not_exists(taskrunnerId) OR ({TTL_ATTRIBUTE} > :now AND lastSeen <= :now)"
        else:
            condition = f"{TTL_ATTRIBUTE} > :now"
        response = self._request(
            "update_item",
            TableName=self.table_name,
            Key={"taskrunnerId": {"S": request.taskrunner_id}},
            UpdateExpression="SET " + ", ".join(assignments) + " ADD heartbeatCount :one",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return _runner(response["Attributes"])

    def _replace_expired(self, request: HeartbeatRequest, now: float, retention_seconds: int) -> Runner:
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
        self._request(
            "put_item",
            TableName=self.table_name,
            Item=_item(runner),
            ConditionExpression=f"{TTL_ATTRIBUTE} <= :now",
            ExpressionAttributeValues={":now": _n(now)},
        )
        return runner

    def _request(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call one DynamoDB operation; every failure becomes StoreError, a failed condition _ConditionFailed."""
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**kwargs)
        except ClientError as error:
            code = _error_code(error)
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(error.response.get("Item")) from None  # type: ignore[arg-type]
            raise StoreError(f"{operation} failed: {code}") from error
        except BotoCoreError as error:
            raise StoreError(f"{operation} failed: {type(error).__name__}") from error
        return response

    def get_runner(self, taskrunner_id: str) -> Runner | None:
        """The runner's record as stored, expired or not; None when there is none."""
        response = self._request(
            "get_item", TableName=self.table_name, Key={"taskrunnerId": {"S": taskrunner_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return _runner(item) if item else None

    def sweep_candidates(self, now: float) -> Iterator[SweepCandidate]:
        """Every active, unexpired runner, and every flagged runner whose stale event is still owed; page by page."""
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table_name,
            ProjectionExpression=(
                "taskrunnerId, #status, lastSeen, workerGroup, hostname, staleAt, eventPending, resetAt"
            ),
            FilterExpression=f"(#status = :active AND {TTL_ATTRIBUTE} > :now) OR attribute_exists(eventPending)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":active": {"S": Status.ACTIVE.value}, ":now": _n(now)},
        )
        for item in self._scan(pages):
            yield SweepCandidate(
                taskrunner_id=item["taskrunnerId"]["S"],
                status=item["status"]["S"],
                last_seen=float(item["lastSeen"]["N"]),
                worker_group=item.get("workerGroup", {}).get("S"),
                hostname=item.get("hostname", {}).get("S"),
                stale_at=float(item["staleAt"]["N"]) if "staleAt" in item else None,
                event_pending="eventPending" in item,
                reset_at=float(item["resetAt"]["N"]) if "resetAt" in item else None,
            )

    def runners(self) -> Iterator[Runner]:
        """Every runner record, page by page (never the whole table in memory)."""
        pages = self.client.get_paginator("scan").paginate(TableName=self.table_name)
        for item in self._scan(pages):
            if item["taskrunnerId"]["S"] != SWEEP_STATE_KEY:
                yield _runner(item)

    def _scan(self, pages: Any) -> Iterator[dict[str, Any]]:
        try:
            for page in pages:
                yield from page.get("Items", [])
        except ClientError as error:
            raise StoreError(f"scan failed: {_error_code(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"scan failed: {type(error).__name__}") from error

    def flag_stale(self, taskrunner_id: str, last_seen_before: float, now: float) -> bool:
        """Flag an active runner stale unless a heartbeat or a reset since last_seen_before wins the race.

        Returns whether this call flagged it.
        """
        try:
            self._request(
                "update_item",
                TableName=self.table_name,
                Key={"taskrunnerId": {"S": taskrunner_id}},
                # eventPending: the stale event is owed until it is published (see sweeper.py).
                UpdateExpression="SET #status = :stale, staleAt = :now, eventPending = :true",
                ConditionExpression=f"#status = :active AND lastSeen < :cutoff AND {TTL_ATTRIBUTE} > :now "
                "AND (attribute_not_exists(resetAt) OR resetAt < :cutoff)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":stale": {"S": Status.STALE.value},
                    ":active": {"S": Status.ACTIVE.value},
                    ":cutoff": _n(last_seen_before),
                    ":now": _n(now),
                    ":true": {"BOOL": True},
                },
            )
        except _ConditionFailed:
            return False
        return True

    def event_published(self, taskrunner_id: str) -> None:
        """The runner's stale event is out: it owes none any more."""
        with contextlib.suppress(_ConditionFailed):  # already recorded (a concurrent sweep, or a reset)
            self._request(
                "update_item",
                TableName=self.table_name,
                Key={"taskrunnerId": {"S": taskrunner_id}},
                UpdateExpression="REMOVE eventPending",
                ConditionExpression="attribute_exists(eventPending)",
            )

    def request_terminate(self, taskrunner_id: str, *, by: str, reason: str | None, now: float) -> Runner:
        """An operator's drain: the runner's next heartbeat answers terminate: true. Records who, when and why."""
        values: dict[str, AttributeValueTypeDef] = {
            ":terminating": {"S": Status.TERMINATING.value},
            ":now": _n(now),
            ":by": {"S": by},
        }
        assignments = "#status = :terminating, terminateRequestedAt = :now, terminateRequestedBy = :by"
        if reason:
            assignments += ", terminateReason = :reason"
            values[":reason"] = {"S": reason}
        return self._operator_update(taskrunner_id, "SET " + assignments, values)

    def reset(self, taskrunner_id: str, now: float) -> Runner:
        """Clear a stale or terminate flag, for a runner an operator has repaired.

        Records resetAt = now: the sweeper counts the runner's silence from then at the earliest,
        so it gets a full threshold to beat again.
        """
        return self._operator_update(
            taskrunner_id,
            "SET #status = :active, resetAt = :now REMOVE staleAt, eventPending, terminateRequestedAt, "
            "terminateRequestedBy, terminateReason",
            {":active": {"S": Status.ACTIVE.value}, ":now": _n(now)},
        )

    def forget(self, taskrunner_id: str) -> None:
        """Delete the runner's record."""
        try:
            self._request(
                "delete_item",
                TableName=self.table_name,
                Key={"taskrunnerId": {"S": taskrunner_id}},
                ConditionExpression="attribute_exists(taskrunnerId)",
            )
        except _ConditionFailed:
            raise UnknownRunner(taskrunner_id) from None

    def _operator_update(self, taskrunner_id: str, expression: str, values: dict[str, AttributeValueTypeDef]) -> Runner:
        try:
            response = self._request(
                "update_item",
                TableName=self.table_name,
                Key={"taskrunnerId": {"S": taskrunner_id}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(taskrunnerId)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except _ConditionFailed:
            raise UnknownRunner(taskrunner_id) from None
        return _runner(response["Attributes"])

    def load_sweep_state(self) -> SweepState | None:
        """The sweeper's state after its last completed run, if any."""
        response = self._request(
            "get_item", TableName=self.table_name, Key={"taskrunnerId": {"S": SWEEP_STATE_KEY}}, ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        return SweepState(
            last_sweep_at=float(item["lastSweepAt"]["N"]),
            watching_since=float(item["watchingSince"]["N"]),
            finished_at=_optional_number(item, "finishedAt"),
            fleet_hold=_hold(item["fleetHold"]["M"]) if "fleetHold" in item else None,
            group_holds={
                entry["M"]["workerGroup"].get("S"): _hold(entry["M"])
                for entry in item.get("groupHolds", {}).get("L", [])
            },
        )

    def save_sweep_state(self, state: SweepState) -> bool:
        """Record a completed sweep, unless a sweep that started later has already recorded its own.

        Conditional, so that state never goes backwards (an operator's manual sweep that ends
        after a newer scheduled one must not overwrite it). Returns whether it was recorded.
        """
        item: dict[str, AttributeValueTypeDef] = {
            "taskrunnerId": {"S": SWEEP_STATE_KEY},
            "lastSweepAt": _n(state.last_sweep_at),
            "watchingSince": _n(state.watching_since),
            # A list, not a map: a worker group may be "" or absent (None), and both must round-trip.
            "groupHolds": {
                "L": [
                    {"M": {"workerGroup": {"NULL": True} if group is None else {"S": group}, **_hold_item(hold)}}
                    for group, hold in state.group_holds.items()
                ]
            },
        }
        if state.finished_at is not None:
            item["finishedAt"] = _n(state.finished_at)
        if state.fleet_hold is not None:
            item["fleetHold"] = {"M": _hold_item(state.fleet_hold)}
        try:
            self._request(
                "put_item",
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(taskrunnerId) OR lastSweepAt <= :started",
                ExpressionAttributeValues={":started": _n(state.last_sweep_at)},
            )
        except _ConditionFailed:
            return False
        return True


def _hold(item: Mapping[str, Any]) -> Hold:
    return Hold(since=float(item["heldSince"]["N"]), last=float(item["heldAt"]["N"]))


def _hold_item(hold: Hold) -> dict[str, AttributeValueTypeDef]:
    return {"heldSince": _n(hold.since), "heldAt": _n(hold.last)}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _item(runner: Runner) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        "taskrunnerId": {"S": runner.taskrunner_id},
        "status": {"S": runner.status},
        "firstSeen": _n(runner.first_seen),
        "lastSeen": _n(runner.last_seen),
        "heartbeatCount": _n(runner.heartbeat_count),
        TTL_ATTRIBUTE: _n(runner.expires_at),
    }
    if runner.hostname is not None:
        item["hostname"] = {"S": runner.hostname}
    if runner.worker_group is not None:
        item["workerGroup"] = {"S": runner.worker_group}
    return item


def _runner(item: dict[str, Any]) -> Runner:
    return Runner(
        taskrunner_id=item["taskrunnerId"]["S"],
        status=item["status"]["S"],
        first_seen=float(item["firstSeen"]["N"]),
        last_seen=float(item["lastSeen"]["N"]),
        heartbeat_count=int(item["heartbeatCount"]["N"]),
        expires_at=int(float(item[TTL_ATTRIBUTE]["N"])),
        hostname=item.get("hostname", {}).get("S"),
        worker_group=item.get("workerGroup", {}).get("S"),
        stale_at=_optional_number(item, "staleAt"),
        event_pending="eventPending" in item,
        terminate_requested_at=_optional_number(item, "terminateRequestedAt"),
        terminate_requested_by=item.get("terminateRequestedBy", {}).get("S"),
        terminate_reason=item.get("terminateReason", {}).get("S"),
        reset_at=_optional_number(item, "resetAt"),
    )


def _optional_number(item: dict[str, Any], name: str) -> float | None:
    return float(item[name]["N"]) if name in item else None
