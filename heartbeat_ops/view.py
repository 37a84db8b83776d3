"""How runners are shown: ages, a plain table, every field."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from heartbeat.events import iso
from heartbeat.plan import SweepPlan, Verdict
from heartbeat.runners import Runner

COLUMNS = (("ID", 36), ("WORKER GROUP", 18), ("HOSTNAME", 30), ("LAST SEEN", 10), ("STATUS", 11), ("BEATS", 7))


def age(seconds: float) -> str:
    """'42s ago', '3m ago', '5h ago', '2d ago'."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def shown_status(runner: Runner, plan: SweepPlan | None) -> str:
    """The stored status; an active runner past its threshold shows the plan's verdict.

    'due': the next sweep flags it (unless its scope is held by then); 'grace': past its threshold,
    but its silence does not count yet (a hold, a new watch, a reset). Without the deployment's
    rules (its sweeper has not run yet) the stored status alone.
    """
    if plan is None:
        return runner.status
    verdict = plan.judge(runner).verdict
    if verdict is Verdict.STALE:
        return "due"
    if verdict is Verdict.GRACE:
        return "grace"
    return runner.status


def printable(value: str) -> str:
    """A value as one line of text: control characters (valid in ids: tab, CR, LF, U+0080-U+009F) escaped.

    Without this, an id such as "x\\rother-runner" would print as another runner's id.
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value)


def _cell(value: str, width: int) -> str:
    value = printable(value)
    return value if len(value) <= width else value[: width - 1] + "…"


def table(rows: Iterable[tuple[str, ...]]) -> Iterator[str]:
    """Fixed-width lines, header first, streamed row by row."""
    yield "  ".join(title.ljust(width) for title, width in COLUMNS).rstrip()
    for row in rows:
        yield "  ".join(
            _cell(value, width).ljust(width) for value, (_, width) in zip(row, COLUMNS, strict=True)
        ).rstrip()


def row(runner: Runner, now: float, plan: SweepPlan | None) -> tuple[str, ...]:
    return (
        runner.taskrunner_id,
        runner.worker_group if runner.worker_group is not None else "-",
        runner.hostname or "-",
        age(now - runner.last_seen),
        shown_status(runner, plan),
        str(runner.heartbeat_count),
    )


def as_json(runner: Runner, plan: SweepPlan | None) -> dict[str, Any]:
    """Every field, times in ISO 8601 UTC; threshold and verdict by the deployment's rules (None till known)."""
    judgement = plan.judge(runner) if plan is not None else None
    document: dict[str, Any] = {
        "taskrunnerId": runner.taskrunner_id,
        "workerGroup": runner.worker_group,
        "hostname": runner.hostname,
        "status": runner.status,
        "shownStatus": shown_status(runner, plan),
        "firstSeen": iso(runner.first_seen),
        "lastSeen": iso(runner.last_seen),
        "heartbeatCount": runner.heartbeat_count,
        "expiresAt": iso(runner.expires_at),
        "staleAfterSeconds": judgement.threshold if judgement else None,
    }
    if judgement is not None and judgement.verdict is not Verdict.NOT_ACTIVE:
        document["verdict"] = judgement.verdict.value
        document["why"] = judgement.why
    if runner.key_id is not None:
        document["keyId"] = runner.key_id  # the access key it is bound to (authentication on)
    if runner.stale_at is not None:
        document["staleAt"] = iso(runner.stale_at)
        document["staleEventPending"] = runner.event_pending
    if runner.terminate_requested_at is not None:
        document["terminateRequestedAt"] = iso(runner.terminate_requested_at)
        document["terminateRequestedBy"] = runner.terminate_requested_by
        document["terminateReason"] = runner.terminate_reason
    if runner.retired_at is not None:
        document["retiredAt"] = iso(runner.retired_at)
        document["retiredBy"] = runner.retired_by
        document["retireReason"] = runner.retire_reason
    return document


def details(runner: Runner, now: float, plan: SweepPlan | None) -> Iterator[str]:
    """Every field, one per line, with ages beside the times."""
    document = as_json(runner, plan)
    times = {
        "firstSeen": runner.first_seen,
        "lastSeen": runner.last_seen,
        "staleAt": runner.stale_at,
        "terminateRequestedAt": runner.terminate_requested_at,
        "retiredAt": runner.retired_at,
    }
    width = max(len(key) for key in document)
    for key, value in document.items():
        text = "-" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        moment = times.get(key)
        if moment is not None:
            text += f" ({age(now - moment)})"
        yield f"{key.ljust(width)}  {printable(text)}"
