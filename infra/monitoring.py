"""Alarms on what matters, to an SNS topic, and one dashboard.

Written with plain CloudWatch constructs rather than cdk-monitoring-constructs: half of
the signals are this service's own EMF metrics (heartbeats, terminate answers, runners
flagged, the guard), which that library would wrap in as much code as it saves.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

NAMESPACE = "TaskRunnerHeartbeat"
SERVICE_DIMENSION = {"service": "taskrunner-heartbeat"}


def service_metric(name: str, period: Duration, statistic: str = "Sum") -> cw.Metric:
    """One of the handlers' EMF metrics (lambda_src/heartbeat/observability.py)."""
    return cw.Metric(
        namespace=NAMESPACE, metric_name=name, dimensions_map=SERVICE_DIMENSION, period=period, statistic=statistic
    )


class Monitoring(Construct):
    """The alarms and the dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.RestApi,
        handler: lambda_.Function,
        sweeper: lambda_.Function,
        table: dynamodb.ITable,
        dead_letters: sqs.IQueue,
        sweep_interval_minutes: int,
        alarm_topic_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        if alarm_topic_arn:
            self.topic: sns.ITopic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn)
        else:
            self.topic = sns.Topic(
                self,
                "AlarmTopic",
                display_name="Task runner heartbeat alarms",
                master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
                enforce_ssl=True,
            )
        five = Duration.minutes(5)
        stage = api.deployment_stage.stage_name
        api_dims = {"ApiName": api.rest_api_name, "Stage": stage}

        def api_metric(name: str, statistic: str = "Sum", period: Duration = five) -> cw.Metric:
            return cw.Metric(
                namespace="AWS/ApiGateway",
                metric_name=name,
                dimensions_map=api_dims,
                statistic=statistic,
                period=period,
            )

        sweep_window = Duration.minutes(max(3 * sweep_interval_minutes, 15))

        def at_least_one(name: str, description: str, metric: cw.IMetric, periods: int = 1) -> cw.Alarm:
            """Alarm when the metric reaches 1 in each of `periods` periods; no data is no trouble."""
            return cw.Alarm(
                self,
                name,
                alarm_description=description,
                metric=metric,
                threshold=1,
                evaluation_periods=periods,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )

        self.alarms = {
            "Api5xxRate": cw.Alarm(
                self,
                "Api5xxRate",
                alarm_description="More than 5% of heartbeats failed with a 5XX: runners may look dead",
                metric=api_metric("5XXError", "Average"),
                threshold=0.05,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            "SweeperNotRunning": cw.Alarm(
                self,
                "SweeperNotRunning",
                alarm_description="The sweeper has not completed a run: silent runners are not being flagged",
                metric=service_metric("SweepsCompleted", sweep_window),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.BREACHING,
            ),
            "SweepGuardTripped": at_least_one(
                "SweepGuardTripped",
                "The mass-staleness guard held flags back: most of the fleet or of a worker group went silent",
                service_metric("SweepGuardTripped", five),
            ),
            "SweeperDeadLetters": at_least_one(
                "SweeperDeadLetters",
                "A sweeper run failed or could not be invoked (see the dead-letter queue)",
                dead_letters.metric_approximate_number_of_messages_visible(period=five, statistic="Maximum"),
            ),
            "StaleEventsOwed": at_least_one(
                "StaleEventsOwed",
                "Stale events could not be published for three sweeps running (EventBridge)",
                service_metric("StaleEventsOwed", five, "Minimum"),
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
        action = cw_actions.SnsAction(self.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

        minute = Duration.minutes(1)
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Heartbeats and terminate answers per minute",
                left=[service_metric("Heartbeats", minute), service_metric("TerminateAnswers", minute)],
                width=12,
            ),
            cw.GraphWidget(
                title="Sweeper: runners flagged stale, guard trips",
                left=[service_metric("RunnersFlagged", five), service_metric("SweepGuardTripped", five)],
                right=[service_metric("RunnersExamined", five, "Maximum")],
                width=12,
            ),
            cw.GraphWidget(
                title="API errors (4XX, 5XX)",
                left=[api_metric("4XXError", period=minute), api_metric("5XXError", period=minute)],
                width=12,
            ),
            cw.GraphWidget(
                title="API latency p50 / p99 (ms)",
                left=[api_metric("Latency", "p50", minute), api_metric("Latency", "p99", minute)],
                width=12,
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24),
        )

    @property
    def dashboard_url(self) -> str:
        return (
            f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards:name={self.dashboard.dashboard_name}"
        )
