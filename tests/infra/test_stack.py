"""The synthesized template: each point of the design, per access mode."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from heartbeat.config import DEFAULT_RETENTION_SECONDS, DEFAULT_STALE_AFTER_SECONDS, DEFAULT_SWEEP_INTERVAL_SECONDS
from heartbeat_local.process import ROOT
from infra.monitoring import NAMESPACE
from tests.infra.conftest import Synth

TABLE_ARN = {"Fn::GetAtt": [Match.string_like_regexp("^RunnersTable"), "Arn"]}


def only(template: Template, resource_type: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return next(iter(found.values()))  # type: ignore[no-any-return]


def function(template: Template, handler: str) -> tuple[str, dict[str, Any]]:
    found = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    assert len(found) == 1
    return next(iter(found.items()))


def role_statements(template: Template, function_props: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = function_props["Role"]["Fn::GetAtt"][0]
    policies = template.find_resources("AWS::IAM::Policy")
    statements: list[dict[str, Any]] = []
    for policy in policies.values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions_on(statements: list[dict[str, Any]], prefix: str) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        found.update(a for a in actions if a.startswith(prefix))
    return found


# Storage


def runners_table(template: Template) -> dict[str, Any]:
    return only(template, "AWS::DynamoDB::Table", {"KeySchema": [{"AttributeName": "taskrunnerId", "KeyType": "HASH"}]})


def test_table_is_on_demand_keyed_on_runner_id_with_ttl_and_pitr(private: Synth) -> None:
    table = runners_table(private.template)
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "taskrunnerId", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert props["SSESpecification"] == {"SSEEnabled": False}  # DynamoDB's AWS-owned key by default


def test_provisioned_billing_scales_reads_and_writes_at_70_percent(private: Synth, regional: Synth) -> None:
    assert private.template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget") == {}  # on demand
    table_id, table = next(iter(regional.template.find_resources("AWS::DynamoDB::Table").items()))
    assert "BillingMode" not in table["Properties"]  # CloudFormation's default: PROVISIONED
    assert table["Properties"]["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    targets = regional.template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    by_dimension = {t["Properties"]["ScalableDimension"]: (tid, t["Properties"]) for tid, t in targets.items()}
    assert set(by_dimension) == {"dynamodb:table:ReadCapacityUnits", "dynamodb:table:WriteCapacityUnits"}
    policies = regional.template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    for dimension, metric in (
        ("Read", "DynamoDBReadCapacityUtilization"),
        ("Write", "DynamoDBWriteCapacityUtilization"),
    ):
        target_id, target = by_dimension[f"dynamodb:table:{dimension}CapacityUnits"]
        assert (target["ServiceNamespace"], target["MinCapacity"], target["MaxCapacity"]) == ("dynamodb", 5, 40_000)
        assert target["ResourceId"] == {"Fn::Join": ["", ["table/", {"Ref": table_id}]]}
        [policy] = [p["Properties"] for p in policies if p["Properties"]["ScalingTargetId"] == {"Ref": target_id}]
        assert policy["PolicyType"] == "TargetTrackingScaling"
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        assert config["TargetValue"] == 70
        assert config["PredefinedMetricSpecification"] == {"PredefinedMetricType": metric}


def test_customer_managed_key_is_a_choice(regional: Synth) -> None:
    table = runners_table(regional.template)
    sse = table["Properties"]["SSESpecification"]
    assert (sse["SSEEnabled"], sse["SSEType"]) == (True, "KMS")
    key_id = sse["KMSMasterKeyId"]["Fn::GetAtt"][0]
    assert "RunnersKey" in key_id
    assert regional.template.to_json()["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    assert table["DeletionPolicy"] == "Delete"  # retainData=false was asked for
    assert table["Properties"]["DeletionProtectionEnabled"] is False


# Functions


def test_every_function_is_python_313_arm64_traced_with_the_powertools_layer(private: Synth) -> None:
    for handler in (
        "heartbeat.handler.lambda_handler",
        "heartbeat.sweeper.lambda_handler",
        "heartbeat.flag_worker.lambda_handler",
    ):
        _, props = function(private.template, handler)
        props = props["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 1
        env = props["Environment"]["Variables"]
        assert env["STALE_AFTER_SECONDS"] == str(DEFAULT_STALE_AFTER_SECONDS)  # the stack's defaults are the handler's
        assert env["RETENTION_SECONDS"] == str(DEFAULT_RETENTION_SECONDS)
        assert env["POWERTOOLS_TRACE_DISABLED"] == "true"  # X-Ray SDK subsegments are opt-in (cold start)
        assert env["TABLE_NAME"] == {"Ref": Match.string_like_regexp("^RunnersTable")} or "Ref" in env["TABLE_NAME"]
    parameters = private.template.find_parameters("*")
    assert any(
        p.get("Default") == "/aws/service/powertools/python/arm64/python3.13/3.37.0" for p in parameters.values()
    )


def test_memory_and_timeout_are_set(private: Synth) -> None:
    _, handler = function(private.template, "heartbeat.handler.lambda_handler")
    _, sweeper = function(private.template, "heartbeat.sweeper.lambda_handler")
    assert (handler["Properties"]["MemorySize"], handler["Properties"]["Timeout"]) == (256, 10)
    assert (sweeper["Properties"]["MemorySize"], sweeper["Properties"]["Timeout"]) == (1769, 300)
    _, worker = function(private.template, "heartbeat.flag_worker.lambda_handler")
    assert (worker["Properties"]["MemorySize"], worker["Properties"]["Timeout"]) == (1769, 60)


def test_every_function_logs_json_at_info_with_platform_lines_at_warn(private: Synth, alb: Synth) -> None:
    # JSON is what lets Lambda filter by level; WARN drops START/END/REPORT on every heartbeat, and INFO
    # keeps the EMF lines (Lambda reads a line with no level as INFO) that the alarms depend on.
    for synth in (private, alb):
        for handler in (
            "heartbeat.handler.lambda_handler",
            "heartbeat.sweeper.lambda_handler",
            "heartbeat.flag_worker.lambda_handler",
        ):
            _, props = function(synth.template, handler)
            config = props["Properties"]["LoggingConfig"]
            assert {k: v for k, v in config.items() if k != "LogGroup"} == {
                "LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN",
            }  # fmt: skip
            group = synth.template.to_json()["Resources"][config["LogGroup"]["Ref"]]
            assert group["Properties"]["RetentionInDays"] == 30
            assert props["Properties"]["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_every_log_group_the_stack_causes_has_the_configured_retention(private: Synth, regional: Synth) -> None:
    groups = private.template.find_resources("AWS::Logs::LogGroup")
    assert len(groups) == 5  # three functions, the API's access logs, and its execution logs
    assert all(g["Properties"]["RetentionInDays"] == 30 for g in groups.values())
    regional_groups = regional.template.find_resources("AWS::Logs::LogGroup").values()
    assert all(g["Properties"]["RetentionInDays"] == 30 for g in regional_groups)
    # API Gateway creates API-Gateway-Execution-Logs_<api id>/<stage> itself, with no retention, unless
    # it already exists: the stack creates it under exactly that name before the stage can log.
    api_id = next(iter(private.template.find_resources("AWS::ApiGateway::RestApi")))
    name = {"Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": api_id}, "/v1"]]}
    [group_id] = [k for k, g in groups.items() if g["Properties"].get("LogGroupName") == name]
    stage = only(private.template, "AWS::ApiGateway::Stage")
    assert group_id in stage["DependsOn"]
    assert stage["Properties"]["MethodSettings"][0]["LoggingLevel"] == "ERROR"


def test_account_wide_api_gateway_role_only_when_asked_for(private: Synth, regional: Synth) -> None:
    # AWS::ApiGateway::Account is one per account and region: it would replace the account's own role.
    assert private.template.find_resources("AWS::ApiGateway::Account") == {}
    assert not [
        r for r in private.template.find_resources("AWS::IAM::Role").values()
        if "apigateway.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]  # fmt: skip
    # The regional fixture passes -c apiGatewayCloudWatchRole=true.
    [account] = regional.template.find_resources("AWS::ApiGateway::Account").values()
    assert "CloudWatchRoleArn" in account["Properties"]


def by_table(statements: list[dict[str, Any]], name: str) -> set[str]:
    """The dynamodb actions granted on the table whose logical id starts with name."""
    found: set[str] = set()
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(a.startswith("dynamodb:") for a in actions) and statement["Resource"]["Fn::GetAtt"][0].startswith(name):
            found.update(actions)
    return found


def test_handler_may_only_write_this_table(private: Synth) -> None:
    _, handler = function(private.template, "heartbeat.handler.lambda_handler")
    statements = role_statements(private.template, handler["Properties"])
    assert by_table(statements, "RunnersTable") == {"dynamodb:UpdateItem", "dynamodb:PutItem"}
    assert by_table(statements, "AccessKeysTable") == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert actions_on(statements, "dynamodb:") == {"dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem"}
    assert actions_on(statements, "logs:") == {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_sweeper_may_only_do_what_its_code_calls(private: Synth) -> None:
    _, sweeper = function(private.template, "heartbeat.sweeper.lambda_handler")
    statements = role_statements(private.template, sweeper["Properties"])
    # The lease is taken, renewed and given back with UpdateItem: the sweeper deletes nothing.
    assert by_table(statements, "RunnersTable") == {
        "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
    }  # fmt: skip
    assert by_table(statements, "AccessKeysTable") == {"dynamodb:Scan", "dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert actions_on(statements, "kms:") == set()  # the sweeper never opens a secret
    # The work queue: send to it and read its depth (a busy queue: only lanes not handed out); and the dead-letter
    # queue, where Lambda records a failed run on the sweeper's behalf. Nothing else.
    assert actions_on(statements, "sqs:") == {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    queues = set()
    for statement in statements:
        if any(str(a).startswith("sqs:") for a in statement["Action"]):
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            queues |= {r["Fn::GetAtt"][0].rstrip("0123456789ABCDEF") for r in resources}
    assert queues == {"SweepDeadLetters", "SweepWorkersQueue"}


def test_workers_may_only_flag_publish_and_take_their_work(private: Synth) -> None:
    _, worker = function(private.template, "heartbeat.flag_worker.lambda_handler")
    statements = role_statements(private.template, worker["Properties"])
    assert actions_on(statements, "dynamodb:") == {"dynamodb:UpdateItem"}
    assert actions_on(statements, "events:") == {"events:PutEvents"}
    assert actions_on(statements, "sqs:") == {
        "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }  # fmt: skip


# Fan-out: what keeps two sweeps apart and the workers within DynamoDB's and Lambda's limits


def test_one_sweep_at_a_time_and_each_ends_before_the_next_is_due(private: Synth, regional: Synth) -> None:
    for synth, interval_minutes in ((private, 5), (regional, 2)):
        _, sweeper = function(synth.template, "heartbeat.sweeper.lambda_handler")
        assert sweeper["Properties"]["ReservedConcurrentExecutions"] == 1
        assert sweeper["Properties"]["Timeout"] <= interval_minutes * 60
        rule = only(synth.template, "AWS::Events::Rule")["Properties"]
        assert rule["ScheduleExpression"] == f"rate({interval_minutes} minutes)"
        # Its spools of stale runners go to /tmp: room for ten million of them.
        assert sweeper["Properties"]["EphemeralStorage"] == {"Size": 4096}


def test_workers_take_one_message_each_at_most_their_reserved_concurrency(private: Synth, regional: Synth) -> None:
    from infra.workers import MAX_RECEIVES, WORKERS

    # -c sweepWorkers sets both the reservation and the mapping's maximum concurrency (16 in the regional app).
    for synth, workers in ((private, WORKERS), (regional, 16)):
        _, worker = function(synth.template, "heartbeat.flag_worker.lambda_handler")
        assert worker["Properties"]["ReservedConcurrentExecutions"] == workers
        mapping = only(synth.template, "AWS::Lambda::EventSourceMapping")["Properties"]
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": workers}  # never throttled by its own reservation
    worker_id, worker = function(private.template, "heartbeat.flag_worker.lambda_handler")
    mapping = only(private.template, "AWS::Lambda::EventSourceMapping")["Properties"]
    assert mapping["FunctionName"] == {"Ref": worker_id}
    assert "SweepWorkersQueue" in mapping["EventSourceArn"]["Fn::GetAtt"][0]
    assert mapping["BatchSize"] == 1
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": WORKERS}  # never throttled by its own reservation
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]  # an unfinished message comes back alone
    queues = private.template.find_resources("AWS::SQS::Queue")
    [work] = [q["Properties"] for name, q in queues.items() if name.startswith("SweepWorkersQueue")]
    # A message a worker still has never reappears: six times the worker's timeout, as AWS advises.
    assert work["VisibilityTimeout"] >= 6 * worker["Properties"]["Timeout"]
    assert work["SqsManagedSseEnabled"] is True
    assert work["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVES
    [dead_letters] = [name for name in queues if name.startswith("SweepDeadLetters")]
    assert work["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dead_letters, "Arn"]}
    # The sweeper knows where to send its work.
    _, sweeper = function(private.template, "heartbeat.sweeper.lambda_handler")
    queue_ref = sweeper["Properties"]["Environment"]["Variables"]["WORK_QUEUE_URL"]
    assert queue_ref["Ref"].startswith("SweepWorkersQueue")


def test_only_the_sweeper_and_its_workers_may_publish_events_and_only_to_its_bus(
    private: Synth, regional: Synth
) -> None:
    _, handler = function(private.template, "heartbeat.handler.lambda_handler")
    assert actions_on(role_statements(private.template, handler["Properties"]), "events:") == set()
    for (synth, bus), name in itertools.product(
        ((private, "default"), (regional, "ops-bus")), ("sweeper", "flag_worker")
    ):
        _, sweeper = function(synth.template, f"heartbeat.{name}.lambda_handler")
        [statement] = [
            st
            for st in role_statements(synth.template, sweeper["Properties"])
            if "events:PutEvents" in str(st["Action"])
        ]
        assert statement["Action"] == "events:PutEvents"
        assert statement["Resource"] == {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":events:", {"Ref": "AWS::Region"}, ":",
                              {"Ref": "AWS::AccountId"}, f":event-bus/{bus}"]]
        }  # fmt: skip
        assert sweeper["Properties"]["Environment"]["Variables"]["EVENT_BUS_NAME"] == bus


def test_worker_group_thresholds_reach_every_function_in_seconds(regional: Synth) -> None:
    for handler in (
        "heartbeat.handler.lambda_handler",
        "heartbeat.sweeper.lambda_handler",
        "heartbeat.flag_worker.lambda_handler",
    ):
        _, props = function(regional.template, handler)
        env = props["Properties"]["Environment"]["Variables"]
        assert json.loads(env["STALE_AFTER_BY_WORKER_GROUP"]) == {"fast-etl": 600}


def test_no_managed_policies_on_the_function_roles(private: Synth) -> None:
    for handler in (
        "heartbeat.handler.lambda_handler",
        "heartbeat.sweeper.lambda_handler",
        "heartbeat.flag_worker.lambda_handler",
    ):
        _, props = function(private.template, handler)
        role = private.template.to_json()["Resources"][props["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert "ManagedPolicyArns" not in role["Properties"]


def test_customer_managed_key_is_granted_to_every_function(regional: Synth) -> None:
    for handler in (
        "heartbeat.handler.lambda_handler",
        "heartbeat.sweeper.lambda_handler",
        "heartbeat.flag_worker.lambda_handler",
    ):
        _, props = function(regional.template, handler)
        assert "kms:Decrypt" in actions_on(role_statements(regional.template, props["Properties"]), "kms:")


# API


def test_private_api_allows_only_the_listed_vpc_endpoints(private: Synth) -> None:
    api = only(private.template, "AWS::ApiGateway::RestApi")["Properties"]
    assert api["EndpointConfiguration"]["Types"] == ["PRIVATE"]
    assert api["EndpointConfiguration"]["VpcEndpointIds"] == ["vpce-0123456789abcdef0", "vpce-0fedcba9876543210"]
    allow, deny = api["Policy"]["Statement"]
    assert (allow["Effect"], deny["Effect"]) == ("Allow", "Deny")
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:SourceVpce": ["vpce-0123456789abcdef0", "vpce-0fedcba9876543210"]}
    }


def test_regional_api_allows_only_the_listed_source_cidrs(regional: Synth) -> None:
    api = only(regional.template, "AWS::ApiGateway::RestApi")["Properties"]
    assert api["EndpointConfiguration"]["Types"] == ["REGIONAL"]
    deny = api["Policy"]["Statement"][1]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "198.51.100.7/32"]}}


def test_api_is_named_after_its_stack_and_its_alarm_reads_that_name(private: Synth, regional: Synth) -> None:
    # Two stacks in one account and region must not feed each other's 5XX alarm or dashboard.
    for synth, name in ((private, "TaskRunnerHeartbeat"), (regional, "HeartbeatEu")):
        assert only(synth.template, "AWS::ApiGateway::RestApi")["Properties"]["Name"] == name
        alarm = only(synth.template, "AWS::CloudWatch::Alarm", {"MetricName": "5XXError"})
        assert {d["Name"]: d["Value"] for d in alarm["Properties"]["Dimensions"]} == {"ApiName": name, "Stage": "v1"}
        body = json.dumps(only(synth.template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
        assert body.count('\\"ApiName\\",\\"' + name + '\\"') == 4  # 4XX, 5XX, p50, p99
        assert '\\"ApiName\\",\\"Api\\"' not in body


def test_every_method_and_path_reaches_the_handler(private: Synth) -> None:
    # ANY on / and on /{proxy+}: the handler answers a wrong path (404) or method (405) itself, as under
    # make serve, instead of API Gateway's MISSING_AUTHENTICATION_TOKEN.
    methods = private.template.find_resources("AWS::ApiGateway::Method")
    [proxy_id] = private.template.find_resources("AWS::ApiGateway::Resource", {"Properties": {"PathPart": "{proxy+}"}})
    api_id = next(iter(private.template.find_resources("AWS::ApiGateway::RestApi")))
    handler_id, _ = function(private.template, "heartbeat.handler.lambda_handler")
    resources = []
    for method in methods.values():
        props = method["Properties"]
        assert props["HttpMethod"] == "ANY"
        assert props["AuthorizationType"] == "NONE"
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert {"Fn::GetAtt": [handler_id, "Arn"]} in props["Integration"]["Uri"]["Fn::Join"][1]
        resources.append(props["ResourceId"])
    assert sorted(map(json.dumps, resources)) == sorted(
        map(json.dumps, [{"Fn::GetAtt": [api_id, "RootResourceId"]}, {"Ref": proxy_id}])
    )
    api = only(private.template, "AWS::ApiGateway::RestApi")["Properties"]
    assert api["BinaryMediaTypes"] == ["*/*"]


def test_stage_throttles_and_writes_json_access_logs(private: Synth, regional: Synth) -> None:
    stage = only(private.template, "AWS::ApiGateway::Stage")["Properties"]
    [settings] = stage["MethodSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (50, 100)
    assert settings["DataTraceEnabled"] is False
    assert stage["AccessLogSetting"]["Format"].startswith("{")
    assert '"requestId":"$context.requestId"' in stage["AccessLogSetting"]["Format"]
    [regional_settings] = only(regional.template, "AWS::ApiGateway::Stage")["Properties"]["MethodSettings"]
    assert (regional_settings["ThrottlingRateLimit"], regional_settings["ThrottlingBurstLimit"]) == (25, 40)


def test_stage_pays_for_no_method_level_metrics(private: Synth) -> None:
    # The stage's own metrics (dimensions ApiName, Stage) are free and are all the alarms and the
    # dashboard read. MetricsEnabled turns on per-method "detailed" metrics, billed as custom metrics
    # for every method and resource a caller hits (7 each), which nothing reads and the cost model omits.
    [settings] = only(private.template, "AWS::ApiGateway::Stage")["Properties"]["MethodSettings"]
    assert settings.get("MetricsEnabled", False) is False
    for alarm in private.template.find_resources("AWS::CloudWatch::Alarm").values():
        dimensions = {d["Name"] for d in alarm["Properties"].get("Dimensions", [])}
        assert not dimensions & {"Method", "Resource"}


def test_gateway_errors_speak_the_awsjson_envelope_each_keeping_its_own_status(private: Synth) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in private.template.find_resources("AWS::ApiGateway::GatewayResponse").values()
    }
    expected = {  # the contract: only these, each with its own status; the defaults keep API Gateway's
        "THROTTLED": ("429", "ThrottlingException"),
        "QUOTA_EXCEEDED": ("429", "ThrottlingException"),
        "ACCESS_DENIED": ("403", "AccessDeniedException"),
        "REQUEST_TOO_LARGE": ("413", "RequestEntityTooLargeException"),
        "INTEGRATION_FAILURE": ("502", "InternalServiceError"),
        "INTEGRATION_TIMEOUT": ("504", "InternalServiceError"),
        "DEFAULT_4XX": (None, "InvalidRequestException"),
        "DEFAULT_5XX": (None, "InternalServiceError"),
    }
    assert set(responses) == set(expected)
    for response_type, (status, code) in expected.items():
        props = responses[response_type]
        assert props.get("StatusCode") == status, response_type
        assert props["ResponseParameters"]["gatewayresponse.header.x-amzn-ErrorType"] == f"'{code}'"
        assert props["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/x-amz-json-1.1'"
        envelope = '{"__type":"' + code + '","message":$context.error.messageString}'
        assert props["ResponseTemplates"] == {"application/json": envelope, "application/x-amz-json-1.1": envelope}


# Schedule


def test_sweeper_runs_on_schedule_and_failures_land_in_an_encrypted_queue(private: Synth, regional: Synth) -> None:
    rule = only(private.template, "AWS::Events::Rule")["Properties"]
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    [target] = rule["Targets"]
    assert "DeadLetterConfig" in target
    queues = private.template.find_resources("AWS::SQS::Queue")
    [queue] = [q["Properties"] for name, q in queues.items() if name.startswith("SweepDeadLetters")]
    assert queue["SqsManagedSseEnabled"] is True
    invoke = only(private.template, "AWS::Lambda::EventInvokeConfig")["Properties"]
    assert invoke["MaximumRetryAttempts"] == 0
    assert "OnFailure" in invoke["DestinationConfig"]
    assert only(regional.template, "AWS::Events::Rule")["Properties"]["ScheduleExpression"] == "rate(2 minutes)"


# Monitoring


def test_alarms_cover_the_failure_modes_and_notify_the_topic(private: Synth) -> None:
    alarms = private.template.find_resources("AWS::CloudWatch::Alarm")
    by_metric = {a["Properties"].get("MetricName", "math"): a["Properties"] for a in alarms.values()}
    assert {"5XXError", "SweepsCompleted", "ScopesHeld", "ApproximateNumberOfMessagesVisible", "Errors",
            "Throttles", "math"} <= set(by_metric)  # fmt: skip
    assert "StaleEventsOwed" in by_metric
    assert len(alarms) == 12  # the six above, and errors + throttles for each function
    assert by_metric["SweepsCompleted"]["TreatMissingData"] == "breaching"
    topic_id = next(iter(private.template.find_resources("AWS::SNS::Topic")))
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]


def test_given_alarm_topic_is_used_instead_of_a_new_one(regional: Synth) -> None:
    assert regional.template.find_resources("AWS::SNS::Topic") == {}
    for alarm in regional.template.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:ops-alarms"]


def cloudwatch_statement(statements: list[dict[str, Any]]) -> dict[str, Any]:
    [statement] = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    return statement


def alarm_arn_pattern(stack_name: str) -> dict[str, Any]:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":cloudwatch:", {"Ref": "AWS::Region"}, ":",
                              {"Ref": "AWS::AccountId"}, f":alarm:{stack_name}-*"]]}  # fmt: skip


def test_alarm_topic_key_lets_cloudwatch_encrypt_for_this_stacks_alarms(private: Synth) -> None:
    # CloudWatch cannot use the AWS-managed alias/aws/sns key: alarms to a topic under it never arrive.
    topic = only(private.template, "AWS::SNS::Topic")["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = private.template.to_json()["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    statement = cloudwatch_statement(key["Properties"]["KeyPolicy"]["Statement"])
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": alarm_arn_pattern("TaskRunnerHeartbeat")},
    }


def test_topic_policy_lets_cloudwatch_publish_beside_the_tls_only_deny(private: Synth) -> None:
    # A topic policy replaces SNS's default one: without this Allow, nothing lets CloudWatch publish.
    topic_id = next(iter(private.template.find_resources("AWS::SNS::Topic")))
    policy = only(private.template, "AWS::SNS::TopicPolicy")["Properties"]
    assert policy["Topics"] == [{"Ref": topic_id}]
    statements = policy["PolicyDocument"]["Statement"]
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allow = cloudwatch_statement(statements)
    assert (allow["Effect"], allow["Action"], allow["Resource"]) == ("Allow", "sns:Publish", {"Ref": topic_id})
    assert allow["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": alarm_arn_pattern("TaskRunnerHeartbeat")},
    }


def test_every_alarm_is_named_inside_the_pattern_the_policies_allow(private: Synth, alb: Synth) -> None:
    for synth, stack_name, count in ((private, "TaskRunnerHeartbeat", 12), (alb, "HeartbeatAlb", 13)):
        alarms = synth.template.find_resources("AWS::CloudWatch::Alarm").values()
        names = [a["Properties"]["AlarmName"] for a in alarms]
        assert len(names) == count  # the ALB example retires on signals: one more, on its dead letters
        assert all(name.startswith(f"{stack_name}-") for name in names), names


def test_dashboard_shows_heartbeats_terminates_flags_errors_and_latency(private: Synth) -> None:
    dashboard = only(private.template, "AWS::CloudWatch::Dashboard")
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in ("Invocations", "TerminateAnswers", "RunnersFlagged", "4XXError", "5XXError", "Latency", "p99"):
        assert metric in body
    # What makes a sweep's judgement visible: held and partly silent scopes, and thresholds too short for the beat.
    for metric in ("ScopesHeld", "ScopesPartial", "ShortThresholds", "RunnersInGrace", "RunnersRetired"):
        assert metric in body


def test_outputs_give_endpoint_table_and_dashboard(private: Synth) -> None:
    outputs = private.template.find_outputs("*")
    assert {"EndpointUrl", "TableName", "DashboardUrl"} <= set(outputs)


def test_private_api_gives_each_vpc_endpoints_alias_url(private: Synth, regional: Synth) -> None:
    # https://<api>.execute-api.<region>.amazonaws.com resolves to the VPC endpoint only where the endpoint has
    # private DNS on; without it, callers must use the Route 53 alias API Gateway makes for each associated
    # endpoint: https://<api>-<vpce>.execute-api.<region>.amazonaws.com/<stage>/.
    api_id = next(iter(private.template.find_resources("AWS::ApiGateway::RestApi")))
    value = private.template.find_outputs("EndpointAliasUrls")["EndpointAliasUrls"]["Value"]
    parts = value["Fn::Join"][1]
    rendered = "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)
    for vpce in ("vpce-0123456789abcdef0", "vpce-0fedcba9876543210"):
        assert f"https://{json.dumps({'Ref': api_id})}-{vpce}.execute-api." in rendered
    assert rendered.count("/v1/") == 2
    assert regional.template.find_outputs("EndpointAliasUrls") == {}


def alarm_metrics(template: Template) -> list[dict[str, Any]]:
    """Every metric any alarm reads: its own, or each one inside its metric math."""
    found = []
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if "MetricName" in props:
            found.append({k: props.get(k) for k in ("Namespace", "MetricName", "Dimensions")})
        for query in props.get("Metrics", []):
            if "MetricStat" in query:
                found.append(query["MetricStat"]["Metric"])
    return found


def emitted(variables: dict[str, Any], metric: str) -> dict[str, Any]:
    """The EMF line the functions' own observability module writes for one metric, under these variables."""
    code = (
        "from heartbeat.observability import metrics\n"
        f"metrics.add_metric(name={metric!r}, unit='Count', value=1)\n"
        "metrics.flush_metrics()\n"
    )
    env = {**{k: v for k, v in variables.items() if isinstance(v, str)}, "PATH": os.environ["PATH"],
           "PYTHONPATH": str(ROOT / "lambda_src")}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    line: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return line


def test_two_stacks_in_one_account_and_region_each_alarm_on_their_own_metrics_only(
    private: Synth, regional: Synth
) -> None:
    # A sweeper of one stack must never keep the other's SweeperNotRunning alarm green.
    for synth in (private, regional):
        own = [{"Name": "service", "Value": synth.stack_name}]
        service_metrics = [m for m in alarm_metrics(synth.template) if m["Namespace"] == NAMESPACE]
        assert {m["MetricName"] for m in service_metrics} == {"SweepsCompleted", "ScopesHeld", "StaleEventsOwed"}
        assert all(m["Dimensions"] == own for m in service_metrics), service_metrics
        body = json.dumps(only(synth.template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
        # terminates; flagged, in grace, retired, examined; scopes held, partial, short thresholds
        assert body.count(f'\\"service\\",\\"{synth.stack_name}\\"') == 8
        assert body.count('\\"service\\"') == 8
        for handler in ("heartbeat.handler.lambda_handler", "heartbeat.sweeper.lambda_handler"):
            _, props = function(synth.template, handler)
            variables = props["Properties"]["Environment"]["Variables"]
            # And the functions write under that name: what the alarm reads is what Powertools emits.
            [directive] = emitted(variables, "SweepsCompleted")["_aws"]["CloudWatchMetrics"]
            assert directive["Namespace"] == NAMESPACE
            assert directive["Dimensions"] == [["service"]]
            assert emitted(variables, "SweepsCompleted")["service"] == synth.stack_name
    assert private.stack_name != regional.stack_name


def test_trace_sampling_is_a_rule_on_the_rest_stage_and_the_handler_follows_it(private: Synth, regional: Synth) -> None:
    # API Gateway takes the sampling decision under the matching rule; the handler's active tracing follows it.
    assert private.template.find_resources("AWS::XRay::SamplingRule") == {}  # X-Ray's default rule
    rule = only(regional.template, "AWS::XRay::SamplingRule")["Properties"]["SamplingRule"]
    assert (rule["ServiceName"], rule["ServiceType"]) == ("HeartbeatEu/v1", "AWS::ApiGateway::Stage")
    assert (rule["FixedRate"], rule["ReservoirSize"], rule["Priority"]) == (0.001, 0, 100)
    assert all(rule[key] == "*" for key in ("Host", "HTTPMethod", "URLPath", "ResourceARN"))
    assert len(rule["RuleName"]) <= 32
    stage = only(regional.template, "AWS::ApiGateway::Stage")["Properties"]
    assert stage["StageName"] == "v1"
    assert stage["TracingEnabled"] is True
    _, handler = function(regional.template, "heartbeat.handler.lambda_handler")
    assert handler["Properties"]["TracingConfig"] == {"Mode": "Active"}


def test_every_function_knows_the_sweep_interval_it_runs_on(private: Synth, regional: Synth) -> None:
    for synth, seconds in ((private, str(DEFAULT_SWEEP_INTERVAL_SECONDS)), (regional, "120")):
        _, sweeper = function(synth.template, "heartbeat.sweeper.lambda_handler")
        assert sweeper["Properties"]["Environment"]["Variables"]["SWEEP_INTERVAL_SECONDS"] == seconds


# Retire on AWS's signals (opt-in)


SIGNAL_PATTERNS = [
    {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
     "detail": {"state": ["terminated"]}},
    {"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-terminate Lifecycle Action"]},
    {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"], "detail": {"lastStatus": ["STOPPED"]}},
]  # fmt: skip


def test_retire_on_signals_is_off_unless_asked_for(private: Synth, regional: Synth) -> None:
    for synth in (private, regional):
        assert (
            synth.template.find_resources(
                "AWS::Lambda::Function", {"Properties": {"Handler": "heartbeat.signals.lambda_handler"}}
            )
            == {}
        )


def test_each_aws_signal_rule_matches_exactly_its_departures_and_invokes_the_retire_function(alb: Synth) -> None:
    retire_id, _ = function(alb.template, "heartbeat.signals.lambda_handler")
    rules = [
        r["Properties"]
        for r in alb.template.find_resources("AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    ]

    def canonical(pattern: dict[str, Any]) -> str:
        return json.dumps(pattern, sort_keys=True)

    assert sorted(canonical(r["EventPattern"]) for r in rules) == sorted(canonical(p) for p in SIGNAL_PATTERNS)
    for rule in rules:
        assert "EventBusName" not in rule  # the default bus: where AWS services send their events
        [target] = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [retire_id, "Arn"]}
        assert "DeadLetterConfig" in target
    # EventBridge may invoke the function for these three rules, and nothing else may.
    permissions = [
        p["Properties"] for p in alb.template.find_resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [retire_id, "Arn"]}
    ]  # fmt: skip
    assert len(permissions) == 3
    rule_ids = {
        i for i, r in alb.template.find_resources("AWS::Events::Rule").items() if "EventPattern" in r["Properties"]
    }
    for permission in permissions:
        assert (permission["Action"], permission["Principal"]) == ("lambda:InvokeFunction", "events.amazonaws.com")
        assert permission["SourceArn"]["Fn::GetAtt"][0] in rule_ids


def test_the_retire_function_may_only_update_the_table(alb: Synth) -> None:
    _, retire = function(alb.template, "heartbeat.signals.lambda_handler")
    statements = role_statements(alb.template, retire["Properties"])
    assert actions_on(statements, "dynamodb:") == {"dynamodb:UpdateItem"}
    [table_statement] = [s for s in statements if "dynamodb:UpdateItem" in str(s["Action"])]
    assert "RunnersTable" in table_statement["Resource"]["Fn::GetAtt"][0]
    assert actions_on(statements, "events:") == set()


def test_the_worker_group_widget_searches_exactly_what_the_sweeper_emits(
    private: Synth, capsys: pytest.CaptureFixture[str]
) -> None:
    from heartbeat import sweeper

    sweeper._emit_worker_group_gauges({"etl": {"active": 3, "stale": 1}})
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emitted = {
        (d["Namespace"], tuple(sorted(d["Dimensions"][0])), m["Name"])
        for r in records
        for d in r["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert len(records) == 2
    [(namespace, dimensions, metric)] = emitted
    body = json.dumps(only(private.template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    [search] = re.findall(r"SEARCH\(\W*\{([^}]*)\}\s+MetricName=\W*(\w+)", body)
    schema, searched_metric = search
    assert schema.split(",")[0] == namespace
    assert tuple(sorted(schema.split(",")[1:])) == dimensions  # exactly the EMF record's dimension names
    assert searched_metric == metric
