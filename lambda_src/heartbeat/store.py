"""DynamoDB access: the one place that knows the table's item shape.

Item per runner, partition key ``taskrunnerId``:
``status``, ``firstSeen``/``lastSeen`` (epoch seconds, millisecond precision),
``heartbeatCount``, ``hostname``, ``workerGroup``, ``expiresAt`` (the TTL
attribute, whole epoch seconds) and ``requestToken`` (the last heartbeat write's, see
record_heartbeat). The sweeper keeps its own state in one item whose key starts with
U+FFFF, a character no valid taskrunnerId can contain.

Keys: a taskrunnerId of up to 2,048 UTF-8 bytes (DynamoDB's partition-key limit) is its
own key, as it always was. A longer one (the API allows 1,024 code points, up to 4,096
bytes) is keyed by U+FFFF "sha256:" and the SHA-256 of its UTF-8 bytes, and the item keeps
the id itself in ``fullTaskrunnerId``; every write to such an item is conditioned on that
attribute, so two ids can never share a record even if their digests collided. Only this
module sees keys: the sweeper, the CLI and the events see real ids.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import queue
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from heartbeat.model import HeartbeatRequest
from heartbeat.plan import FUTURE_TOLERANCE_SECONDS, Hold, ScopeSummary, SweepState
from heartbeat.runners import Runner, Status, expires_at

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

TTL_ATTRIBUTE = "expiresAt"
# U+FFFF starts every key that is not a taskrunnerId: the service model forbids it in an id.
RESERVED_KEY_START = "\uffff"
SWEEP_STATE_KEY = RESERVED_KEY_START + "sweeper-state"
LONG_ID_KEY_PREFIX = RESERVED_KEY_START + "sha256:"
MAX_KEY_BYTES = 2048  # DynamoDB's limit on a partition key value, in UTF-8 bytes
FULL_ID_ATTRIBUTE = "fullTaskrunnerId"  # the id itself, in an item keyed by its digest
TOKEN_ATTRIBUTE = "requestToken"  # noqa: S105 - an attribute name, not a secret

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

# The sweeper's scan: segments read at once. 8 keep a 10M-runner table's scan well inside the
# sweep interval (README, Sweeper scale), and with the sweep's own writes they stay within
# botocore's default pool of 10 connections (more segments need a bigger max_pool_connections).
SCAN_SEGMENTS = 8

# The sweeper's client: a Scan page is up to 1 MB, which may take longer than the handler's 1 s
# to arrive, and each scan segment keeps a connection of its own beside the sweep's writes.
SWEEPER_CLIENT_CONFIG = CLIENT_CONFIG.merge(BotoConfig(read_timeout=10, max_pool_connections=SCAN_SEGMENTS + 2))

_UPSERT_ATTEMPTS = 4


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
    first_seen: float | None = None  # with heartbeat_count: the runner's beat period (plan.typical_period)
    heartbeat_count: int | None = None


class UnknownRunner(LookupError):
    """No record for that taskrunnerId."""


def _n(value: float) -> AttributeValueTypeDef:
    return {"N": f"{value:.3f}" if isinstance(value, float) else str(value)}


def storage_key(taskrunner_id: str) -> str:
    """The partition key value of a runner's item: the id itself, or a digest key for an id over 2,048 bytes."""
    encoded = taskrunner_id.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_KEY_BYTES:
        return taskrunner_id
    return LONG_ID_KEY_PREFIX + hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class _Address:
    """Where a runner's item is, and the condition (with its values) that the item there is that runner's."""

    key: dict[str, AttributeValueTypeDef]
    is_runner: str  # a ConditionExpression fragment, "" for an id that is its own key
    values: dict[str, AttributeValueTypeDef]

    def condition(self, condition: str) -> str:
        return f"({condition}) AND {self.is_runner}" if self.is_runner else condition


def _address(taskrunner_id: str) -> _Address:
    if taskrunner_id.startswith(RESERVED_KEY_START):
        raise UnknownRunner(taskrunner_id)  # not a valid id: it could only reach an internal item
    key = storage_key(taskrunner_id)
    if key == taskrunner_id:
        return _Address({"taskrunnerId": {"S": key}}, "", {})
    return _Address({"taskrunnerId": {"S": key}}, f"{FULL_ID_ATTRIBUTE} = :fullId", {":fullId": {"S": taskrunner_id}})


def _taskrunner_id(item: dict[str, Any]) -> str:
    """The real taskrunnerId of a runner's item, whatever its key."""
    full = item.get(FULL_ID_ATTRIBUTE)
    return str(full["S"]) if full else str(item["taskrunnerId"]["S"])


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
        address = _address(request.taskrunner_id)
        advance, replace = True, False
        for _ in range(_UPSERT_ATTEMPTS):
            try:
                if replace:
                    return self._replace_expired(request, address, token, now, retention_seconds)
                return self._update(request, address, token, now, retention_seconds, advance=advance)
            except _ConditionFailed as failed:
                old = failed.item
            advance, replace = True, False
            if old is None:
                continue  # deleted meanwhile: create it
            if old.get(TOKEN_ATTRIBUTE, {}).get("S") == token:
                return _runner(old)  # this call's write was applied: the resend of a lost response
            if float(old[TTL_ATTRIBUTE]["N"]) <= now:
                replace = True  # past its TTL, so absent, whoever's it was: the runner starts afresh
            elif _taskrunner_id(old) != request.taskrunner_id:
                raise StoreError("two taskrunnerIds share one digest key")
            else:
                advance = False  # live, and last seen later than now: count this one, keep the later time
        raise StoreError("the runner's record kept changing under concurrent heartbeats")

    def _update(
        self,
        request: HeartbeatRequest,
        address: _Address,
        token: str,
        now: float,
        retention_seconds: int,
        *,
        advance: bool,
    ) -> Runner:
        values: dict[str, AttributeValueTypeDef] = {
            ":now": _n(now),
            ":active": {"S": Status.ACTIVE.value},
            ":one": {"N": "1"},
            ":token": {"S": token},
            **address.values,
        }
        assignments = [
            "firstSeen = if_not_exists(firstSeen, :now)",
            "#status = if_not_exists(#status, :active)",
            f"{TOKEN_ATTRIBUTE} = :token",
        ]
        if address.is_runner:
            assignments.append(f"{FULL_ID_ATTRIBUTE} = :fullId")
        not_this_call = f"(attribute_not_exists({TOKEN_ATTRIBUTE}) OR {TOKEN_ATTRIBUTE} <> :token)"
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
            live = address.condition(f"{TTL_ATTRIBUTE} > :now AND lastSeen <= :now AND {not_this_call}")
            condition = f"attribute_not_exists(taskrunnerId) OR ({live})"
        else:
            condition = address.condition(f"{TTL_ATTRIBUTE} > :now AND {not_this_call}")
        response = self._request(
            "update_item",
            TableName=self.table_name,
            Key=address.key,
            UpdateExpression="SET " + ", ".join(assignments) + " ADD heartbeatCount :one",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return _runner(response["Attributes"])

    def _replace_expired(
        self, request: HeartbeatRequest, address: _Address, token: str, now: float, retention_seconds: int
    ) -> Runner:
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
        self._request(
            "put_item",
            TableName=self.table_name,
            Item={**_item(runner), TOKEN_ATTRIBUTE: {"S": token}},
            ConditionExpression=f"attribute_not_exists(taskrunnerId) OR {TTL_ATTRIBUTE} <= :now",
            ExpressionAttributeValues={":now": _n(now)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
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
        try:
            address = _address(taskrunner_id)
        except UnknownRunner:
            return None
        response = self._request("get_item", TableName=self.table_name, Key=address.key, ConsistentRead=True)
        item = response.get("Item")
        return _runner(item) if item and _taskrunner_id(item) == taskrunner_id else None

    def sweep_candidates(self, now: float) -> Iterator[SweepCandidate]:
        """Every active, unexpired runner, and every flagged runner whose stale event is still owed.

        Streamed from a parallel scan (see _parallel_scan): memory stays flat however big the fleet.
        """
        items = self._parallel_scan(
            ProjectionExpression=f"taskrunnerId, {FULL_ID_ATTRIBUTE}, #status, lastSeen, workerGroup, hostname, "
            "staleAt, eventPending, resetAt, firstSeen, heartbeatCount",
            FilterExpression=f"(#status = :active AND {TTL_ATTRIBUTE} > :now) OR attribute_exists(eventPending)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":active": {"S": Status.ACTIVE.value}, ":now": _n(now)},
        )
        for item in items:
            yield SweepCandidate(
                taskrunner_id=_taskrunner_id(item),
                status=item["status"]["S"],
                last_seen=float(item["lastSeen"]["N"]),
                worker_group=item.get("workerGroup", {}).get("S"),
                hostname=item.get("hostname", {}).get("S"),
                stale_at=float(item["staleAt"]["N"]) if "staleAt" in item else None,
                event_pending="eventPending" in item,
                reset_at=float(item["resetAt"]["N"]) if "resetAt" in item else None,
                first_seen=float(item["firstSeen"]["N"]) if "firstSeen" in item else None,
                heartbeat_count=int(item["heartbeatCount"]["N"]) if "heartbeatCount" in item else None,
            )

    def runners(self) -> Iterator[Runner]:
        """Every runner record, page by page (never the whole table in memory)."""
        pages = self.client.get_paginator("scan").paginate(TableName=self.table_name)
        for item in self._scan(pages):
            # A reserved key is the store's own (the sweep state) unless it is a long id's digest key.
            if not item["taskrunnerId"]["S"].startswith(RESERVED_KEY_START) or FULL_ID_ATTRIBUTE in item:
                yield _runner(item)

    def _scan(self, pages: Any) -> Iterator[dict[str, Any]]:
        try:
            for page in pages:
                yield from page.get("Items", [])
        except ClientError as error:
            raise StoreError(f"scan failed: {_error_code(error)}") from error
        except BotoCoreError as error:
            raise StoreError(f"scan failed: {type(error).__name__}") from error

    # The sweeper's scan, its segments read at once: Python threads wait on DynamoDB together (the
    # GIL keeps their parsing serial, which _lean_scan_items makes cheap). Each thread hands whole
    # pages over a queue of one; a thread waits with its next page until the reader takes it, so at
    # most one page per segment and two more are in memory, however big the table.
    scan_segments: int = SCAN_SEGMENTS
    scan_page_limit: int | None = None  # items per Scan page, for tests; None: DynamoDB's 1 MB pages

    def _parallel_scan(self, **request: Any) -> Iterator[dict[str, Any]]:
        self.client.meta.events.register(
            "before-parse.dynamodb.Scan", _lean_scan_items, unique_id="heartbeat-store-lean-scan"
        )
        segments = self.scan_segments
        pages: queue.Queue[list[dict[str, Any]] | BaseException | None] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def hand_over(page: list[dict[str, Any]] | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    pages.put(page, timeout=0.05)
                except queue.Full:
                    continue
                return True
            return False

        def read(segment: int) -> None:
            arguments: dict[str, Any] = {"TableName": self.table_name, "Segment": segment, "TotalSegments": segments}
            if self.scan_page_limit:
                arguments["Limit"] = self.scan_page_limit
            try:
                for page in self.client.get_paginator("scan").paginate(**arguments, **request):
                    if not hand_over(page.get("Items", [])):
                        return  # the sweep stopped reading
            except BaseException as error:  # handed to the reader, who raises it
                hand_over(error)
                return
            hand_over(None)

        threads = [threading.Thread(target=read, args=(n,), daemon=True) for n in range(segments)]
        for thread in threads:
            thread.start()
        try:
            finished = 0
            while finished < segments:
                page = pages.get()
                if page is None:
                    finished += 1
                elif isinstance(page, list):
                    yield from page
                else:
                    self._scan_failed(page)
        finally:
            stop.set()
            for thread in threads:
                thread.join()

    @staticmethod
    def _scan_failed(error: BaseException) -> None:
        if isinstance(error, ClientError):
            raise StoreError(f"scan failed: {_error_code(error)}") from error
        if isinstance(error, BotoCoreError):
            raise StoreError(f"scan failed: {type(error).__name__}") from error
        raise error

    def flag_stale(self, taskrunner_id: str, last_seen_before: float, now: float) -> bool:
        """Flag an active runner stale unless a heartbeat or a reset since last_seen_before wins the race.

        last_seen_before is the plan's cutoff (plan.Judgement.cutoff); a retire or terminate that
        lands first wins too (the runner is no longer active). Returns whether this call flagged it.
        """
        address = _address(taskrunner_id)
        try:
            self._request(
                "update_item",
                TableName=self.table_name,
                Key=address.key,
                # eventPending: the stale event is owed until it is published (see sweeper.py).
                UpdateExpression="SET #status = :stale, staleAt = :now, eventPending = :true",
                ConditionExpression=address.condition(
                    f"#status = :active AND lastSeen < :cutoff AND {TTL_ATTRIBUTE} > :now "
                    "AND (attribute_not_exists(resetAt) OR resetAt < :cutoff)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":stale": {"S": Status.STALE.value},
                    ":active": {"S": Status.ACTIVE.value},
                    ":cutoff": _n(last_seen_before),
                    ":now": _n(now),
                    ":true": {"BOOL": True},
                    **address.values,
                },
            )
        except _ConditionFailed:
            return False
        return True

    def event_published(self, taskrunner_id: str) -> None:
        """The runner's stale event is out: it owes none any more."""
        address = _address(taskrunner_id)
        with contextlib.suppress(_ConditionFailed):  # already recorded (a concurrent sweep, or a reset)
            self._request(
                "update_item",
                TableName=self.table_name,
                Key=address.key,
                UpdateExpression="REMOVE eventPending",
                ConditionExpression=address.condition("attribute_exists(eventPending)"),
                **({"ExpressionAttributeValues": address.values} if address.values else {}),
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

    def retire(self, taskrunner_id: str, *, by: str, reason: str | None, now: float) -> Runner:
        """The runner left the fleet on purpose: out of the sweeper's census at once, never flagged, no stale event.

        Sticky: a heartbeat after it answers terminate: true and keeps the record retired (so a
        late heartbeat during an instance's shutdown cannot bring it back as active, to go stale
        later). An event still owed from an earlier flag is dropped: the runner is gone on purpose.
        """
        values: dict[str, AttributeValueTypeDef] = {
            ":retired": {"S": Status.RETIRED.value},
            ":now": _n(now),
            ":by": {"S": by},
        }
        assignments = "#status = :retired, retiredAt = :now, retiredBy = :by"
        if reason:
            assignments += ", retireReason = :reason"
            values[":reason"] = {"S": reason}
        return self._operator_update(taskrunner_id, f"SET {assignments} REMOVE eventPending", values)

    def reset(self, taskrunner_id: str, now: float) -> Runner:
        """Clear a stale, terminate or retired status, for a runner an operator has repaired or brought back.

        Records resetAt = now: the sweeper counts the runner's silence from then at the earliest,
        so it gets a full threshold to beat again.
        """
        return self._operator_update(
            taskrunner_id,
            "SET #status = :active, resetAt = :now REMOVE staleAt, eventPending, terminateRequestedAt, "
            "terminateRequestedBy, terminateReason, retiredAt, retiredBy, retireReason",
            {":active": {"S": Status.ACTIVE.value}, ":now": _n(now)},
        )

    def forget(self, taskrunner_id: str) -> None:
        """Delete the runner's record."""
        address = _address(taskrunner_id)
        try:
            self._request(
                "delete_item",
                TableName=self.table_name,
                Key=address.key,
                ConditionExpression=address.condition("attribute_exists(taskrunnerId)"),
                **({"ExpressionAttributeValues": address.values} if address.values else {}),
            )
        except _ConditionFailed:
            raise UnknownRunner(taskrunner_id) from None

    def _operator_update(self, taskrunner_id: str, expression: str, values: dict[str, AttributeValueTypeDef]) -> Runner:
        """Change a live record; one past its TTL counts as absent (values must hold :now)."""
        address = _address(taskrunner_id)
        try:
            response = self._request(
                "update_item",
                TableName=self.table_name,
                Key=address.key,
                UpdateExpression=expression,
                ConditionExpression=address.condition(f"attribute_exists(taskrunnerId) AND {TTL_ATTRIBUTE} > :now"),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={**values, **address.values},
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
        holds: dict[str | None, Hold] = {
            entry["M"]["workerGroup"].get("S"): _hold(entry["M"]) for entry in item.get("groupHolds", {}).get("L", [])
        }
        holds.pop(None, None)  # only a worker group with its own threshold (a name) has a hold of its own
        if "fleetHold" in item:
            holds[None] = _hold(item["fleetHold"]["M"])
        return SweepState(
            last_sweep_at=float(item["lastSweepAt"]["N"]),
            watching_since=float(item["watchingSince"]["N"]),
            finished_at=_optional_number(item, "finishedAt"),
            holds=holds,
            settings=json.loads(item["settings"]["S"]) if "settings" in item else None,
            scopes=tuple(
                ScopeSummary(scope=s.get("scope"), state=s["state"], why=s["why"])
                for s in json.loads(item["scopes"]["S"] if "scopes" in item else "[]")
            ),
        )

    def service_time(self) -> float:
        """The time by DynamoDB's clock (its answer's Date header, to the second), not this machine's.

        heartbeat-ops judges and sweeps on it, as the handler and the sweeper do on theirs.
        """
        response = self._request(
            "get_item", TableName=self.table_name, Key={"taskrunnerId": {"S": SWEEP_STATE_KEY}},
            ProjectionExpression="taskrunnerId",
        )  # fmt: skip
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if not date:
            raise StoreError("DynamoDB's answer carried no Date header: cannot tell the service's time")
        return email.utils.parsedate_to_datetime(date).timestamp()

    def save_sweep_state(self, state: SweepState) -> bool:
        """Record a completed sweep, unless a sweep that started later has already recorded its own.

        Conditional, so that state never goes backwards (an operator's manual sweep that ends
        after a newer scheduled one must not overwrite it). A stored state stamped later than
        this sweep could have started (its end, plus a tolerance) came from a skewed clock or a
        bug, and is replaced, so it cannot block later sweeps. Returns whether it was recorded.
        """
        item: dict[str, AttributeValueTypeDef] = {
            "taskrunnerId": {"S": SWEEP_STATE_KEY},
            "lastSweepAt": _n(state.last_sweep_at),
            "watchingSince": _n(state.watching_since),
            # A list, not a map: a worker group may be "", and it must round-trip.
            "groupHolds": {
                "L": [
                    {"M": {"workerGroup": {"S": group}, **_hold_item(hold)}}
                    for group, hold in state.holds.items()
                    if group is not None
                ]
            },
        }
        if state.finished_at is not None:
            item["finishedAt"] = _n(state.finished_at)
        fleet_hold = state.holds.get(None)
        if fleet_hold is not None:
            item["fleetHold"] = {"M": _hold_item(fleet_hold)}
        if state.settings is not None:
            item["settings"] = {"S": json.dumps(state.settings, sort_keys=True)}
        item["scopes"] = {"S": json.dumps([{"scope": s.scope, "state": s.state, "why": s.why} for s in state.scopes])}
        latest_possible = (state.finished_at or state.last_sweep_at) + FUTURE_TOLERANCE_SECONDS
        try:
            self._request(
                "put_item",
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(taskrunnerId) OR lastSweepAt <= :started "
                "OR lastSweepAt > :latest",
                ExpressionAttributeValues={":started": _n(state.last_sweep_at), ":latest": _n(latest_possible)},
            )
        except _ConditionFailed:
            return False
        return True


def _hold(item: Mapping[str, Any]) -> Hold:
    return Hold(since=float(item["heldSince"]["N"]), last=float(item["heldAt"]["N"]))


def _hold_item(hold: Hold) -> dict[str, AttributeValueTypeDef]:
    return {"heldSince": _n(hold.since), "heldAt": _n(hold.last)}


def _lean_scan_items(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """Hand a Scan's items over as DynamoDB sent them, parsed by json alone.

    botocore's shape-by-shape parse of each attribute value was three quarters of the sweeper's
    CPU (make bench: 4.9 -> 1.3 s per 100,000 runners), yet its result is the same JSON for every
    type this table stores (S, N, BOOL; only binary would differ). botocore parses the rest of
    the page (keys, counts) as usual; this is the hook it uses itself to override parsed fields
    (S3's Expires header).
    """
    if response_dict["status_code"] != 200:
        return
    page = json.loads(response_dict["body"])
    if "Items" in page:
        customized_response_dict["Items"] = page.pop("Items")
        response_dict["body"] = json.dumps(page).encode()


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _item(runner: Runner) -> dict[str, AttributeValueTypeDef]:
    key = storage_key(runner.taskrunner_id)
    item: dict[str, AttributeValueTypeDef] = {
        "taskrunnerId": {"S": key},
        "status": {"S": runner.status},
        "firstSeen": _n(runner.first_seen),
        "lastSeen": _n(runner.last_seen),
        "heartbeatCount": _n(runner.heartbeat_count),
        TTL_ATTRIBUTE: _n(runner.expires_at),
    }
    if key != runner.taskrunner_id:
        item[FULL_ID_ATTRIBUTE] = {"S": runner.taskrunner_id}
    if runner.hostname is not None:
        item["hostname"] = {"S": runner.hostname}
    if runner.worker_group is not None:
        item["workerGroup"] = {"S": runner.worker_group}
    return item


def _runner(item: dict[str, Any]) -> Runner:
    return Runner(
        taskrunner_id=_taskrunner_id(item),
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
        retired_at=_optional_number(item, "retiredAt"),
        retired_by=item.get("retiredBy", {}).get("S"),
        retire_reason=item.get("retireReason", {}).get("S"),
    )


def _optional_number(item: dict[str, Any], name: str) -> float | None:
    return float(item[name]["N"]) if name in item else None
