"""The operator CLI (heartbeat_ops): each command's output and exit status, on moto."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from moto import mock_aws

from heartbeat.config import DEFAULT_RETENTION_SECONDS, Config
from heartbeat.model import HeartbeatRequest
from heartbeat.plan import SweepState
from heartbeat.store import RunnerStore
from heartbeat.sweeper import sweep
from heartbeat_local.server import create_table
from heartbeat_ops.__main__ import main, parse_args, target_make_serve
from heartbeat_ops.local import LOCAL_STORE_URL
from tests.support import dynamodb_clock

NOW = 1_795_521_600.0  # 2026-11-24T12:00:00Z
TABLE = "ops"
RETENTION = DEFAULT_RETENTION_SECONDS


def steady(now: float = NOW, config: Config | None = None) -> SweepState:
    """The deployment's sweeper has watched for a day, last ran 300 s ago, and recorded its rules."""
    return SweepState(
        last_sweep_at=now - 300,
        watching_since=now - 86_400,
        finished_at=now - 298,
        settings=(config or Config(TABLE)).to_record(),
    )


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunnerStore]:
    """A fleet: two live runners, one silent past the threshold, one flagged stale; DynamoDB's clock reads NOW."""
    for name in ("STALE_AFTER_SECONDS", "RETENTION_SECONDS", "STALE_AFTER_BY_WORKER_GROUP", "TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), dynamodb_clock(lambda: NOW):
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        runners = RunnerStore(TABLE, client=client)
        beats = [
            ("runner-a", "etl", "host-a.internal", NOW - 180),
            ("runner-b", "etl", "host-b.internal", NOW - 40),
            ("runner-c", "reports", "host-c.internal", NOW - 3000),  # overdue: silent past 2700 s, not yet flagged
            ("runner-d", "reports", "host-d.internal", NOW - 8000),
        ]
        for runner_id, group, host, when in beats:
            runners.record_heartbeat(HeartbeatRequest(runner_id, group, host), when - 86_400, RETENTION)
            runners.record_heartbeat(HeartbeatRequest(runner_id, group, host), when, RETENTION)
        runners.flag_stale("runner-d", last_seen_before=NOW - 2700, now=NOW - 5000, claim_until=NOW - 5000)
        runners.save_sweep_state(steady())
        yield runners


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([*argv, "--table", TABLE, "--region", "us-east-1"], clock=lambda: NOW, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_list_prints_a_readable_table(store: RunnerStore) -> None:
    status, out, err = run("runners", "list")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        "ID                                    WORKER GROUP        HOSTNAME                        LAST SEEN   "
        "STATUS       BEATS"
    )
    assert sorted(lines[1:]) == [
        "runner-a                              etl                 host-a.internal                 3m ago      active       2",
        "runner-b                              etl                 host-b.internal                 40s ago     active       2",
        "runner-c                              reports             host-c.internal                 50m ago     due          2",
        "runner-d                              reports             host-d.internal                 2h ago      stale        2",
    ]  # fmt: skip


def test_list_filters_by_status_and_worker_group(store: RunnerStore) -> None:
    _, out, _ = run("runners", "list", "--status", "stale")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["runner-d"]
    _, out, _ = run("runners", "list", "--worker-group", "etl")
    assert sorted(line.split()[0] for line in out.splitlines()[1:]) == ["runner-a", "runner-b"]


def test_list_json_is_an_array_of_every_field(store: RunnerStore) -> None:
    status, out, _ = run("runners", "list", "--json", "--status", "stale")
    assert status == 0
    assert out.startswith('[\n  {"taskrunnerId": "runner-d"')
    [runner] = json.loads(out)
    assert runner == {
        "taskrunnerId": "runner-d", "workerGroup": "reports", "hostname": "host-d.internal",
        "status": "stale", "shownStatus": "stale",
        "firstSeen": "2026-11-23T09:46:40.000Z", "lastSeen": "2026-11-24T09:46:40.000Z",
        "heartbeatCount": 2, "expiresAt": "2026-12-01T09:46:40.000Z", "staleAfterSeconds": 2700,
        "staleAt": "2026-11-24T10:36:40.000Z", "staleEventPending": True,
    }  # fmt: skip


def test_show_prints_every_field_with_ages(store: RunnerStore) -> None:
    status, out, _ = run("runners", "show", "runner-c")
    assert status == 0
    assert out.splitlines() == [
        "taskrunnerId       runner-c",
        "workerGroup        reports",
        "hostname           host-c.internal",
        "status             active",
        "shownStatus        due",
        "firstSeen          2026-11-23T11:10:00.000Z (1d ago)",
        "lastSeen           2026-11-24T11:10:00.000Z (50m ago)",
        "heartbeatCount     2",
        "expiresAt          2026-12-01T11:10:00.000Z",
        "staleAfterSeconds  2700",
        "verdict            stale",
        "why                silent since 2026-11-24T11:10:00.000Z (its last heartbeat), over its threshold of 2700 s",
    ]


def test_terminate_records_who_when_why_and_the_next_heartbeat_is_told_to_stop(store: RunnerStore) -> None:
    status, out, _ = run("runners", "terminate", "runner-a", "--reason", "host being retired")
    assert status == 0
    assert out.startswith("Runner runner-a will be told to terminate at its next heartbeat (requested by ")
    assert out.rstrip().endswith(": host being retired)")
    runner = store.get_runner("runner-a")
    assert runner is not None
    assert (runner.status, runner.terminate_requested_at, runner.terminate_reason) == (
        "terminating", pytest.approx(NOW, abs=5), "host being retired",
    )  # fmt: skip
    assert runner.terminate_requested_by
    answer = store.record_heartbeat(HeartbeatRequest("runner-a"), NOW + 60, RETENTION)
    assert answer.status == "terminating"


def test_reset_clears_the_flag(store: RunnerStore) -> None:
    status, out, _ = run("runners", "reset", "runner-d")
    assert (status, out) == (
        0,
        "Runner runner-d is active again: its next heartbeat answers terminate: false, and the sweeper will not "
        "flag it unless it stays silent for more than 2700 s (its threshold) from now\n",
    )
    runner = store.get_runner("runner-d")
    assert runner is not None
    assert (runner.status, runner.stale_at, runner.event_pending) == ("active", None, False)
    assert runner.reset_at == pytest.approx(NOW, abs=5)
    # What the message promises: no sweep flags it until a threshold after the reset (the guard, which the
    # rest of this small silent fleet would trip, is overridden so that only the reset's grace decides).
    config = Config(TABLE)
    store.save_sweep_state(steady(NOW + 2700))  # on schedule
    sweep(store, config, NOW + 2700, override_guard=True)
    assert store.get_runner("runner-d").status == "active"  # type: ignore[union-attr]
    sweep(store, config, NOW + 2701, override_guard=True)
    assert store.get_runner("runner-d").status == "stale"  # type: ignore[union-attr]


def test_forget_deletes_the_record(store: RunnerStore) -> None:
    assert run("runners", "forget", "runner-b") == (0, "Forgot runner runner-b\n", "")
    assert store.get_runner("runner-b") is None


def test_control_characters_in_an_id_print_escaped_so_a_line_is_one_runner(store: RunnerStore) -> None:
    tricky = "runner-x\rrunner-a\t\u0085"  # valid in an id; printed raw, it would show as runner-a
    store.record_heartbeat(HeartbeatRequest(tricky, "etl", "host\nx"), NOW - 60, RETENTION)
    _, out, _ = run("runners", "list", "--worker-group", "etl")
    [line] = [line for line in out.splitlines() if line.startswith("runner-x")]
    assert line.split()[:3] == ["runner-x\\rrunner-a\\t\\x85", "etl", "host\\nx"]
    assert len(out.splitlines()) == 4  # header, runner-a, runner-b, and this one on one line
    _, out, _ = run("runners", "show", tricky)
    assert out.splitlines()[0] == "taskrunnerId       runner-x\\rrunner-a\\t\\x85"
    assert run("runners", "forget", tricky) == (0, "Forgot runner runner-x\\rrunner-a\\t\\x85\n", "")


def test_every_command_shows_and_takes_the_real_id_of_a_runner_keyed_by_digest(store: RunnerStore) -> None:
    long_id = "\U0001f600" * 1024  # 4,096 bytes: its record is keyed by a digest
    store.record_heartbeat(HeartbeatRequest(long_id, "etl", "host-e.internal"), NOW - 60, RETENTION)
    _, out, _ = run("runners", "list", "--json", "--worker-group", "etl")
    assert long_id in [runner["taskrunnerId"] for runner in json.loads(out)]
    status, out, _ = run("runners", "show", long_id)
    assert (status, out.splitlines()[0]) == (0, f"taskrunnerId       {long_id}")
    assert run("runners", "terminate", long_id)[0] == 0
    assert store.record_heartbeat(HeartbeatRequest(long_id), NOW + 60, RETENTION).status == "terminating"
    assert run("runners", "reset", long_id)[0] == 0
    assert store.record_heartbeat(HeartbeatRequest(long_id), NOW + 120, RETENTION).status == "active"
    assert run("runners", "forget", long_id) == (0, f"Forgot runner {long_id}\n", "")
    assert store.get_runner(long_id) is None


@pytest.mark.parametrize("command", ["terminate", "reset"])
def test_terminate_or_reset_of_a_record_past_its_ttl_is_an_unknown_runner(store: RunnerStore, command: str) -> None:
    store.record_heartbeat(HeartbeatRequest("expired", "etl"), NOW - RETENTION - 1, RETENTION)  # DynamoDB has not
    before = store.get_runner("expired")  # deleted it yet (it may take days): it counts as absent all the same
    assert run("runners", command, "expired") == (1, "", f"error: no runner 'expired' in table '{TABLE}'\n")
    assert store.get_runner("expired") == before
    answer = store.record_heartbeat(HeartbeatRequest("expired"), NOW, RETENTION)
    assert (answer.status, answer.heartbeat_count) == ("active", 1)  # a new runner, as docs/guarantees.md says


@pytest.mark.parametrize("command", ["show", "terminate", "reset", "forget"])
def test_unknown_runner_exits_1_with_one_line(store: RunnerStore, command: str) -> None:
    assert run("runners", command, "nobody") == (1, "", f"error: no runner 'nobody' in table '{TABLE}'\n")


def test_summary_counts_by_status_and_group_and_names_the_oldest_active(store: RunnerStore) -> None:
    status, out, _ = run("runners", "summary")
    assert status == 0
    assert out.splitlines() == [
        "Runners: 4 (active 3, stale 1, terminating 0, retired 0)",
        "WORKER GROUP       ACTIVE        STALE  TERMINATING      RETIRED",
        "etl                     2            0            0            0",
        "reports                 1            1            0            0",
        "Oldest last seen among active runners: runner-c, 50m ago",
    ]


def test_sweep_flags_the_stale_runner_and_reports(store: RunnerStore) -> None:
    status, out, _ = run("runners", "sweep")
    assert status == 0
    # runner-c newly flagged; runner-d's event was still owed from its flag: both published
    assert out.splitlines() == [
        "fleet: normal (1 of 3 silent)",
        "Examined 3 active runners: 1 silent, 1 past their threshold, 1 flagged, 0 in grace; "
        "2 stale events published, 0 still owed",
        "Flagged 1 runner: runner-c: their next heartbeat answers terminate: true",
    ]
    assert store.get_runner("runner-c").status == "stale"  # type: ignore[union-attr]


def test_sweep_while_another_sweep_holds_the_lease_exits_4_and_changes_nothing(store: RunnerStore) -> None:
    store.acquire_lease("the scheduled sweep", NOW, NOW + 10**9)  # whatever the service's clock says
    before = sorted((r.taskrunner_id, r.status, r.event_pending) for r in store.runners())
    status, out, err = run("runners", "sweep")
    assert (status, out) == (4, "")
    assert err.startswith("error: Another sweep is running (its lease ends by ")
    assert err.endswith("): try again after it\n")
    assert sorted((r.taskrunner_id, r.status, r.event_pending) for r in store.runners()) == before


def test_sweep_override_guard_flags_past_a_held_fleet(store: RunnerStore) -> None:
    for name in ("runner-a", "runner-b"):  # nobody in the fleet is heard
        store.forget(name)
    for i in range(10):
        # went silent together, stale since shortly after the last sweep (earlier, it would have flagged them)
        store.record_heartbeat(HeartbeatRequest(f"gone-{i}", "batch"), NOW - 2800, RETENTION)
    status, out, _ = run("runners", "sweep")
    assert status == 3  # the guard held flags back: a script sees it
    assert "fleet: silent (11 of 11 silent: nobody heard since 2026-11-24T11:13:20.000Z)" in out  # held, and why
    assert "Held (fleet): none of their runners flagged." in out
    assert "Flagged" not in out
    assert store.get_runner("gone-0").status == "active"  # type: ignore[union-attr]
    status, out, _ = run("runners", "sweep", "--override-guard")
    assert status == 0
    assert "Held (fleet): overridden, their stale runners were flagged" in out
    assert store.get_runner("gone-0").status == "stale"  # type: ignore[union-attr]


def test_missing_table_exits_1_with_one_line(store: RunnerStore) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = main(["runners", "list", "--table", "nope", "--region", "us-east-1"], out=out, err=err)
    assert (status, out.getvalue()) == (1, "")
    assert err.getvalue() == "error: table 'nope' not found (check --table, --stack and --region)\n"


def test_no_credentials_exits_1_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    out, err = io.StringIO(), io.StringIO()
    status = main(["runners", "list", "--table", TABLE, "--region", "us-east-1"], out=out, err=err)
    assert status == 1
    assert err.getvalue().startswith("error: no AWS credentials found")


@pytest.mark.parametrize(
    ("argv", "env", "target"),
    [
        (["runners", "list"], {}, (True, LOCAL_STORE_URL, "taskrunner-heartbeat", None)),
        (["runners", "list", "--endpoint-url", "http://127.0.0.1:9"], {}, (False, "http://127.0.0.1:9", "taskrunner-heartbeat", None)),
        (["runners", "list", "--table", "t"], {}, (False, None, "t", None)),
        (["runners", "list", "--stack", "S"], {}, (False, None, None, None)),
        (["runners", "list"], {"TABLE_NAME": "t"}, (False, None, None, None)),
        (["events"], {}, (True, LOCAL_STORE_URL, None, "taskrunner-stale-events")),
        (["events", "--queue", "q"], {}, (False, None, None, "q")),
        (["events", "--endpoint-url", "http://127.0.0.1:9"], {}, (False, "http://127.0.0.1:9", None, "taskrunner-stale-events")),
    ],
)  # fmt: skip
def test_with_no_table_stack_or_endpoint_named_it_works_on_make_serves_store(
    argv: list[str], env: dict[str, str], target: tuple[bool, str | None, str | None, str | None]
) -> None:
    args = parse_args(argv)
    assert not isinstance(args, int)
    local = target_make_serve(args, env)
    assert (local, args.endpoint_url, getattr(args, "table", None), getattr(args, "queue", None)) == target


def test_with_nothing_named_and_no_make_serve_running_it_says_how_to_name_a_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TABLE_NAME", raising=False)
    if _listening(LOCAL_STORE_URL):
        pytest.skip(f"a make serve is running: its store holds {LOCAL_STORE_URL}")
    for argv in (["runners", "list"], ["events"]):
        out, err = io.StringIO(), io.StringIO()
        assert main(argv, out=out, err=err) == 1
        assert (out.getvalue(), err.getvalue()) == (
            "",
            f"error: nothing answers at {LOCAL_STORE_URL}, make serve's store: start make serve, "
            "or name a deployed table with --stack or --table\n",
        )


def _listening(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return False
    return True


def test_the_operators_shell_never_changes_the_rules(store: RunnerStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # A shell left over from `make serve` with a tiny threshold: runner-b (silent 40 s) must not be judged by it.
    monkeypatch.setenv("STALE_AFTER_SECONDS", "10")
    monkeypatch.setenv("STALE_AFTER_BY_WORKER_GROUP", '{"etl": 5}')
    _, out, _ = run("runners", "show", "runner-b")
    assert "staleAfterSeconds  2700" in out.splitlines()
    status, _, _ = run("runners", "sweep")
    assert status == 0
    assert [store.get_runner(f"runner-{x}").status for x in "abc"] == ["active", "active", "stale"]  # type: ignore[union-attr]


def test_show_and_reset_print_the_threshold_the_deployment_runs_with(store: RunnerStore) -> None:
    store.save_sweep_state(steady(config=Config(TABLE, stale_after_by_worker_group={"reports": 1200})))
    _, out, _ = run("runners", "show", "runner-c")
    assert "staleAfterSeconds  1200" in out.splitlines()
    _, out, _ = run("runners", "reset", "runner-c")
    assert "silent for more than 1200 s (its threshold)" in out


def test_an_operators_clock_a_day_ahead_sweeps_on_the_services_time(store: RunnerStore) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = main(
        ["runners", "sweep", "--table", TABLE, "--region", "us-east-1"], clock=lambda: NOW + 86_400, out=out, err=err
    )
    assert status == 0
    assert err.getvalue() == "note: this machine's clock is 1d ahead of the service's; times here are the service's\n"
    state = store.load_sweep_state()
    assert state is not None
    assert state.last_sweep_at == pytest.approx(NOW, abs=5)  # the state is not stamped a day ahead
    # Only runner-c is stale by the service's time: a day ahead, every runner would have looked stale.
    assert [store.get_runner(f"runner-{x}").status for x in "abc"] == ["active", "active", "stale"]  # type: ignore[union-attr]
    _, out, _ = run("runners", "list", "--worker-group", "etl")
    assert "40s ago" in out


def test_dry_run_prints_who_would_be_flagged_and_why_and_changes_nothing(store: RunnerStore) -> None:
    before = store.load_sweep_state()
    status, out, _ = run("runners", "sweep", "--dry-run")
    assert status == 0
    assert out.splitlines() == [
        "Dry run at 2026-11-24T12:00:00.000Z (the service's time), with the deployment's rules; nothing is changed",
        "the fleet: normal (1 of 3 silent)",
        "would flag  runner-c: silent since 2026-11-24T11:10:00.000Z (its last heartbeat), over its threshold of 2700 s",
        "Would flag 1 of 3 active runners; 0 in grace; 1 stale events owed from earlier flags",
    ]
    assert store.get_runner("runner-c").status == "active"  # type: ignore[union-attr]
    assert store.get_runner("runner-d").event_pending  # type: ignore[union-attr]
    assert store.load_sweep_state() == before


def test_dry_run_of_a_held_fleet_says_why_each_runner_is_in_grace(store: RunnerStore) -> None:
    for name in ("runner-a", "runner-b"):
        store.forget(name)
    for i in range(4):
        store.record_heartbeat(HeartbeatRequest(f"gone-{i}", "batch"), NOW - 2800 + i, RETENTION)
    _, out, _ = run("runners", "sweep", "--dry-run")
    lines = out.splitlines()
    assert lines[1].startswith("the fleet: silent (5 of 5 silent: nobody heard since ")
    assert lines[1].endswith("held: none of its runners is flagged")
    assert "in grace    gone-0: last heard 2026-11-24T11:13:20.000Z; its silence counts from " in out
    assert "(the grace of a hold: the fleet is held)" in out


def test_retire_takes_a_runner_out_of_the_fleet_with_no_stale_event(store: RunnerStore) -> None:
    status, out, _ = run("runners", "retire", "runner-c", "--reason", "scaled in")
    assert status == 0
    assert out.startswith("Runner runner-c retired (by ")
    runner = store.get_runner("runner-c")
    assert runner is not None
    assert (runner.status, runner.retire_reason, runner.event_pending) == ("retired", "scaled in", False)
    _, out, _ = run("runners", "sweep")
    assert "Examined 2 active runners" in out  # out of the census at once
    assert store.get_runner("runner-c").status == "retired"  # type: ignore[union-attr]
    # It beats again (an instance still shutting down): told to terminate, and it stays retired.
    assert store.record_heartbeat(HeartbeatRequest("runner-c"), NOW + 60, RETENTION).status == "retired"
    assert run("runners", "reset", "runner-c")[0] == 0
    assert store.get_runner("runner-c").status == "active"  # type: ignore[union-attr]


def test_retire_of_a_flagged_runner_drops_its_owed_event(store: RunnerStore) -> None:
    assert run("runners", "retire", "runner-d")[0] == 0
    runner = store.get_runner("runner-d")
    assert (runner.status, runner.event_pending) == ("retired", False)  # type: ignore[union-attr]


def test_before_the_sweepers_first_run_nothing_is_judged_by_guesswork(store: RunnerStore) -> None:
    store.client.delete_item(TableName=TABLE, Key={"taskrunnerId": {"S": "\uffffsweeper-state"}})
    _, out, _ = run("runners", "show", "runner-c")
    assert "staleAfterSeconds  -" in out.splitlines()
    assert "shownStatus        active" in out.splitlines()
    assert run("runners", "sweep") == (
        1,
        "",
        f"error: the sweeper has not recorded its settings in table '{TABLE}' yet (it does on every run): "
        "wait for its first scheduled run\n",
    )


def test_sweep_names_what_it_flagged_capped_with_a_count(store: RunnerStore) -> None:
    for i in range(12):  # silent past the threshold while runner-a and runner-b are heard: flagged
        store.record_heartbeat(HeartbeatRequest(f"gone-{i:02}", "etl"), NOW - 2800, RETENTION)
    status, out, _ = run("runners", "sweep")
    assert status == 0
    [line] = [line for line in out.splitlines() if line.startswith("Flagged")]
    assert line.startswith("Flagged 13 runners: ")
    assert line.endswith(" and 3 more: their next heartbeat answers terminate: true")
    assert len(line.split(": ")[1].split(", ")) == 10


def test_status_shows_the_sweepers_state_held_scopes_rules_and_counts(store: RunnerStore) -> None:
    status, out, _ = run("status")
    assert status == 0
    assert out.splitlines() == [
        "Last sweep:     2026-11-24T11:55:00.000Z (5m ago), finished 2026-11-24T11:55:02.000Z (4m ago)",
        "Watching since: 2026-11-23T12:00:00.000Z (1d ago)",
        "Held scopes:    none",
        "Rules:          stale after 2700 s, retention 604800 s, sweep every 300 s, guard fraction 0.5",
        "Runners: 4 (active 3, stale 1, terminating 0, retired 0)",
        "WORKER GROUP       ACTIVE        STALE  TERMINATING      RETIRED",
        "etl                     2            0            0            0",
        "reports                 1            1            0            0",
        "Oldest last seen among active runners: runner-c, 50m ago",
    ]
    # After a sweep that held the fleet: the held scope, why, and since when.
    for name in ("runner-a", "runner-b"):
        store.forget(name)
    for i in range(4):
        store.record_heartbeat(HeartbeatRequest(f"gone-{i}", "batch"), NOW - 2800, RETENTION)
    assert run("runners", "sweep")[0] == 3
    status, out, _ = run("status", "--json")
    document = json.loads(out)
    assert status == 0
    assert document["sweeper"]["scopes"] == [
        {"scope": "fleet", "state": "silent", "why": "5 of 5 silent: nobody heard since 2026-11-24T11:13:20.000Z",
         "held": True, "heldSince": "2026-11-24T11:55:00.000Z"},
    ]  # fmt: skip
    assert document["rules"]["staleAfterSeconds"] == 2700
    assert document["fleet"]["byWorkerGroup"]["batch"]["active"] == 4
    _, out, _ = run("status")
    assert "Held scope:     the fleet: silent (5 of 5 silent: nobody heard since 2026-11-24T11:13:20.000Z), " \
        "held since 2026-11-24T11:55:00.000Z" in out.splitlines()  # fmt: skip


def test_status_before_the_sweepers_first_run_says_so(store: RunnerStore) -> None:
    store.client.delete_item(TableName=TABLE, Key={"taskrunnerId": {"S": "\uffffsweeper-state"}})
    status, out, _ = run("status")
    assert status == 0
    assert out.splitlines()[:2] == [
        "Last sweep: none recorded (the sweeper has not completed a run against this table yet)",
        "Rules:          not recorded yet (the sweeper records them on every run)",
    ]


def statuses(store: RunnerStore) -> dict[str, str]:
    return {r.taskrunner_id: r.status for r in store.runners()}


def test_bulk_dry_run_prints_who_would_change_and_changes_nothing(store: RunnerStore) -> None:
    before = statuses(store)
    status, out, _ = run("runners", "terminate", "--worker-group", "etl", "--dry-run")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "Dry run: would terminate 2 runners (worker group 'etl'); nothing is changed"
    assert sorted(line.split()[0] for line in lines[2:]) == ["runner-a", "runner-b"]
    assert statuses(store) == before


def test_bulk_terminate_by_worker_group_tells_each_to_stop(store: RunnerStore) -> None:
    status, out, _ = run("runners", "terminate", "--worker-group", "etl", "--reason", "rolling the AMI")
    assert status == 0
    assert out.startswith("2 of 2 runners selected (worker group 'etl') told to terminate at their next heartbeat: ")
    assert statuses(store) == {"runner-a": "terminating", "runner-b": "terminating", "runner-c": "active",
                               "runner-d": "stale"}  # fmt: skip
    assert store.get_runner("runner-a").terminate_reason == "rolling the AMI"  # type: ignore[union-attr]
    assert store.record_heartbeat(HeartbeatRequest("runner-b"), NOW + 60, RETENTION).status == "terminating"


def test_bulk_reset_by_status_and_retire_by_both_filters(store: RunnerStore) -> None:
    assert run("runners", "reset", "--status", "stale")[1].startswith("1 of 1 runners selected (status stale) reset")
    assert statuses(store)["runner-d"] == "active"
    status, out, _ = run(
        "runners", "retire", "--worker-group", "reports", "--status", "active", "--reason", "scaled in"
    )
    assert status == 0
    assert out.startswith("2 of 2 runners selected (worker group 'reports' and status active) retired: 2 runners: ")
    assert statuses(store) == {"runner-a": "active", "runner-b": "active", "runner-c": "retired",
                               "runner-d": "retired"}  # fmt: skip


@pytest.mark.parametrize("command", ["terminate", "reset", "retire"])
def test_a_bulk_command_with_no_filter_refuses_unless_told_all(store: RunnerStore, command: str) -> None:
    before = statuses(store)
    status, out, err = run("runners", command)
    assert (status, out) == (2, "")
    assert "to change every runner in the table, say so with --all" in err
    assert statuses(store) == before
    status, out, _ = run("runners", command, "--all", "--dry-run")
    assert (status, out.splitlines()[0]) == (
        0, f"Dry run: would {command} 4 runners (every runner (--all)); nothing is changed",
    )  # fmt: skip
    assert run("runners", command, "runner-a", "--status", "active")[0] == 2  # an id and a selection: which?
    assert statuses(store) == before


def test_bulk_skips_a_runner_gone_between_its_selection_and_its_write(store: RunnerStore) -> None:
    # runner-e's record is past its retention (DynamoDB has not deleted it yet): never selected, never written.
    store.record_heartbeat(HeartbeatRequest("runner-e", "etl"), NOW - RETENTION - 1, RETENTION)
    before = store.get_runner("runner-e")
    status, out, _ = run("runners", "terminate", "--worker-group", "etl")
    assert (status, out.split(":")[0]) == (0, "2 of 2 runners selected (worker group 'etl') told to terminate at "
                                              "their next heartbeat")  # fmt: skip
    assert store.get_runner("runner-e") == before


class Terminal(io.StringIO):
    """stderr as a terminal shows it (the bar's own escape codes and carriage returns included)."""

    def isatty(self) -> bool:
        return True


def test_progress_goes_to_stderr_only_on_a_terminal_and_never_changes_stdout(store: RunnerStore) -> None:
    plain_out, plain_err = io.StringIO(), io.StringIO()
    assert (
        main(["runners", "summary", "--table", TABLE, "--region", "us-east-1"], lambda: NOW, plain_out, plain_err) == 0
    )
    assert plain_err.getvalue() == ""
    out, err = io.StringIO(), Terminal()
    assert main(["runners", "summary", "--table", TABLE, "--region", "us-east-1"], lambda: NOW, out, err) == 0
    assert out.getvalue() == plain_out.getvalue()
    assert "Scanning runners" in err.getvalue()


def test_help_reads_as_plain_text_and_version_comes_from_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"heartbeat-ops {version('taskrunner-heartbeat')}\n"
    for argv in (["--help"], ["runners", "--help"], ["runners", "terminate", "--help"], ["status", "--help"],
                 ["keys", "create", "--help"], ["events", "--help"]):  # fmt: skip
        assert main(argv) == 0
        text = capsys.readouterr().out
        assert text.startswith("Usage: heartbeat-ops")
        assert not re.search(r"``|:[a-z]+:`|^\s*\.\. ", text, re.MULTILINE)  # no reStructuredText markup
