"""The REST API: every method and path to the handler, reachable only as the access settings allow."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.monitoring import FrontDoorSignals
from infra.settings import DeploySettings

STAGE = "v1"
CONTENT_TYPE = "application/x-amz-json-1.1"

# Errors API Gateway answers itself (Lambda never reached), rewritten into the awsJson envelope
# so that SDKs raise a named exception: (response type, status, code). Each keeps its own status;
# DEFAULT_4XX/5XX get no status (None), so every other type keeps the status API Gateway gives it
# (a status there would apply to every 4XX/5XX type without a response of its own, e.g. WAF's 403).
GATEWAY_ERRORS: tuple[tuple[apigw.ResponseType, str | None, str], ...] = (
    (apigw.ResponseType.THROTTLED, "429", "ThrottlingException"),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "ThrottlingException"),
    (apigw.ResponseType.ACCESS_DENIED, "403", "AccessDeniedException"),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "RequestEntityTooLargeException"),
    (apigw.ResponseType.INTEGRATION_FAILURE, "502", "InternalServiceError"),
    (apigw.ResponseType.INTEGRATION_TIMEOUT, "504", "InternalServiceError"),
    (apigw.ResponseType.DEFAULT_4_XX, None, "InvalidRequestException"),
    (apigw.ResponseType.DEFAULT_5_XX, None, "InternalServiceError"),
)


def error_template(code: str) -> str:
    """The awsJson error body; $context.error.messageString is already a quoted JSON string."""
    return '{"__type":"' + code + '","message":$context.error.messageString}'


class HeartbeatApi(Construct):
    """REST API, private or regional, with a resource policy, throttling, JSON access logs and awsJson errors."""

    def __init__(
        self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction, settings: DeploySettings
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=settings.log_retention)
        endpoint = apigw.EndpointType.PRIVATE if settings.is_private else apigw.EndpointType.REGIONAL
        vpc_endpoints = [
            ec2.InterfaceVpcEndpoint.from_interface_vpc_endpoint_attributes(
                self, f"Vpce{i}", vpc_endpoint_id=v, port=443
            )
            for i, v in enumerate(settings.vpc_endpoint_ids)
        ]
        self.api = apigw.RestApi(
            self,
            "Api",
            # Named after the stack: the alarms and the dashboard select the API by this name, and two
            # stacks in one account and region must not read each other's metrics.
            rest_api_name=Stack.of(self).stack_name,
            description="Drop-in AWS Data Pipeline ReportTaskRunnerHeartbeat endpoint",
            endpoint_configuration=apigw.EndpointConfiguration(types=[endpoint], vpc_endpoints=vpc_endpoints or None),
            policy=self._resource_policy(settings),
            # Hand the handler the exact request bytes, whatever the Content-Type.
            binary_media_types=["*/*"],
            # The account-and-region singleton AWS::ApiGateway::Account overwrites any CloudWatch role
            # the account already has (and is kept on destroy): only when asked for.
            cloud_watch_role=settings.api_gateway_cloudwatch_role,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=settings.throttle_rate,
                throttling_burst_limit=settings.throttle_burst,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log request bodies
                # Off: per-method metrics are billed as custom metrics; the stage's own (ApiName, Stage)
                # metrics, which the alarms and the dashboard read, are published regardless.
                metrics_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
            ),
        )
        # API Gateway creates the execution log group on first use, without a retention. Created here
        # first, under the name API Gateway writes to, it keeps the configured retention.
        self.execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{STAGE}",
            retention=settings.log_retention,
        )
        self.api.deployment_stage.node.add_dependency(self.execution_logs)
        # Every method on / and on every path goes to the handler, which answers 404/405 itself in the
        # awsJson envelope exactly as under make serve. Clients sign for the Data Pipeline service, which
        # API Gateway cannot verify: access is controlled by the resource policy (network edge) instead.
        integration = apigw.LambdaIntegration(handler, proxy=True, allow_test_invoke=False)
        for resource in (self.api.root, self.api.root.add_resource("{proxy+}")):
            resource.add_method("ANY", integration, authorization_type=apigw.AuthorizationType.NONE)
        for response_type, status, code in GATEWAY_ERRORS:
            self.api.add_gateway_response(
                f"{code}{status or ''}{response_type.response_type}",
                type=response_type,
                status_code=status,
                response_headers={"Content-Type": f"'{CONTENT_TYPE}'", "x-amzn-ErrorType": f"'{code}'"},
                # Keyed by content type; AWS documents only application/json as the default, so the
                # awsJson type the clients send is listed too, with the same body.
                templates={ct: error_template(code) for ct in ("application/json", CONTENT_TYPE)},
            )

    @property
    def url(self) -> str:
        return self.api.url

    def alias_urls(self, vpc_endpoint_ids: tuple[str, ...]) -> str:
        """The Route 53 alias URL API Gateway makes for each associated VPC endpoint, comma-separated.

        The default URL reaches a private API only through an endpoint with private DNS on; these work without it.
        """
        stack = Stack.of(self)
        return ",".join(
            f"https://{self.api.rest_api_id}-{vpce}.execute-api.{stack.region}.{stack.url_suffix}/{STAGE}/"
            for vpce in vpc_endpoint_ids
        )

    def signals(self) -> FrontDoorSignals:
        """API Gateway's own metrics for this API (by its name, the stack's) and stage."""
        dimensions = {"ApiName": self.api.rest_api_name, "Stage": STAGE}

        def metric(name: str, statistic: str, minutes: int) -> cw.Metric:
            return cw.Metric(
                namespace="AWS/ApiGateway", metric_name=name, dimensions_map=dimensions,
                statistic=statistic, period=Duration.minutes(minutes),
            )  # fmt: skip

        return FrontDoorSignals(
            label="API",
            alarm_id="Api5xxRate",
            error_rate_5xx=metric("5XXError", "Average", 5),  # 0 or 1 per request: the average is the share
            errors=(metric("4XXError", "Sum", 1), metric("5XXError", "Sum", 1)),
            latency=(metric("Latency", "p50", 1), metric("Latency", "p99", 1)),
            latency_unit="ms",
        )

    @staticmethod
    def _resource_policy(settings: DeploySettings) -> iam.PolicyDocument:
        if settings.is_private:
            condition = {"StringNotEquals": {"aws:SourceVpce": list(settings.vpc_endpoint_ids)}}
        else:
            condition = {"NotIpAddress": {"aws:SourceIp": list(settings.allowed_source_cidrs)}}
        return iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    effect=iam.Effect.ALLOW,
                    principals=[iam.AnyPrincipal()],
                    actions=["execute-api:Invoke"],
                    resources=["execute-api:/*"],
                ),
                iam.PolicyStatement(
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["execute-api:Invoke"],
                    resources=["execute-api:/*"],
                    conditions=condition,
                ),
            ]
        )
