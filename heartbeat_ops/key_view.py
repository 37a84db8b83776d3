"""How keys are shown: a plain table and every field; never a secret, which only `keys create` prints once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from heartbeat.access_keys import AccessKey
from heartbeat.events import iso
from heartbeat_ops.view import age, printable

COLUMNS = (("ACCESS KEY ID", 20), ("STATUS", 8), ("WORKER GROUPS", 24), ("CAP", 6), ("RUNNERS", 7), ("LAST USED", 10))


def scope(key: AccessKey) -> str:
    """The worker groups a key may report, or 'any'."""
    if key.worker_groups is None:
        return "any"
    return ",".join(printable(group) or '""' for group in key.worker_groups)


def table(keys: Iterable[AccessKey], now: float) -> Iterator[str]:
    """Fixed-width lines, header first, then a line per key (its rotation and description after)."""
    yield "  ".join(title.ljust(width) for title, width in COLUMNS).rstrip()
    for key in keys:
        cells = (
            key.access_key_id,
            key.status,
            scope(key),
            "-" if key.max_runners is None else str(key.max_runners),
            str(key.runner_count),
            "-" if key.last_seen is None else age(now - key.last_seen),
        )
        line = "  ".join(
            (value if len(value) <= width else value[: width - 1] + "…").ljust(width)
            for value, (_, width) in zip(cells, COLUMNS, strict=True)
        ).rstrip()
        notes = []
        if key.successor:
            notes.append(f"rotated to {key.successor}")
        if key.predecessor:
            notes.append(f"rotated from {key.predecessor}")
        if key.description:
            notes.append(printable(key.description))
        yield line + ("  " + "; ".join(notes) if notes else "")


def as_json(key: AccessKey) -> dict[str, Any]:
    """Every field of the record (no secret: the record holds none), times in ISO 8601 UTC."""
    return {
        "accessKeyId": key.access_key_id,
        "status": key.status,
        "workerGroups": None if key.worker_groups is None else list(key.worker_groups),
        "maxRunners": key.max_runners,
        "runnerCount": key.runner_count,
        "lastUsed": None if key.last_seen is None else iso(key.last_seen),
        "createdAt": None if key.created_at is None else iso(key.created_at),
        "revokedAt": None if key.revoked_at is None else iso(key.revoked_at),
        "rotatedFrom": key.predecessor,
        "rotatedTo": key.successor,
        "description": key.description,
    }
