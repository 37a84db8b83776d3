"""The internal Application Load Balancer front door (-c endpointType=alb).

An internal ALB in the given VPC and subnets forwards every method and path to the handler, a
Lambda target, so the handler answers everything it can exactly as behind the REST API. What
the load balancer answers by itself (no awsJson envelope) is listed in docs/protocol.md's error table.
"""

from __future__ import annotations

import ipaddress

import jsii
from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.monitoring import FrontDoorSignals
from infra.settings import DeploySettings

HTTPS_PORT = 443
HTTP_PORT = 80


@jsii.implements(elbv2.IApplicationLoadBalancerTarget)
class HandlerTarget:
    """The handler as a Lambda target, invocable by load balancers of this account only.

    CDK's LambdaTarget grants elasticloadbalancing.amazonaws.com with no condition at all (the target
    group's ARN cannot be named: the target group must wait for the permission). Here the grant is
    conditioned on aws:SourceAccount, as the load balancer documentation recommends.
    """

    def __init__(self, function: lambda_.IFunction) -> None:
        self.function = function

    def attach_to_application_target_group(
        self, target_group: elbv2.IApplicationTargetGroup
    ) -> elbv2.LoadBalancerTargetProps:
        self.function.add_permission(
            "LoadBalancerInvoke",
            principal=iam.ServicePrincipal("elasticloadbalancing.amazonaws.com"),
            source_account=Stack.of(target_group).account,
        )
        target_group.node.add_dependency(self.function.permissions_node.find_child("LoadBalancerInvoke"))
        return elbv2.LoadBalancerTargetProps(
            target_type=elbv2.TargetType.LAMBDA, target_json={"id": self.function.function_arn}
        )


class HeartbeatLoadBalancer(Construct):
    """Internal ALB, HTTPS on the given certificate (plain HTTP only when opted in), reachable only from
    the given CIDRs and security groups, with the handler as its one Lambda target."""

    def __init__(
        self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction, settings: DeploySettings
    ) -> None:
        super().__init__(scope, construct_id)
        assert settings.vpc_id is not None  # noqa: S101 - settings checked it for endpointType=alb
        # Looked up by id, not by Vpc.from_lookup: synth makes no AWS call. The subnets are given
        # explicitly, so the VPC's own subnet list is never consulted.
        vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=settings.vpc_id, availability_zones=["unused"])
        subnets = [ec2.Subnet.from_subnet_id(self, f"Subnet{i}", s) for i, s in enumerate(settings.subnet_ids)]
        for subnet in subnets:
            Annotations.of(subnet).acknowledge_warning(
                "@aws-cdk/aws-ec2:noSubnetRouteTableId", "A load balancer needs only the subnet's id, not its routes"
            )
        # The load balancer invokes Lambda directly, not over the network: it needs no egress at all.
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Heartbeat load balancer: only the listed task runner networks may connect",
            allow_all_outbound=False,
        )
        ports = ([HTTPS_PORT] if settings.certificate_arn else []) + ([HTTP_PORT] if settings.alb_plain_http else [])
        for port in ports:
            for cidr in settings.allowed_source_cidrs:
                network = ipaddress.ip_network(cidr)
                peer = ec2.Peer.ipv4(cidr) if network.version == 4 else ec2.Peer.ipv6(cidr)
                self.security_group.add_ingress_rule(peer, ec2.Port.tcp(port), f"Task runners in {cidr}")
            for group in settings.allowed_security_group_ids:
                self.security_group.add_ingress_rule(
                    ec2.Peer.security_group_id(group), ec2.Port.tcp(port), f"Task runners in {group}"
                )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=subnets),
            internet_facing=False,
            security_group=self.security_group,
            drop_invalid_header_fields=True,
        )
        self.access_log_bucket = settings.alb_access_log_bucket
        if self.access_log_bucket:
            # An existing bucket whose policy already lets this region's load balancers write (see docs/deploy.md).
            self.load_balancer.set_attribute("access_logs.s3.enabled", "true")
            self.load_balancer.set_attribute("access_logs.s3.bucket", self.access_log_bucket)
            self.load_balancer.set_attribute("access_logs.s3.prefix", "heartbeat")
        # Health checks stay off (the default for Lambda targets): each would be a paid invocation,
        # and with one target there is nothing to fail over to.
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "Handler",
            target_type=elbv2.TargetType.LAMBDA,
            targets=[HandlerTarget(handler)],
            health_check=elbv2.HealthCheck(enabled=False),
        )
        forward = elbv2.ListenerAction.forward([self.target_group])
        self.scheme = "http"
        if settings.certificate_arn:
            self.scheme = "https"
            self.load_balancer.add_listener(
                "Https",
                port=HTTPS_PORT,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(settings.certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_action=forward,
                open=False,  # ingress is exactly the rules above
            )
        if settings.alb_plain_http:
            self.load_balancer.add_listener(
                "Http", port=HTTP_PORT, protocol=elbv2.ApplicationProtocol.HTTP, default_action=forward, open=False
            )

        self.domain_name = settings.alb_domain_name

    @property
    def url(self) -> str | None:
        """The URL clients call, where it is known.

        Clients check the certificate against the name they call, and the load balancer's own DNS name
        matches no certificate: over HTTPS the URL is the albDomainName the certificate covers (a DNS
        record must point it at the load balancer). Without that name it is unknown; over plain HTTP
        alone, the load balancer's own name works.
        """
        if self.domain_name is not None:
            return f"{self.scheme}://{self.domain_name}/"
        if self.scheme == "http":
            return f"http://{self.load_balancer.load_balancer_dns_name}/"
        return None

    def signals(self) -> FrontDoorSignals:
        """The load balancer's own metrics: its own 5XX (502/503/504) and the handler's, per request."""
        lb = self.load_balancer.metrics

        def period(minutes: int) -> Duration:
            return Duration.minutes(minutes)

        five = period(5)
        rate = cw.MathExpression(
            # Requests the load balancer rejected before choosing a target are not in RequestCount:
            # with no request counted, any 5XX still reads as a rate of at least 1.
            expression="(FILL(elb5xx, 0) + FILL(target5xx, 0)) / FILL(requests, 1)",
            using_metrics={
                "elb5xx": lb.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=five, statistic="Sum"),
                "target5xx": lb.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=five, statistic="Sum"),
                "requests": lb.request_count(period=five, statistic="Sum"),
            },
            label="Share of requests answered with a 5XX",
            period=five,
        )
        minute = period(1)
        return FrontDoorSignals(
            label="Load balancer",
            alarm_id="LoadBalancer5xxRate",
            error_rate_5xx=rate,
            errors=(
                lb.http_code_elb(elbv2.HttpCodeElb.ELB_4XX_COUNT, period=minute, statistic="Sum"),
                lb.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=minute, statistic="Sum"),
                lb.http_code_target(elbv2.HttpCodeTarget.TARGET_4XX_COUNT, period=minute, statistic="Sum"),
                lb.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=minute, statistic="Sum"),
            ),
            latency=(
                lb.target_response_time(period=minute, statistic="p50"),
                lb.target_response_time(period=minute, statistic="p99"),
            ),
            latency_unit="s",
        )
