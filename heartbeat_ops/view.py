"""How runners are shown: ages, a plain table, every field."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from heartbeat.config import Config
from heartbeat.events import iso
from heartbeat.plan import FLEET, ScopeState, SweepPlan, SweepState, Verdict, scope_name
from heartbeat.runners import Runner

NAMED_AT_MOST = 10  # runners named in one line (sweep, bulk commands); the rest are counted
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


def named(ids: list[str]) -> str:
    """'3 runners: a, b, c', naming NAMED_AT_MOST at most and counting the rest."""
    shown = ", ".join(printable(runner_id) for runner_id in ids[:NAMED_AT_MOST])
    more = f" and {len(ids) - NAMED_AT_MOST} more" if len(ids) > NAMED_AT_MOST else ""
    return f"{len(ids)} {'runner' if len(ids) == 1 else 'runners'}: {shown}{more}"


def _held(state: str) -> bool:
    return state in ScopeState.__members__.values() and ScopeState(state).held


def _when(moment: float | None, now: float) -> str:
    return "-" if moment is None else f"{iso(moment)} ({age(now - moment)})"


def status_lines(state: SweepState | None, config: Config | None, now: float) -> Iterator[str]:
    """The sweeper's state as it recorded it at its last sweep, and the rules it judges with."""
    if state is None:
        yield "Last sweep: none recorded (the sweeper has not completed a run against this table yet)"
    else:
        yield f"Last sweep:     {_when(state.last_sweep_at, now)}, finished {_when(state.finished_at, now)}"
        yield f"Watching since: {_when(state.watching_since, now)}"
        held = [s for s in state.scopes if _held(s.state)]
        if not held:
            yield "Held scopes:    none"
        for summary in held:
            hold = state.holds.get(summary.scope)
            since = f", held since {iso(hold.since)}" if hold is not None else ""
            yield f"Held scope:     {printable(scope_name(summary.scope))}: {summary.state} ({summary.why}){since}"
        for summary in state.scopes:
            if summary not in held:
                yield f"Scope:          {printable(scope_name(summary.scope))}: {summary.state} ({summary.why})"
    if config is None:
        yield "Rules:          not recorded yet (the sweeper records them on every run)"
        return
    yield (
        f"Rules:          stale after {config.stale_after_seconds} s, retention {config.retention_seconds} s, "
        f"sweep every {config.sweep_interval_seconds:g} s, guard fraction {config.mass_stale_fraction:g}"
    )
    for group, seconds in sorted(config.stale_after_by_worker_group.items()):
        yield f"                worker group {printable(group)!r}: stale after {seconds} s"


def status_json(state: SweepState | None, config: Config | None, now: float) -> dict[str, Any]:
    """status --json: the same, times in ISO 8601 UTC."""
    sweeper: dict[str, Any] | None = None
    if state is not None:
        sweeper = {
            "lastSweepAt": iso(state.last_sweep_at),
            "finishedAt": None if state.finished_at is None else iso(state.finished_at),
            "watchingSince": iso(state.watching_since),
            "scopes": [
                {
                    "scope": "fleet" if s.scope is FLEET else s.scope,
                    "state": s.state,
                    "why": s.why,
                    "held": _held(s.state),
                    "heldSince": iso(state.holds[s.scope].since) if s.scope in state.holds else None,
                }
                for s in state.scopes
            ],
        }
    rules = None
    if config is not None:
        rules = {
            "staleAfterSeconds": config.stale_after_seconds,
            "staleAfterByWorkerGroup": dict(sorted(config.stale_after_by_worker_group.items())),
            "retentionSeconds": config.retention_seconds,
            "sweepIntervalSeconds": config.sweep_interval_seconds,
            "massStaleFraction": config.mass_stale_fraction,
        }
    return {"now": iso(now), "sweeper": sweeper, "rules": rules}
