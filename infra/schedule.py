"""The sweeper's schedule, and where its failed runs go."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct


class SweepSchedule(Construct):
    """An EventBridge rule runs the sweeper every interval; failures land in an encrypted dead-letter queue.

    A failed sweep is not retried in place: the next scheduled run does the whole job again. The
    queue also takes the sweep's work messages that its workers failed to finish (infra/workers.py).
    The queue exists first (the workers need it before the sweeper exists); run() adds the rule.
    """

    def __init__(self, scope: Construct, construct_id: str, *, interval_minutes: int) -> None:
        super().__init__(scope, construct_id)
        self.interval_minutes = interval_minutes
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )

    def run(self, sweeper: lambda_.Function) -> None:
        """Invoke the sweeper every interval."""
        interval_minutes = self.interval_minutes
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"Runs the heartbeat sweeper every {interval_minutes} minutes",
            schedule=events.Schedule.rate(Duration.minutes(interval_minutes)),
            targets=[
                targets.LambdaFunction(
                    sweeper,
                    dead_letter_queue=self.dead_letters,  # EventBridge could not invoke it
                    retry_attempts=2,
                    max_event_age=Duration.minutes(interval_minutes),
                )
            ],
        )
        # The invocation is asynchronous: a run that fails is recorded, not retried on top of the next one.
        sweeper.configure_async_invoke(
            retry_attempts=0,
            max_event_age=Duration.minutes(interval_minutes),
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
