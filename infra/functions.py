"""One helper builds both Lambda functions the same way."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.monitoring import NAMESPACE

LAMBDA_SOURCE = Path(__file__).resolve().parent.parent / "lambda_src"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
# The Powertools release the code is tested with (requirements-dev.txt); its layer ARN
# for the stack's region is read from AWS's public SSM parameter at deploy time.
POWERTOOLS_VERSION = "3.37.0"


def powertools_parameter_name() -> str:
    """AWS's public SSM parameter holding the Powertools layer ARN for this runtime, architecture and version."""
    return f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{POWERTOOLS_VERSION}"


def powertools_layer(scope: Construct, layer_arn: str | None) -> lambda_.ILayerVersion:
    """The AWS-managed Powertools layer for this runtime and architecture, pinned to POWERTOOLS_VERSION."""
    if layer_arn is None:
        layer_arn = ssm.StringParameter.value_for_string_parameter(scope, powertools_parameter_name())
    return lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", layer_arn)


class HeartbeatFunction(Construct):
    """A Python 3.13 arm64 function from lambda_src, with its own log group and a role that may only log.

    Grants to the store are added by the caller, narrowly.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        memory_size: int,
        timeout: Duration,
        environment: dict[str, str],
        layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
        service: str,
        tracing: lambda_.Tracing = lambda_.Tracing.ACTIVE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description}: logs to its own log group, and what its code calls",
        )
        # Written out instead of AWSLambdaBasicExecutionRole, which allows every log group.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_.Code.from_asset(str(LAMBDA_SOURCE), exclude=["**/__pycache__", "**/*.pyc"]),
            handler=handler,
            memory_size=memory_size,
            timeout=timeout,
            environment={
                # The metrics' `service` dimension and every log line's `service` key: one per stack.
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
            layers=[layer],
            log_group=self.log_group,
            # JSON lets Lambda filter by level. Application logs at INFO keep the handlers' INFO lines
            # and the EMF metric lines (no "level" key, so Lambda counts them as INFO: a stricter level
            # would drop the metrics the alarms read). Platform logs at WARN drop the START/END/REPORT
            # lines paid for on every heartbeat; Lambda's own metrics still count every invocation.
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=tracing,
            role=self.role,
        )
