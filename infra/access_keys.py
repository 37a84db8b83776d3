"""The access keys' store: the keys table and the KMS key that seals their secrets (-c auth=sigv4)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# The item shape and the encryption context the code uses (lambda_src/heartbeat/store/keys.py, key_secrets.py).
PARTITION_KEY = "accessKeyId"
PURPOSE = "taskrunner-heartbeat access key"


class AccessKeyStore(Construct):
    """Keys table (on-demand, point-in-time recovery, kept on destroy when data is) and its sealing key.

    Operators issue keys with heartbeat-ops (kms:Encrypt and PutItem, from their own role); the
    handler may only read keys, open their secrets and move their runner counts; the sweeper may
    only read the counters and write the counts.
    """

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool, table_key: kms.IKey | None = None) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        self.key = kms.Key(
            self,
            "SealingKey",
            description="Seals the secrets of the access keys that sign task runner heartbeats",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=retain,
            removal_policy=removal,
            # The runners table's customer-managed key when one was chosen (-c tableEncryption=customer-managed).
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED if table_key else dynamodb.TableEncryption.DEFAULT,
            encryption_key=table_key,
        )

    def grant_verify(self, role: iam.IRole) -> None:
        """What the handler's code calls: read a key, open its secret, move its runner count in a binding."""
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[self.table.table_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[self.key.key_arn],
                # Only secrets sealed as access keys, never anything else this key might be used for.
                conditions={"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE}},
            )
        )

    def grant_census(self, role: iam.IRole) -> None:
        """What the sweeper's census calls: read the registration counters, write each key's count."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[self.table.table_arn],
            )
        )
