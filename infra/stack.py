"""The one stack: table, two functions, API, schedule and monitoring."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.access_keys import AccessKeyStore
from infra.alb import HeartbeatLoadBalancer
from infra.api import STAGE, HeartbeatApi
from infra.functions import HeartbeatFunction, powertools_layer
from infra.monitoring import Monitoring
from infra.schedule import SweepSchedule
from infra.settings import DeploySettings
from infra.signals import RetireOnSignals
from infra.storage import RunnerTable
from infra.tracing import TraceSampling
from infra.workers import WORKER_TIMEOUT, SweepWorkers

MAX_SWEEP_MINUTES = 15  # Lambda's longest timeout
# What each function's code calls on the table (lambda_src/heartbeat/store/), and nothing more.
HANDLER_TABLE_ACTIONS = ["dynamodb:UpdateItem", "dynamodb:PutItem"]
# The sweeper's lease (store/lease.py) is taken, renewed and given back with UpdateItem; its state is a PutItem.
SWEEPER_TABLE_ACTIONS = ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
WORKER_TABLE_ACTIONS = ["dynamodb:UpdateItem"]  # a flag, and the clear of its event's debt
# The sweeper's spools (heartbeat/spool.py): 10M stale runners take about 1.5 GB, twice over.
SWEEPER_EPHEMERAL_STORAGE_MIB = 4096


class HeartbeatStack(Stack):
    """Everything the endpoint needs, in the user's own account."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        storage = RunnerTable(
            self, "Runners", customer_managed_key=settings.table_encryption == "customer-managed",
            retain=settings.retain_data, provisioned=settings.is_provisioned,
        )  # fmt: skip
        table = storage.table
        layer = powertools_layer(self, settings.powertools_layer_arn)
        environment = {
            "TABLE_NAME": table.table_name,
            "STALE_AFTER_SECONDS": str(settings.stale_after_minutes * 60),
            "RETENTION_SECONDS": str(settings.retention_days * 24 * 3600),
            "MASS_STALE_FRACTION": str(settings.mass_stale_fraction),
            # Lambda's active tracing records every invocation regardless. The X-Ray SDK's
            # subsegments (each DynamoDB call) cost about 200 ms of cold start: opt in with sdkTracing.
            "POWERTOOLS_TRACE_DISABLED": "false" if settings.sdk_tracing else "true",
            "EVENT_BUS_NAME": settings.event_bus_name,
            # The sweeper judges a gap in its own watch by its schedule (heartbeat.plan).
            "SWEEP_INTERVAL_SECONDS": str(settings.sweep_interval_minutes * 60),
        }
        keys = self._access_keys(settings, storage, environment)
        if settings.stale_after_minutes_by_worker_group:
            environment["STALE_AFTER_BY_WORKER_GROUP"] = json.dumps(
                {group: minutes * 60 for group, minutes in settings.stale_after_minutes_by_worker_group}
            )
        # 256 MB: a heartbeat is one small DynamoDB write, and on arm64 this size keeps the cold
        # start (Powertools + boto3 import) short. 10 s bounds the store client's own timeouts
        # and retries (3 attempts of at most 1 s connect + 1 s read, with back-off).
        handler = HeartbeatFunction(
            self, "Handler", handler="heartbeat.handler.lambda_handler",
            description="ReportTaskRunnerHeartbeat API handler", memory_size=256, timeout=Duration.seconds(10),
            environment=environment, layer=layer, log_retention=settings.log_retention, service=self.stack_name,
            # Behind a load balancer nothing upstream takes X-Ray's sampling decision: traceSampling=0 traces none.
            tracing=lambda_.Tracing.PASS_THROUGH if settings.is_alb and settings.trace_sampling == 0
            else lambda_.Tracing.ACTIVE,
        )  # fmt: skip
        # 1,769 MB (one full vCPU): a sweep scans the whole fleet in parallel segments and its CPU (parsing
        # the pages) is what bounds it (docs/performance.md, "Sweeper scale"). Its timeout never passes its
        # schedule's interval, and one at a time (reserved concurrency 1, also kept free of the heartbeat
        # handler's scaling): a sweep ends, with its state saved at its deadline, before the next begins.
        # Its lease in the table keeps an operator's sweep (outside Lambda) apart from it.
        schedule = SweepSchedule(self, "Sweep", interval_minutes=settings.sweep_interval_minutes)
        worker = HeartbeatFunction(
            self, "Workers", handler="heartbeat.flag_worker.lambda_handler",
            description="Writes a sweep's flags and events when they are many", memory_size=1769,
            timeout=WORKER_TIMEOUT, environment=environment, layer=layer, log_retention=settings.log_retention,
            service=self.stack_name, reserved_concurrency=settings.sweep_workers,
        )  # fmt: skip
        workers = SweepWorkers(
            self, "SweepWorkers", worker=worker.function, dead_letters=schedule.dead_letters,
            workers=settings.sweep_workers,
        )  # fmt: skip
        sweeper = HeartbeatFunction(
            self, "Sweeper", handler="heartbeat.sweeper.lambda_handler",
            description="Flags task runners that went silent", memory_size=1769,
            timeout=Duration.minutes(min(settings.sweep_interval_minutes, MAX_SWEEP_MINUTES)),
            environment={**environment, "WORK_QUEUE_URL": workers.queue.queue_url}, layer=layer,
            log_retention=settings.log_retention, service=self.stack_name, reserved_concurrency=1,
            ephemeral_storage_mib=SWEEPER_EPHEMERAL_STORAGE_MIB,
        )  # fmt: skip
        workers.queue.grant_send_messages(sweeper.role)
        sweeper.role.add_to_policy(
            iam.PolicyStatement(actions=["sqs:GetQueueAttributes"], resources=[workers.queue.queue_arn])
        )
        # The sweeper publishes one stale event per flagged runner, to this bus only.
        self.event_bus_arn = self.format_arn(
            service="events", resource="event-bus", resource_name=settings.event_bus_name
        )
        for function in (sweeper, worker):
            function.role.add_to_policy(
                iam.PolicyStatement(actions=["events:PutEvents"], resources=[self.event_bus_arn])
            )
        for function, actions in (
            (handler, HANDLER_TABLE_ACTIONS), (sweeper, SWEEPER_TABLE_ACTIONS), (worker, WORKER_TABLE_ACTIONS),
        ):  # fmt: skip
            function.role.add_to_policy(iam.PolicyStatement(actions=actions, resources=[table.table_arn]))
        signals = None
        if settings.retire_on_signals:
            signals = RetireOnSignals(
                self, "RetireOnSignals", table_arn=table.table_arn, environment=environment, layer=layer,
                log_retention=settings.log_retention, service=self.stack_name,
            )  # fmt: skip
        functions = [handler, sweeper, worker] + ([signals.function] if signals else [])
        if storage.key is not None:
            for function in functions:
                storage.key.grant_encrypt_decrypt(function.role)
        if keys is not None:
            keys.grant_verify(handler.role)
            keys.grant_census(sweeper.role)

        front_door: HeartbeatApi | HeartbeatLoadBalancer
        if settings.is_alb:
            front_door = HeartbeatLoadBalancer(self, "LoadBalancer", handler=handler.function, settings=settings)
        else:
            front_door = HeartbeatApi(self, "Endpoint", handler=handler.function, settings=settings)
            if settings.trace_sampling is not None:
                TraceSampling(
                    self, "TraceSampling", stage_service_name=f"{front_door.api.rest_api_name}/{STAGE}",
                    share=settings.trace_sampling,
                )  # fmt: skip
        schedule.run(sweeper.function)
        monitoring = Monitoring(
            self, "Monitoring", front_door=front_door.signals(), handler=handler.function, sweeper=sweeper.function,
            workers=worker.function,
            table=table, dead_letters=schedule.dead_letters, sweep_interval_minutes=settings.sweep_interval_minutes,
            alarm_topic_arn=settings.alarm_topic_arn, service=self.stack_name,
            retire_dead_letters=signals.dead_letters if signals else None,
        )  # fmt: skip

        self._outputs(front_door, settings, table_name=table.table_name, keys=keys, monitoring=monitoring)

        self._acknowledge_findings(functions, schedule, signals, customer_managed_key=storage.key is not None)
        if isinstance(front_door, HeartbeatApi):
            self._acknowledge_api_findings(front_door, settings.authenticates)
        else:
            self._acknowledge_load_balancer_findings(front_door)

    def _access_keys(
        self, settings: DeploySettings, storage: RunnerTable, environment: dict[str, str]
    ) -> AccessKeyStore | None:
        """Authentication (-c auth=sigv4, the default): keys the stack issues, their secrets sealed under KMS.

        Both functions are told the mode (and with sigv4, where the keys are) through environment.
        """
        environment["AUTH_MODE"] = settings.auth
        if not settings.authenticates:
            return None
        keys = AccessKeyStore(self, "AccessKeys", retain=settings.retain_data, table_key=storage.key)
        environment["KEYS_TABLE_NAME"] = keys.table.table_name
        environment["KEYS_KMS_KEY_ID"] = keys.key.key_arn
        return keys

    def _outputs(
        self, front_door: HeartbeatApi | HeartbeatLoadBalancer, settings: DeploySettings, *, table_name: str,
        keys: AccessKeyStore | None, monitoring: Monitoring,
    ) -> None:  # fmt: skip
        """What an operator needs after a deploy, and heartbeat-ops --stack reads: where clients call, where to look."""
        if front_door.url is not None:
            CfnOutput(
                self, "EndpointUrl", value=front_door.url, description="Pass this as --endpoint-url to the clients"
            )
        if isinstance(front_door, HeartbeatLoadBalancer) and (front_door.domain_name or front_door.scheme == "https"):
            name = front_door.domain_name or "a name your certificate covers"
            why = ": clients verify the certificate against the name they call" if front_door.scheme == "https" else ""
            CfnOutput(
                self, "LoadBalancerDnsName", value=front_door.load_balancer.load_balancer_dns_name,
                description=f"Point {name} at this name (a CNAME, or an alias record in a private hosted zone your "
                f"runners resolve){why}",
            )  # fmt: skip
        if isinstance(front_door, HeartbeatApi) and settings.is_private:
            CfnOutput(
                self, "EndpointAliasUrls", value=front_door.alias_urls(settings.vpc_endpoint_ids),
                description="Per VPC endpoint: the URL to use where the endpoint has private DNS off",
            )  # fmt: skip
        CfnOutput(self, "TableName", value=table_name, description="The runners table")
        CfnOutput(self, "AuthMode", value=settings.auth, description="How heartbeats are authenticated")
        if keys is not None:
            CfnOutput(self, "KeysTableName", value=keys.table.table_name, description="The access keys table")
            CfnOutput(
                self, "KeysKmsKeyArn", value=keys.key.key_arn,
                description="Seals the access keys' secrets: heartbeat-ops keys create needs kms:Encrypt on it",
            )  # fmt: skip
        CfnOutput(self, "DashboardUrl", value=monitoring.dashboard_url, description="The CloudWatch dashboard")
        CfnOutput(self, "AlarmTopicArn", value=monitoring.topic.topic_arn, description="Alarms are sent here")

    @staticmethod
    def _acknowledge_findings(
        functions: list[HeartbeatFunction],
        schedule: SweepSchedule,
        signals: RetireOnSignals | None,
        *,
        customer_managed_key: bool,
    ) -> None:
        """cdk-nag findings accepted on purpose, each on the one construct it concerns, with its reason."""
        if customer_managed_key:
            for function in functions:
                for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*"):
                    acknowledge(
                        function.role, f"AwsSolutions-IAM5[Action::{action}]",
                        "CDK's encrypt/decrypt grant DynamoDB documents for tables under a customer-managed key, "
                        "scoped to that one key's ARN.",
                    )  # fmt: skip
        for function in functions:
            acknowledge(
                function.function, "AwsSolutions-L1",
                "Python 3.13 is pinned on purpose: it is the newest runtime the AWS-managed Powertools layer "
                "and this project's tests (3.11-3.13) cover; moving runtime is a tested change, not a drift.",
            )  # fmt: skip
            acknowledge(
                function.role, "AwsSolutions-IAM5[Resource::*]",
                "Only X-Ray's xray:PutTraceSegments and xray:PutTelemetryRecords, added by active tracing: "
                "X-Ray supports no resource-level permissions. Table and log permissions name their ARNs.",
            )  # fmt: skip
        acknowledge(
            schedule.dead_letters, "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the sweeper's schedule and async invocations.",
        )  # fmt: skip
        if signals is not None:
            acknowledge(
                signals.dead_letters, "AwsSolutions-SQS3",
                "This queue is itself the dead-letter queue of the retire rules' targets and async invocations.",
            )  # fmt: skip

    @staticmethod
    def _acknowledge_api_findings(api: HeartbeatApi, authenticates: bool) -> None:
        acknowledge(
            api.api, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "Only with -c apiGatewayCloudWatchRole=true: the AWS-managed policy made for exactly this role, "
            "which API Gateway needs to write the stage's access and execution logs.",
        )  # fmt: skip
        acknowledge(
            api.api, "AwsSolutions-APIG2",
            "The handler validates every request against the Data Pipeline service model and answers in the "
            "awsJson error envelope clients parse; API Gateway's validator would answer in a format they cannot.",
        )  # fmt: skip
        verified = (
            "The handler verifies each request's SigV4 signature against keys the stack issues "
            "(docs/authentication.md), and the resource policy limits who can reach it"
            if authenticates
            else "Authentication is off (-c auth=none, network-only): access is enforced at the network edge by the "
            "resource policy"
        )
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(
                api.api, rule,
                "Drop-in clients sign requests for the Data Pipeline service, which API Gateway's IAM or Cognito "
                f"authorization cannot verify (it accepts only the execute-api scope). {verified} "
                "(private: listed VPC endpoints only; regional: listed source CIDRs only).",
            )  # fmt: skip
        acknowledge(
            api.api, "AwsSolutions-APIG3",
            "Reachable only from the VPC endpoints or CIDRs in the resource policy, and throttled per stage; "
            "attach a WAF web ACL to the stage if your network policy asks for one.",
        )  # fmt: skip

    @staticmethod
    def _acknowledge_load_balancer_findings(alb: HeartbeatLoadBalancer) -> None:
        if alb.access_log_bucket is None:
            acknowledge(
                alb.load_balancer, "AwsSolutions-ELB2",
                "Access logs are opt-in (-c albAccessLogBucket=...): their bucket's policy must name the "
                "deployment region's Elastic Load Balancing principal (an account id in older regions, a service "
                "principal in newer ones), which this region-agnostic stack cannot know at synth. Every request is "
                "counted in the load balancer's metrics, and the handler logs each failed one.",
            )  # fmt: skip


def acknowledge(scope: Construct, rule: str, reason: str) -> None:
    """Accept one cdk-nag finding on one construct (and what it contains)."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))
