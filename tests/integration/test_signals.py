"""Retire on AWS's own signals (heartbeat.signals): EventBridge events through the real handler, the table on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from heartbeat.config import DEFAULT_RETENTION_SECONDS, Config
from heartbeat.model import HeartbeatRequest
from heartbeat.plan import SweepState
from heartbeat.signals import make_handler, runner_ids
from heartbeat.store import RunnerStore
from heartbeat.sweeper import sweep
from tests.conftest import TABLE
from tests.support import LambdaContext, load_event

NOW = 1_795_521_600.0
RETENTION = DEFAULT_RETENTION_SECONDS
EC2 = "i-1234567890abcdef0"
ASG = "i-0fedcba9876543210"
ECS = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


@pytest.fixture
def handler(store: RunnerStore) -> Any:
    retire = make_handler(lambda: store, clock=lambda: NOW)

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return retire(event, LambdaContext(function_name="retire"))  # type: ignore[arg-type]

    return invoke


def beat(store: RunnerStore, runner_id: str, when: float = NOW - 60) -> None:
    store.record_heartbeat(HeartbeatRequest(runner_id, "etl", f"{runner_id}.internal"), when, RETENTION)


@pytest.mark.parametrize(
    ("event", "runner"),
    [("ec2_instance_terminated", EC2), ("asg_terminate_lifecycle_action", ASG), ("ecs_task_stopped", ECS)],
)
def test_each_signal_retires_its_runner_and_no_other(
    store: RunnerStore, handler: Any, event: str, runner: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (EC2, ASG, ECS, "bystander"):
        beat(store, name)
    assert handler(load_event(event)) == {"retired": [runner]}
    statuses = {r.taskrunner_id: r.status for r in store.runners()}
    assert statuses == {name: "retired" if name == runner else "active" for name in (EC2, ASG, ECS, "bystander")}
    record = store.get_runner(runner)
    assert record is not None
    assert (record.retired_by or "").startswith(load_event(event)["source"])
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert emf["RunnersRetired"] == [1.0]


def test_an_ecs_runner_named_by_its_task_arn_is_retired_too(store: RunnerStore, handler: Any) -> None:
    arn = load_event("ecs_task_stopped")["detail"]["taskArn"]
    beat(store, arn)
    assert handler(load_event("ecs_task_stopped")) == {"retired": [arn]}


def test_a_signal_that_is_not_a_departure_changes_nothing(store: RunnerStore, handler: Any) -> None:
    beat(store, EC2)
    beat(store, ASG)
    running = load_event("ec2_instance_terminated")
    running["detail"]["state"] = "stopping"  # a stopped instance comes back
    to_warm_pool = load_event("asg_terminate_lifecycle_action")
    to_warm_pool["detail"]["Destination"] = "WarmPool"  # scale-in to the warm pool: it comes back
    for event in (running, to_warm_pool, {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}):
        assert handler(event) == {"retired": []}
    assert {r.status for r in store.runners()} == {"active"}


def test_a_signal_for_an_unknown_runner_changes_nothing(store: RunnerStore, handler: Any) -> None:
    assert handler(load_event("ec2_instance_terminated")) == {"retired": []}
    assert list(store.runners()) == []


def test_runners_retired_by_a_scale_in_signal_are_never_flagged_and_send_no_event(
    store: RunnerStore, handler: Any
) -> None:
    config = Config(TABLE)
    store.save_sweep_state(SweepState(last_sweep_at=NOW - 300, watching_since=NOW - 86_400))
    gone = [f"i-{n:017x}" for n in range(6)]
    for name in gone:
        beat(store, name, NOW - 3000)  # removed by a scale-in 50 minutes ago
    for n in range(4):
        beat(store, f"survivor-{n}", NOW - 60)
    for name in gone:
        event = load_event("ec2_instance_terminated")
        event["detail"]["instance-id"] = name
        handler(event)
    report = sweep(store, config, NOW)
    assert (report.examined, report.flagged, report.events_owed, report.partial) == (4, 0, 0, [])


def test_runner_ids_reads_each_shape() -> None:
    assert runner_ids(load_event("ec2_instance_terminated")) == [EC2]
    assert runner_ids(load_event("asg_terminate_lifecycle_action")) == [ASG]
    arn = load_event("ecs_task_stopped")["detail"]["taskArn"]
    assert runner_ids(load_event("ecs_task_stopped")) == [ECS, arn]
