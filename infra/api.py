"""The REST API: one POST / route to the handler, reachable only as the access settings allow."""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.settings import DeploySettings

STAGE = "v1"
CONTENT_TYPE = "application/x-amz-json-1.1"

# Errors API Gateway answers itself (Lambda never reached), rewritten into the awsJson envelope
# so that SDKs raise a named exception: (response type, status, code).
GATEWAY_ERRORS: tuple[tuple[apigw.ResponseType, str, str], ...] = (
    (apigw.ResponseType.DEFAULT_4_XX, "400", "InvalidRequestException"),
    (apigw.ResponseType.DEFAULT_5_XX, "500", "InternalServiceError"),
    (apigw.ResponseType.THROTTLED, "429", "ThrottlingException"),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "ThrottlingException"),
    (apigw.ResponseType.ACCESS_DENIED, "403", "AccessDeniedException"),
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "404", "NotFoundException"),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "RequestEntityTooLargeException"),
    (apigw.ResponseType.INTEGRATION_TIMEOUT, "504", "InternalServiceError"),
    (apigw.ResponseType.INTEGRATION_FAILURE, "502", "InternalServiceError"),
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
            description="Drop-in AWS Data Pipeline ReportTaskRunnerHeartbeat endpoint",
            endpoint_configuration=apigw.EndpointConfiguration(types=[endpoint], vpc_endpoints=vpc_endpoints or None),
            policy=self._resource_policy(settings),
            # Hand the handler the exact request bytes, whatever the Content-Type.
            binary_media_types=["*/*"],
            # Access and execution logs need the account's API Gateway CloudWatch Logs role.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=settings.throttle_rate,
                throttling_burst_limit=settings.throttle_burst,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log request bodies
                metrics_enabled=True,
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
        self.api.root.add_method(
            "POST",
            apigw.LambdaIntegration(handler, proxy=True),
            # Clients sign for the Data Pipeline service, which API Gateway cannot verify:
            # access is controlled by the resource policy (network edge) instead.
            authorization_type=apigw.AuthorizationType.NONE,
        )
        for response_type, status, code in GATEWAY_ERRORS:
            self.api.add_gateway_response(
                f"{code}{status}{response_type.response_type}",
                type=response_type,
                status_code=status,
                response_headers={"Content-Type": f"'{CONTENT_TYPE}'", "x-amzn-ErrorType": f"'{code}'"},
                templates={"application/json": error_template(code)},
            )

    @property
    def url(self) -> str:
        return self.api.url

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
