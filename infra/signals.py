"""Opt-in (-c retireOnSignals=true): AWS's own signals that a runner's host is gone retire the runner.

Three EventBridge rules on the default bus, where AWS services send their events, feed one small
function (heartbeat.signals) that may only update the runners table. docs/operations.md says how a
signal finds its runner.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.functions import HeartbeatFunction

# source, detail-type, and the detail fields that make it a departure (heartbeat/signals.py reads the same)
SIGNALS: dict[str, tuple[str, str, dict[str, list[str]]]] = {
    "Ec2Terminated": ("aws.ec2", "EC2 Instance State-change Notification", {"state": ["terminated"]}),
    "AutoScalingTerminate": ("aws.autoscaling", "EC2 Instance-terminate Lifecycle Action", {}),
    "EcsTaskStopped": ("aws.ecs", "ECS Task State Change", {"lastStatus": ["STOPPED"]}),
}
# What the function's code calls on the table (RunnerStore.retire), and nothing more.
SIGNALS_TABLE_ACTIONS = ["dynamodb:UpdateItem"]


class RetireOnSignals(Construct):
    """The rules, the function they invoke, and an encrypted dead-letter queue for events it could not handle."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_arn: str,
        environment: dict[str, str],
        layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
        service: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = HeartbeatFunction(
            self, "Retire", handler="heartbeat.signals.lambda_handler",
            description="Retires task runners whose host AWS reports gone", memory_size=256,
            timeout=Duration.seconds(10), environment=environment, layer=layer, log_retention=log_retention,
            service=service,
        )  # fmt: skip
        self.function.role.add_to_policy(iam.PolicyStatement(actions=SIGNALS_TABLE_ACTIONS, resources=[table_arn]))
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        # Asynchronous: Lambda retries a failed event twice, then records it here.
        self.function.function.configure_async_invoke(
            retry_attempts=2, on_failure=destinations.SqsDestination(self.dead_letters)
        )
        self.rules = {
            name: events.Rule(
                self,
                name,
                description=f"Retires the task runner of a {detail_type} event",
                event_pattern=events.EventPattern(source=[source], detail_type=[detail_type], detail=detail or None),
                targets=[
                    targets.LambdaFunction(
                        self.function.function, dead_letter_queue=self.dead_letters, retry_attempts=2
                    )
                ],
            )
            for name, (source, detail_type, detail) in SIGNALS.items()
        }
