"""The sweeper's memory between runs, kept in one of the store's own items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from heartbeat.runners import Hold
from heartbeat.store.items import number, optional_number, reserved_key
from heartbeat.store.table import ConditionFailed, Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

SWEEP_STATE_NAME = "sweeper-state"


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


def load_sweep_state(table: Table) -> SweepState | None:
    """The sweeper's state after its last completed run, if any."""
    item = table.request("get_item", Key=reserved_key(SWEEP_STATE_NAME), ConsistentRead=True).get("Item")
    if not item:
        return None
    return SweepState(
        last_sweep_at=float(item["lastSweepAt"]["N"]),
        watching_since=float(item["watchingSince"]["N"]),
        finished_at=optional_number(item, "finishedAt"),
        fleet_hold=_hold(item["fleetHold"]["M"]) if "fleetHold" in item else None,
        group_holds={
            entry["M"]["workerGroup"].get("S"): _hold(entry["M"]) for entry in item.get("groupHolds", {}).get("L", [])
        },
    )


def save_sweep_state(table: Table, state: SweepState) -> bool:
    """Record a completed sweep, unless a sweep that started later has already recorded its own.

    Conditional, so that state never goes backwards (an operator's manual sweep that ends
    after a newer scheduled one must not overwrite it). Returns whether it was recorded.
    """
    item: dict[str, AttributeValueTypeDef] = {
        **reserved_key(SWEEP_STATE_NAME),
        "lastSweepAt": number(state.last_sweep_at),
        "watchingSince": number(state.watching_since),
        # A list, not a map: a worker group may be "" or absent (None), and both must round-trip.
        "groupHolds": {
            "L": [
                {"M": {"workerGroup": {"NULL": True} if group is None else {"S": group}, **_hold_item(hold)}}
                for group, hold in state.group_holds.items()
            ]
        },
    }
    if state.finished_at is not None:
        item["finishedAt"] = number(state.finished_at)
    if state.fleet_hold is not None:
        item["fleetHold"] = {"M": _hold_item(state.fleet_hold)}
    try:
        table.request(
            "put_item",
            Item=item,
            ConditionExpression="attribute_not_exists(taskrunnerId) OR lastSweepAt <= :started",
            ExpressionAttributeValues={":started": number(state.last_sweep_at)},
        )
    except ConditionFailed:
        return False
    return True


def _hold(item: Mapping[str, Any]) -> Hold:
    return Hold(since=float(item["heldSince"]["N"]), last=float(item["heldAt"]["N"]))


def _hold_item(hold: Hold) -> dict[str, AttributeValueTypeDef]:
    return {"heldSince": number(hold.since), "heldAt": number(hold.last)}
