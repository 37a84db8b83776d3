"""Alarms on what matters, to an SNS topic, and one dashboard.

Written with plain CloudWatch constructs rather than cdk-monitoring-constructs: half of
the signals are this service's own EMF metrics (heartbeats, terminate answers, runners
flagged, the guard), which that library would wrap in as much code as it saves.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# The functions' EMF metrics (lambda_src/heartbeat/observability.py) go to this namespace, with a `service`
# dimension that is the stack's name (Powertools' POWERTOOLS_SERVICE_NAME, set by infra/functions.py):
# CloudFormation keeps stack names unique in an account and region, so two stacks never read each other's.
NAMESPACE = "TaskRunnerHeartbeat"
# The sweeper's per-worker-group gauges (heartbeat.observability's MetricName.RUNNERS and its dimensions).
GAUGE_METRIC = "Runners"
GAUGE_DIMENSIONS = ("service", "workerGroup", "status")


def service_metric(service: str, name: str, period: Duration, statistic: str = "Sum") -> cw.Metric:
    """One of this stack's functions' EMF metrics."""
    return cw.Metric(
        namespace=NAMESPACE, metric_name=name, dimensions_map={"service": service}, period=period, statistic=statistic
    )


def worker_group_gauges(service: str, period: Duration) -> cw.MathExpression:
    """The sweeper's Runners gauges, one line per worker group and status, found by a search: worker groups
    are not known at synth time. Its namespace, metric and dimensions are the sweeper's own
    (heartbeat.observability; tests/infra checks the two against an EMF record the sweeper writes)."""
    schema = ",".join([NAMESPACE, *GAUGE_DIMENSIONS])
    return cw.MathExpression(
        expression=f'SEARCH(\'{{{schema}}} MetricName="{GAUGE_METRIC}" service="{service}"\', '
        f"'Maximum', {int(period.to_seconds())})",
        using_metrics={},
        label="",
        period=period,
    )


@dataclass(frozen=True)
class FrontDoorSignals:
    """What the alarms and the dashboard read from the front door (REST API or load balancer)."""

    label: str  # "API" or "Load balancer", for titles and descriptions
    alarm_id: str  # the 5XX-rate alarm's construct id and name suffix
    error_rate_5xx: cw.IMetric  # share of requests answered with a 5XX, per 5 minutes
    errors: tuple[cw.IMetric, ...]  # 4XX and 5XX counts per minute
    latency: tuple[cw.IMetric, ...]  # p50 and p99 per minute
    latency_unit: str  # "ms" or "s"


class AlarmTopic(Construct):
    """An SNS topic CloudWatch alarms can actually deliver to.

    Encrypted with a customer-managed key: the AWS-managed alias/aws/sns key's policy cannot let
    CloudWatch use it, so alarms under it are never delivered. The key lets cloudwatch.amazonaws.com
    encrypt for this topic, and the topic policy (which replaces SNS's default one once enforce_ssl
    writes its TLS-only Deny) lets it publish; both only for this account's alarms named after the stack.
    """

    def __init__(self, scope: Construct, construct_id: str, *, alarm_name_prefix: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        conditions = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="cloudwatch", resource="alarm", resource_name=f"{alarm_name_prefix}*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            },
        }  # fmt: skip
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the task runner heartbeat alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsMayEncryptForTheTopic",
                principals=[cloudwatch],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=conditions,
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Task runner heartbeat alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsMayPublish",
                principals=[cloudwatch],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=conditions,
            )
        )


class Monitoring(Construct):
    """The alarms and the dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        front_door: FrontDoorSignals,
        handler: lambda_.Function,
        sweeper: lambda_.Function,
        table: dynamodb.ITable,
        dead_letters: sqs.IQueue,
        sweep_interval_minutes: int,
        alarm_topic_arn: str | None,
        service: str,
        retire_dead_letters: sqs.IQueue | None = None,  # infra/signals.py's, when it is deployed
    ) -> None:
        super().__init__(scope, construct_id)

        def metric(name: str, period: Duration, statistic: str = "Sum") -> cw.Metric:
            return service_metric(service, name, period, statistic)

        # Alarm names start with the stack's name: unique per stack, and what the topic's and the
        # key's policies match CloudWatch's aws:SourceArn against.
        prefix = f"{Stack.of(self).stack_name}-"
        if alarm_topic_arn:
            self.topic: sns.ITopic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn)
        else:
            self.topic = AlarmTopic(self, "Alarms", alarm_name_prefix=prefix).topic
        five = Duration.minutes(5)

        sweep_window = Duration.minutes(max(3 * sweep_interval_minutes, 15))

        def at_least_one(name: str, description: str, metric: cw.IMetric, periods: int = 1) -> cw.Alarm:
            """Alarm when the metric reaches 1 in each of `periods` periods; no data is no trouble."""
            return cw.Alarm(
                self,
                name,
                alarm_name=prefix + name,
                alarm_description=description,
                metric=metric,
                threshold=1,
                evaluation_periods=periods,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )

        self.alarms = {
            front_door.alarm_id: cw.Alarm(
                self,
                front_door.alarm_id,
                alarm_name=prefix + front_door.alarm_id,
                alarm_description=f"More than 5% of heartbeats failed with a 5XX ({front_door.label}): "
                "runners may look dead",
                metric=front_door.error_rate_5xx,
                threshold=0.05,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            "SweeperNotRunning": cw.Alarm(
                self,
                "SweeperNotRunning",
                alarm_name=prefix + "SweeperNotRunning",
                alarm_description="The sweeper has not completed a run: silent runners are not being flagged",
                metric=metric("SweepsCompleted", sweep_window),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.BREACHING,
            ),
            "SweepHeld": at_least_one(
                "SweepHeld",
                "The sweeper held the fleet or a worker group: nobody there was heard, which may be our own outage; "
                "no runner of it is flagged (see the sweeper's log, and heartbeat-ops runners sweep --dry-run)",
                metric("ScopesHeld", five),
            ),
            "SweeperDeadLetters": at_least_one(
                "SweeperDeadLetters",
                "A sweeper run failed or could not be invoked (see the dead-letter queue)",
                dead_letters.metric_approximate_number_of_messages_visible(period=five, statistic="Maximum"),
            ),
            "StaleEventsOwed": at_least_one(
                "StaleEventsOwed",
                "Stale events could not be published for three sweeps running (EventBridge)",
                metric("StaleEventsOwed", five, "Minimum"),
                periods=3,
            ),
            "TableThrottles": at_least_one(
                "TableThrottles",
                "DynamoDB throttled requests to the runners table",
                cw.MathExpression(
                    expression="reads + writes",
                    using_metrics={
                        "reads": table.metric("ReadThrottleEvents", period=five, statistic="Sum"),
                        "writes": table.metric("WriteThrottleEvents", period=five, statistic="Sum"),
                    },
                    period=five,
                ),
            ),
        }
        for name, function in (("Handler", handler), ("Sweeper", sweeper)):
            self.alarms[f"{name}Errors"] = at_least_one(
                f"{name}Errors", f"The {name.lower()} function failed", function.metric_errors(period=five)
            )
            self.alarms[f"{name}Throttles"] = at_least_one(
                f"{name}Throttles", f"The {name.lower()} function was throttled", function.metric_throttles(period=five)
            )
        if retire_dead_letters is not None:
            self.alarms["RetireDeadLetters"] = at_least_one(
                "RetireDeadLetters",
                "A retire signal could not be handled (see its dead-letter queue): that runner will be flagged stale",
                retire_dead_letters.metric_approximate_number_of_messages_visible(period=five, statistic="Maximum"),
            )
        action = cw_actions.SnsAction(self.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

        minute = Duration.minutes(1)
        # Left for CloudFormation to name: dashboards are global to the account, so a name taken from the
        # stack would collide between two regions' stacks of the same name.
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Heartbeats and terminate answers per minute",
                # Heartbeats are counted by Lambda for free (every handler invocation is one request); the
                # handler no longer writes a metric line per heartbeat, only for the rare terminate answer.
                left=[
                    handler.metric_invocations(period=minute, label="Heartbeats (handler invocations)"),
                    metric("TerminateAnswers", minute),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Sweeper: runners flagged stale, in grace, retired",
                left=[
                    metric("RunnersFlagged", five),
                    metric("RunnersInGrace", five, "Maximum"),
                    metric("RunnersRetired", five),
                ],
                right=[metric("RunnersExamined", five, "Maximum")],
                width=12,
            ),
            cw.GraphWidget(
                title="Sweeper: scopes held or partly silent; thresholds under twice their beat period",
                left=[
                    metric("ScopesHeld", five, "Maximum"),
                    metric("ScopesPartial", five, "Maximum"),
                    metric("ShortThresholds", five, "Maximum"),
                ],
                width=12,
            ),
            cw.GraphWidget(title=f"{front_door.label} errors (4XX, 5XX)", left=list(front_door.errors), width=12),
            cw.GraphWidget(
                title=f"{front_door.label} latency p50 / p99 ({front_door.latency_unit})",
                left=list(front_door.latency),
                width=12,
            ),
            cw.GraphWidget(
                title="Live runners by worker group and status (the sweeper's gauges; largest 20 groups, rest summed)",
                left=[worker_group_gauges(service, five)],
                width=24,
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24),
        )

    @property
    def dashboard_url(self) -> str:
        return (
            f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards:name={self.dashboard.dashboard_name}"
        )
