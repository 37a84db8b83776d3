"""The runner store: the one door to DynamoDB.

RunnerStore is what the handler, the sweeper and the operator CLI are given; each of its
concerns lives in a module of its own:

- ``table``: the table and its client, and how failures map to StoreError;
- ``items``: the runner item codec and its keys (long ids, the store's reserved items);
- ``heartbeats``: the heartbeat upsert, and binding runners to access keys;
- ``keys``: the keys table (the access keys the service issued, and their runner counts);
- ``scan``: the sweeper's parallel scan, and the operator's listing;
- ``flags``: stale flags and their owed events;
- ``operator``: an operator's terminate, retire, reset and forget;
- ``sweep_state``: the sweeper's memory between runs, and DynamoDB's clock;
- ``lease``: the sweep lease, so that two sweeps never run at once (and how far they handed work out).

A heartbeat needs only ``table``, ``items`` and ``heartbeats``: the sweeper's and the operator's
modules are imported on their first use, so a cold start of the API handler does not pay for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from heartbeat.access_keys import AccessKey
from heartbeat.clients import CLIENT_CONFIG, SCAN_SEGMENTS
from heartbeat.model import HeartbeatRequest
from heartbeat.runners import Runner
from heartbeat.store import heartbeats
from heartbeat.store.items import address, to_runner
from heartbeat.store.items import taskrunner_id as item_taskrunner_id
from heartbeat.store.table import StoreError, Table, UnknownRunner

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from heartbeat.plan import SweepState
    from heartbeat.store.keys import KeyCensus
    from heartbeat.store.lease import Lease
    from heartbeat.store.scan import StatusCounts, SweepCandidate

__all__ = ["RunnerStore", "StoreError", "SweepCandidate", "SweepState", "UnknownRunner"]


def __getattr__(name: str) -> object:
    """SweepCandidate and SweepState (plan.py), imported with the sweeper's modules when first asked for."""
    if name == "SweepCandidate":
        from heartbeat.store.scan import SweepCandidate

        return SweepCandidate
    if name == "SweepState":
        from heartbeat.plan import SweepState

        return SweepState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class RunnerStore:
    """Runner records in one DynamoDB table. Give it a client to use another endpoint or a stub."""

    scan_segments: int = SCAN_SEGMENTS  # the sweeper's scan: segments read at once
    scan_page_limit: int | None = None  # items per Scan page, for tests; None: DynamoDB's 1 MB pages

    def __init__(
        self, table_name: str, client: DynamoDBClient | None = None, keys_table_name: str | None = None
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("dynamodb", config=CLIENT_CONFIG)
        self.table_name = table_name
        self.client = client
        self.keys_table_name = keys_table_name
        self._table = Table(table_name, client)

    def record_heartbeat(
        self, request: HeartbeatRequest, now: float, retention_seconds: int, key: AccessKey | None = None
    ) -> Runner:
        """Upsert the runner's record for a heartbeat received at now, and return it (heartbeats.record_heartbeat).

        With the key that signed it, the runner must be that key's (or become it, within its cap).
        """
        signer = None
        if key is not None:
            if not self.keys_table_name:
                raise StoreError("a signed heartbeat needs the keys table to count its key's runners")
            signer = heartbeats.Signer(key, self.keys_table_name)
        return heartbeats.record_heartbeat(self._table, request, now, retention_seconds, signer)

    def get_runner(self, taskrunner_id: str) -> Runner | None:
        """The runner's record as stored, expired or not; None when there is none."""
        try:
            where = address(taskrunner_id)
        except UnknownRunner:
            return None
        item = self._table.request("get_item", Key=where.key, ConsistentRead=True).get("Item")
        return to_runner(item) if item and item_taskrunner_id(item) == taskrunner_id else None

    def sweep_candidates(
        self, now: float, census: KeyCensus | None = None, statuses: StatusCounts | None = None
    ) -> Iterator[SweepCandidate]:
        """Every active, unexpired runner, and every flagged runner whose stale event is still owed (streamed).

        With a census (begin_key_census), the scan also counts each key's live runners; with statuses,
        every live runner by worker group and status.
        """
        from heartbeat.store import scan

        return scan.sweep_candidates(
            self._table, now, self.scan_segments, self.scan_page_limit, census, statuses=statuses
        )

    def begin_key_census(self) -> KeyCensus | None:
        """Before a sweep's scan: each key's registrations so far (None without a keys table)."""
        from heartbeat.store.keys import KeyCensus, KeyTable

        if not self.keys_table_name:
            return None
        return KeyCensus(KeyTable(self.keys_table_name, self.client).registrations())

    def record_key_census(self, census: KeyCensus) -> None:
        """After the scan: each key's runner count and last heartbeat, as counted (store.keys: Counting runners)."""
        from heartbeat.store.keys import KeyTable

        keys = KeyTable(self.keys_table_name or "", self.client)
        for access_key_id, before in census.registrations_before.items():
            keys.recount(access_key_id, census.live[access_key_id], before, census.last_seen.get(access_key_id))

    def runners(self) -> Iterator[Runner]:
        """Every runner record, page by page (never the whole table in memory)."""
        from heartbeat.store import scan

        return scan.runners(self._table)

    def flag_stale(self, taskrunner_id: str, last_seen_before: float, now: float, claim_until: float) -> bool:
        """Flag an active runner stale unless a heartbeat or a reset since last_seen_before wins the race; the
        caller holds the claim on its event until claim_until (flags.flag_stale)."""
        from heartbeat.store import flags

        return flags.flag_stale(self._table, taskrunner_id, last_seen_before, now, claim_until)

    def claim_event(self, taskrunner_id: str, stale_at: float, now: float, until: float) -> bool:
        """Claim the runner's owed stale event (of the flag at stale_at) to publish it, unless it is out, no longer
        owed, or claimed (flags.claim_event)."""
        from heartbeat.store import flags

        return flags.claim_event(self._table, taskrunner_id, stale_at, now, until)

    def release_claim(self, taskrunner_id: str, stale_at: float) -> None:
        """Give up the claim on an event EventBridge refused, so that the next publisher takes it at once."""
        from heartbeat.store import flags

        flags.release_claim(self._table, taskrunner_id, stale_at)

    def event_published(self, taskrunner_id: str, stale_at: float) -> None:
        """The runner's stale event of the flag at stale_at is out: it owes none any more."""
        from heartbeat.store import flags

        flags.event_published(self._table, taskrunner_id, stale_at)

    def request_terminate(self, taskrunner_id: str, *, by: str, reason: str | None, now: float) -> Runner:
        """An operator's drain: the runner's next heartbeat answers terminate: true."""
        from heartbeat.store import operator

        return operator.request_terminate(self._table, taskrunner_id, by=by, reason=reason, now=now)

    def retire(self, taskrunner_id: str, *, by: str, reason: str | None, now: float) -> Runner:
        """The runner left the fleet on purpose: never flagged, no stale event; sticky (operator.retire)."""
        from heartbeat.store import operator

        return operator.retire(self._table, taskrunner_id, by=by, reason=reason, now=now)

    def reset(self, taskrunner_id: str, now: float) -> Runner:
        """Clear a stale, terminate or retired status; the runner's silence counts from now at the earliest."""
        from heartbeat.store import operator

        return operator.reset(self._table, taskrunner_id, now)

    def forget(self, taskrunner_id: str) -> None:
        """Delete the runner's record (and take it off its key's count)."""
        from heartbeat.store import operator

        operator.forget(self._table, taskrunner_id, self.keys_table_name)

    def rebind(self, taskrunner_id: str, key: AccessKey, now: float) -> Runner:
        """Move a live runner to another key, within that key's scope and cap (operator.RebindRefused otherwise)."""
        from heartbeat.store import operator

        if not self.keys_table_name:
            raise StoreError("rebinding a runner needs the keys table")
        return operator.rebind(self._table, self.keys_table_name, taskrunner_id, key, now)

    def load_sweep_state(self) -> SweepState | None:
        """The sweeper's state after its last completed run, if any."""
        from heartbeat.store import sweep_state

        return sweep_state.load_sweep_state(self._table)

    def save_sweep_state(self, state: SweepState) -> bool:
        """Record a completed sweep unless a later one has recorded its own; returns whether it was recorded."""
        from heartbeat.store import sweep_state

        return sweep_state.save_sweep_state(self._table, state)

    def service_time(self) -> float:
        """The service's time: DynamoDB's clock, from its answer's Date header (sweep_state.service_time)."""
        from heartbeat.store import sweep_state

        return sweep_state.service_time(self._table)

    def acquire_lease(self, holder: str, now: float, until: float) -> Lease:
        """Take the sweep lease until `until`, unless another sweep holds it past now (lease.acquire_lease)."""
        from heartbeat.store import lease

        return lease.acquire_lease(self._table, holder, now, until)

    def renew_lease(self, holder: str, until: float) -> Lease:
        """Hold the sweep lease until `until`, unless another sweep has taken it since (lease.renew_lease)."""
        from heartbeat.store import lease

        return lease.renew_lease(self._table, holder, until)

    def release_lease(self, holder: str, handed_out: int = 0) -> None:
        """Give the sweep lease back, recording the workers' lanes (a failure only leaves it to expire)."""
        from heartbeat.store import lease

        lease.release_lease(self._table, holder, handed_out)
