"""The rules about one runner: the answer to its heartbeat, its record's TTL (who is flagged: test_plan.py)."""

from __future__ import annotations

from heartbeat.runners import Runner, Status, expires_at, should_terminate

T = 1_000_000.0


def runner(status: str) -> Runner:
    return Runner("r", status, first_seen=T, last_seen=T, heartbeat_count=1, expires_at=int(T) + 10)


def test_only_active_runners_keep_working() -> None:
    assert should_terminate(runner(Status.ACTIVE)) is False
    for status in (Status.STALE, Status.TERMINATING, Status.RETIRED):
        assert should_terminate(runner(status)) is True


def test_ttl_is_whole_seconds_after_last_seen() -> None:
    assert expires_at(T + 0.75, 3600) == int(T) + 3600
