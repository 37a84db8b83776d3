"""The sweeper's memory between runs (plan.SweepState), kept in one of the store's own items."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from heartbeat.plan import FUTURE_TOLERANCE_SECONDS, Hold, ScopeSummary, SweepState
from heartbeat.store.items import number, optional_number, reserved_key
from heartbeat.store.table import ConditionFailed, StoreError, Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

SWEEP_STATE_NAME = "sweeper-state"


def load_sweep_state(table: Table) -> SweepState | None:
    """The sweeper's state after its last completed run, if any."""
    item = table.request("get_item", Key=reserved_key(SWEEP_STATE_NAME), ConsistentRead=True).get("Item")
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
        finished_at=optional_number(item, "finishedAt"),
        holds=holds,
        settings=json.loads(item["settings"]["S"]) if "settings" in item else None,
        scopes=tuple(
            ScopeSummary(scope=s.get("scope"), state=s["state"], why=s["why"])
            for s in json.loads(item["scopes"]["S"] if "scopes" in item else "[]")
        ),
    )


def save_sweep_state(table: Table, state: SweepState) -> bool:
    """Record a completed sweep, unless a sweep that started later has already recorded its own.

    Conditional, so that state never goes backwards (an operator's manual sweep that ends after
    a newer scheduled one must not overwrite it). A stored state stamped later than any sweep
    could have started (this one's end, plus a tolerance) came from a skewed clock or a bug and
    is replaced, so it cannot block later sweeps. Returns whether it was recorded.
    """
    item: dict[str, AttributeValueTypeDef] = {
        **reserved_key(SWEEP_STATE_NAME),
        "lastSweepAt": number(state.last_sweep_at),
        "watchingSince": number(state.watching_since),
        # A list, not a map: a worker group may be "", and it must round-trip.
        "groupHolds": {
            "L": [
                {"M": {"workerGroup": {"S": group}, **_hold_item(hold)}}
                for group, hold in state.holds.items()
                if group is not None
            ]
        },
        "scopes": {"S": json.dumps([{"scope": s.scope, "state": s.state, "why": s.why} for s in state.scopes])},
    }
    if state.finished_at is not None:
        item["finishedAt"] = number(state.finished_at)
    fleet_hold = state.holds.get(None)
    if fleet_hold is not None:
        item["fleetHold"] = {"M": _hold_item(fleet_hold)}
    if state.settings is not None:
        item["settings"] = {"S": json.dumps(state.settings, sort_keys=True)}
    latest_possible = (state.finished_at or state.last_sweep_at) + FUTURE_TOLERANCE_SECONDS
    try:
        table.request(
            "put_item",
            Item=item,
            ConditionExpression="attribute_not_exists(taskrunnerId) OR lastSweepAt <= :started "
            "OR lastSweepAt > :latest",
            ExpressionAttributeValues={":started": number(state.last_sweep_at), ":latest": number(latest_possible)},
        )
    except ConditionFailed:
        return False
    return True


def service_time(table: Table) -> float:
    """The time by DynamoDB's clock (its answer's Date header, to the second), not this machine's.

    heartbeat-ops judges and sweeps on it, as the handler and the sweeper do on theirs.
    """
    response = table.request("get_item", Key=reserved_key(SWEEP_STATE_NAME), ProjectionExpression="taskrunnerId")
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date:
        raise StoreError("DynamoDB's answer carried no Date header: cannot tell the service's time")
    return email.utils.parsedate_to_datetime(date).timestamp()


def _hold(item: Mapping[str, Any]) -> Hold:
    return Hold(since=float(item["heldSince"]["N"]), last=float(item["heldAt"]["N"]))


def _hold_item(hold: Hold) -> dict[str, AttributeValueTypeDef]:
    return {"heldSince": number(hold.since), "heldAt": number(hold.last)}
