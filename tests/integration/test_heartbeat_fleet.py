"""The test kit (heartbeat_testing): the heartbeat_fleet fixture as runners' own tests use it, with real clients."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from moto import mock_aws

from heartbeat.config import (
    DEFAULT_MASS_STALE_FRACTION,
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_STALE_AFTER_SECONDS,
    ConfigError,
)
from heartbeat.handler import Dependencies, make_handler
from heartbeat.store import RunnerStore, UnknownRunner
from heartbeat_testing.fleet import KIT_ACCOUNT_ID, TABLE_NAME, HeartbeatFleet
from heartbeat_testing.routing import heartbeat_route
from tests.support import FakeClock

THRESHOLD = DEFAULT_STALE_AFTER_SECONDS


def datapipeline(region: str = "us-east-1", **config: Any) -> Any:
    return boto3.client("datapipeline", region_name=region, config=BotoConfig(**config) if config else None)


def beat(client: Any, taskrunner_id: str, **members: str) -> bool:
    terminate: bool = client.report_task_runner_heartbeat(taskrunnerId=taskrunner_id, **members)["terminate"]
    return terminate


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-4"])
def test_first_heartbeat_in_any_region_answers_keep_working_and_records_the_runner(
    heartbeat_fleet: HeartbeatFleet, region: str
) -> None:
    client = datapipeline(region)
    response = client.report_task_runner_heartbeat(taskrunnerId="r-1", hostname="h-1", workerGroup="etl")
    assert (response["terminate"], response["ResponseMetadata"]["HTTPStatusCode"]) == (False, 200)
    assert response["ResponseMetadata"]["RequestId"]  # the handler's own request id reaches the client
    runner = heartbeat_fleet.runner("r-1")
    assert runner is not None
    assert (runner.status, runner.heartbeat_count, runner.hostname, runner.worker_group) == ("active", 1, "h-1", "etl")
    assert runner.last_seen == pytest.approx(heartbeat_fleet.now, abs=0.001)


def test_a_plain_botocore_client_is_answered_too(heartbeat_fleet: HeartbeatFleet) -> None:
    client = botocore.session.get_session().create_client("datapipeline", region_name="sa-east-1")
    assert client.report_task_runner_heartbeat(taskrunnerId="r-1")["terminate"] is False


def test_silence_just_past_the_threshold_is_flagged_by_the_next_sweep(heartbeat_fleet: HeartbeatFleet) -> None:
    client = datapipeline()
    assert beat(client, "r-1") is False
    heartbeat_fleet.advance(THRESHOLD)
    assert heartbeat_fleet.sweep().flagged == 0  # silent exactly the threshold: not yet stale
    heartbeat_fleet.advance(1)
    assert heartbeat_fleet.sweep().flagged == 1
    assert heartbeat_fleet.runner("r-1").status == "stale"  # type: ignore[union-attr]
    assert beat(client, "r-1") is True
    assert beat(client, "r-1") is True  # sticky until an operator resets it


def test_one_jump_past_the_threshold_and_one_sweep_flag_the_runner(heartbeat_fleet: HeartbeatFleet) -> None:
    # The kit's sweeper was up all along: the jump is the runner's silence, not the sweeper's outage.
    client = datapipeline()
    beat(client, "r-1")
    heartbeat_fleet.advance(THRESHOLD + 1)
    report = heartbeat_fleet.sweep()
    assert (report.stale, report.flagged, report.in_grace) == (1, 1, 0)
    assert beat(client, "r-1") is True


def test_a_runner_that_keeps_beating_is_never_flagged(heartbeat_fleet: HeartbeatFleet) -> None:
    client = datapipeline()
    for _ in range(10):
        assert beat(client, "r-1") is False
        heartbeat_fleet.advance(900)
        assert heartbeat_fleet.sweep().flagged == 0


def test_stale_event_is_published_through_eventbridge_once(heartbeat_fleet: HeartbeatFleet) -> None:
    beat(datapipeline(), "r-1", hostname="h-1", workerGroup="etl")
    assert heartbeat_fleet.events() == []
    heartbeat_fleet.advance(THRESHOLD + 1)
    heartbeat_fleet.sweep()
    heartbeat_fleet.sweep()
    [event] = heartbeat_fleet.events()
    assert (event["source"], event["detail-type"]) == ("taskrunner.heartbeat", "Task Runner Stale")
    detail = event["detail"]
    assert (detail["taskrunnerId"], detail["hostname"], detail["workerGroup"]) == ("r-1", "h-1", "etl")
    assert detail["staleAfterSeconds"] == THRESHOLD
    assert heartbeat_fleet.events() == [event]  # read once, kept


def test_settings_default_as_deployed_and_change_the_decision(heartbeat_fleet: HeartbeatFleet) -> None:
    config = heartbeat_fleet.config
    assert (config.stale_after_seconds, config.retention_seconds, config.mass_stale_fraction) == (
        DEFAULT_STALE_AFTER_SECONDS, DEFAULT_RETENTION_SECONDS, DEFAULT_MASS_STALE_FRACTION,
    )  # fmt: skip
    assert config.stale_after_by_worker_group == {}
    heartbeat_fleet.configure(stale_after_seconds=60, stale_after_by_worker_group={"fast": 10})
    client = datapipeline()
    beat(client, "slow-1")
    beat(client, "fast-1", workerGroup="fast")
    heartbeat_fleet.advance(11)
    heartbeat_fleet.sweep()
    assert (beat(client, "fast-1"), beat(client, "slow-1")) == (True, False)
    heartbeat_fleet.advance(61)
    heartbeat_fleet.sweep()
    assert beat(client, "slow-1") is True


def test_configure_keeps_the_settings_not_given(heartbeat_fleet: HeartbeatFleet) -> None:
    heartbeat_fleet.configure(stale_after_seconds=60)
    config = heartbeat_fleet.configure(mass_stale_fraction=1)
    assert (config.stale_after_seconds, config.mass_stale_fraction) == (60, 1.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"stale_after_seconds": 0}, "STALE_AFTER_SECONDS must be a positive whole number of seconds, got '0'"),
        ({"stale_after_seconds": 1.5}, "STALE_AFTER_SECONDS must be a whole number of seconds, got '1.5'"),
        ({"stale_after_seconds": DEFAULT_RETENTION_SECONDS}, "RETENTION_SECONDS (604800) must exceed"),
        ({"mass_stale_fraction": 0}, "MASS_STALE_FRACTION must be greater than 0 and at most 1"),
        ({"stale_after_by_worker_group": {"fast": "ten"}}, "STALE_AFTER_BY_WORKER_GROUP: 'fast' must map to a number"),
    ],
)
def test_bad_settings_are_refused_as_the_deployed_functions_refuse_them(
    heartbeat_fleet: HeartbeatFleet, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        heartbeat_fleet.configure(**settings)
    assert str(refused.value).startswith(message)
    assert heartbeat_fleet.config.stale_after_seconds == DEFAULT_STALE_AFTER_SECONDS  # nothing changed


def test_mass_staleness_guard_holds_a_silent_fleet_as_deployed(heartbeat_fleet: HeartbeatFleet) -> None:
    client = datapipeline()
    for n in range(4):
        beat(client, f"r-{n}")
    heartbeat_fleet.advance(THRESHOLD + 1)
    report = heartbeat_fleet.sweep()
    assert (report.held, report.flagged) == (["fleet"], 0)
    assert heartbeat_fleet.sweep(override_guard=True).flagged == 4  # the operator's override


def test_the_clock_only_moves_forward(heartbeat_fleet: HeartbeatFleet) -> None:
    start = heartbeat_fleet.now
    with pytest.raises(ValueError, match="only moves forward"):
        heartbeat_fleet.advance(-1)
    with pytest.raises(TypeError):
        heartbeat_fleet.advance(float("nan"))
    assert heartbeat_fleet.advance(1.5) == start + 1.5 == heartbeat_fleet.now


def test_operator_terminate_reset_and_forget(heartbeat_fleet: HeartbeatFleet) -> None:
    client = datapipeline()
    beat(client, "r-1")
    terminated = heartbeat_fleet.terminate("r-1", reason="draining")
    assert (terminated.status, terminated.terminate_requested_by, terminated.terminate_reason) == (
        "terminating", "heartbeat_fleet", "draining",
    )  # fmt: skip
    assert beat(client, "r-1") is True
    assert heartbeat_fleet.reset("r-1").status == "active"
    assert beat(client, "r-1") is False
    heartbeat_fleet.forget("r-1")
    assert heartbeat_fleet.runner("r-1") is None
    beat(client, "r-1")
    assert heartbeat_fleet.runner("r-1").heartbeat_count == 1  # type: ignore[union-attr]  # starts afresh
    assert [r.taskrunner_id for r in heartbeat_fleet.runners()] == ["r-1"]


def test_operator_actions_on_an_unknown_runner_raise_unknown_runner(heartbeat_fleet: HeartbeatFleet) -> None:
    for action in (heartbeat_fleet.terminate, heartbeat_fleet.reset, heartbeat_fleet.forget):
        with pytest.raises(UnknownRunner):
            action("nobody")


def test_a_retired_runner_is_never_flagged_sends_no_event_and_is_told_to_terminate(
    heartbeat_fleet: HeartbeatFleet,
) -> None:
    client = datapipeline()
    for n in range(4):
        beat(client, f"r-{n}")
    assert heartbeat_fleet.retire("r-0", reason="scaled in").status == "retired"
    heartbeat_fleet.advance(THRESHOLD / 2)
    for n in range(1, 4):
        beat(client, f"r-{n}")
    heartbeat_fleet.advance(THRESHOLD / 2 + 1)
    assert heartbeat_fleet.sweep().flagged == 0
    assert heartbeat_fleet.events() == []
    assert beat(client, "r-0") is True  # sticky: an instance still shutting down is told to stop


@pytest.mark.parametrize("taskrunner_id", ["", "x" * 1025, "bad\u0001id"])
def test_invalid_id_raises_the_clients_invalid_request_exception_and_stores_nothing(
    heartbeat_fleet: HeartbeatFleet, taskrunner_id: str
) -> None:
    client = datapipeline(parameter_validation=False)
    with pytest.raises(client.exceptions.InvalidRequestException) as refused:
        client.report_task_runner_heartbeat(taskrunnerId=taskrunner_id)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert heartbeat_fleet.runners() == []


def test_other_data_pipeline_operations_keep_motos_behaviour(heartbeat_fleet: HeartbeatFleet) -> None:
    client = datapipeline()
    pipeline_id = client.create_pipeline(name="nightly", uniqueId="nightly-1")["pipelineId"]
    assert [p["id"] for p in client.list_pipelines()["pipelineIdList"]] == [pipeline_id]
    with pytest.raises(NotImplementedError, match="poll_for_task"):  # moto has none, and says so
        client.poll_for_task(workerGroup="etl")


def test_the_kits_resources_stay_out_of_the_tests_account(heartbeat_fleet: HeartbeatFleet) -> None:
    beat(datapipeline(), "r-1")
    assert boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"] == []
    assert "QueueUrls" not in boto3.client("sqs", region_name="us-east-1").list_queues()
    assert boto3.client("events", region_name="us-east-1").list_rules()["Rules"] == []
    kit = boto3.client("dynamodb", region_name="us-east-1")
    kit.meta.events.register("before-sign", in_kit_account)
    assert kit.list_tables()["TableNames"] == [TABLE_NAME]


def in_kit_account(request: AWSRequest, **_: Any) -> None:
    request.headers["x-moto-account-id"] = KIT_ACCOUNT_ID


@mock_aws
def test_shares_a_mock_aws_decorator(heartbeat_fleet: HeartbeatFleet) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="mine",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert beat(datapipeline(), "r-1") is False
    assert dynamodb.list_tables()["TableNames"] == ["mine"]


def test_shares_a_mock_aws_context_inside_the_test(heartbeat_fleet: HeartbeatFleet) -> None:
    with mock_aws():
        client = datapipeline()
        assert beat(client, "r-1") is False
        heartbeat_fleet.terminate("r-1")
    assert beat(client, "r-1") is True  # the fleet outlives the inner context


@pytest.fixture
def users_moto() -> Iterator[Any]:
    """A test's own mock_aws fixture, started before the fleet, with a table of its own."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="mine",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


def test_shares_a_mock_aws_fixture_started_before_it(users_moto: Any, heartbeat_fleet: HeartbeatFleet) -> None:
    assert beat(datapipeline(), "r-1") is False
    assert users_moto.list_tables()["TableNames"] == ["mine"]  # not reset by the fleet's start


def test_a_fleet_leaves_an_active_mock_aws_as_it_found_it_and_can_start_again() -> None:
    with mock_aws():
        client = datapipeline()
        for _ in range(2):
            with HeartbeatFleet() as fleet:
                assert beat(client, "r-1") is False
                assert fleet.runner("r-1").heartbeat_count == 1  # type: ignore[union-attr]  # a fresh table
        with pytest.raises(NotImplementedError, match="report_task_runner_heartbeat"):
            client.report_task_runner_heartbeat(taskrunnerId="r-1")  # moto's own answer again


def test_concurrent_runners_and_sweeps_lose_no_heartbeat(heartbeat_fleet: HeartbeatFleet) -> None:
    runners, beats = 4, 10
    client = datapipeline()
    barrier = threading.Barrier(runners + 1)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            for _ in range(beats):
                beat(client, f"r-{n}")
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(runners)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for _ in range(5):
        heartbeat_fleet.sweep()
        heartbeat_fleet.runners()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.heartbeat_count for r in heartbeat_fleet.runners()) == [beats] * runners


def test_the_plugin_imports_nothing_heavy() -> None:
    # pytest loads the plugin in every run of a project that installed this one.
    code = (
        "import sys, heartbeat_testing.plugin, heartbeat_testing; heavy = "
        "('moto', 'boto3', 'botocore', 'heartbeat', 'aws_lambda_powertools'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


@pytest.mark.parametrize("shape", ["werkzeug", "botocore"])
def test_the_route_answers_heartbeats_from_either_request_shape_and_passes_the_rest_to_moto(
    dynamodb: Any, store: RunnerStore, config: Any, shape: str
) -> None:
    # moto 5.2.5 hands a route a werkzeug request; earlier 5.2 releases, botocore's prepared request itself.
    from moto.core.request import normalize_request

    handler = make_handler(lambda: Dependencies(config=config, store=store, clock=FakeClock()))
    passed: list[str] = []
    route = heartbeat_route(handler, lambda request, url, headers: passed.append(url) or (200, {}, "moto"))  # type: ignore[func-returns-value]
    url = "https://datapipeline.us-east-1.amazonaws.com/"

    def request(target: str) -> Any:
        headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
        prepared = AWSRequest("POST", url, headers=headers, data=b'{"taskrunnerId":"r-1"}').prepare()
        return normalize_request(prepared) if shape == "werkzeug" else prepared

    heartbeat = request("DataPipeline.ReportTaskRunnerHeartbeat")
    status, headers, body = route(heartbeat, url, heartbeat.headers)
    assert (status, headers["Content-Type"], body) == (200, "application/x-amz-json-1.1", b'{"terminate":false}')
    other = request("DataPipeline.ListPipelines")
    assert route(other, url, other.headers) == (200, {}, "moto")
    assert passed == [url]
