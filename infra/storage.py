"""The runners table."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

# The item shape the code writes (lambda_src/heartbeat/store/).
PARTITION_KEY = "taskrunnerId"
TTL_ATTRIBUTE = "expiresAt"


class RunnerTable(Construct):
    """On-demand, keyed on taskrunnerId, TTL on expiresAt, point-in-time recovery, kept on destroy."""

    def __init__(self, scope: Construct, construct_id: str, *, customer_managed_key: bool, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self.key = (
            kms.Key(
                self,
                "Key",
                description="Encrypts the task runner heartbeat table",
                enable_key_rotation=True,
                removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            )
            if customer_managed_key
            else None
        )
        # Table rather than TableV2: TableV2 cannot render a customer-managed key in a
        # region-agnostic stack, and this stack deploys to whichever region the user picks.
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=retain,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            encryption=(dynamodb.TableEncryption.CUSTOMER_MANAGED if self.key else dynamodb.TableEncryption.DEFAULT),
            encryption_key=self.key,
        )
