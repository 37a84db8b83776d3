"""The runners table."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

# The item shape the code writes (lambda_src/heartbeat/store/).
PARTITION_KEY = "taskrunnerId"
TTL_ATTRIBUTE = "expiresAt"
# Provisioned capacity (-c billing=provisioned): auto scaling keeps consumption at this share of what is
# provisioned, between these bounds (40,000 units: DynamoDB's default per-table quota, as on-demand's).
TARGET_UTILIZATION_PERCENT = 70
MIN_CAPACITY = 5
MAX_CAPACITY = 40_000


class RunnerTable(Construct):
    """On-demand (or provisioned with auto scaling), keyed on taskrunnerId, TTL on expiresAt, point-in-time
    recovery, kept on destroy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        customer_managed_key: bool,
        retain: bool,
        provisioned: bool = False,
    ) -> None:
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
            billing_mode=dynamodb.BillingMode.PROVISIONED if provisioned else dynamodb.BillingMode.PAY_PER_REQUEST,
            read_capacity=MIN_CAPACITY if provisioned else None,
            write_capacity=MIN_CAPACITY if provisioned else None,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=retain,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            encryption=(dynamodb.TableEncryption.CUSTOMER_MANAGED if self.key else dynamodb.TableEncryption.DEFAULT),
            encryption_key=self.key,
        )
        if provisioned:
            # Heartbeats write at a steady rate; the sweeper's scan reads in a burst every few minutes, which
            # DynamoDB's burst capacity (up to 300 s of unused reads) absorbs at the average rate provisioned.
            bounds = {"min_capacity": MIN_CAPACITY, "max_capacity": MAX_CAPACITY}
            self.table.auto_scale_write_capacity(**bounds).scale_on_utilization(
                target_utilization_percent=TARGET_UTILIZATION_PERCENT
            )
            self.table.auto_scale_read_capacity(**bounds).scale_on_utilization(
                target_utilization_percent=TARGET_UTILIZATION_PERCENT
            )
