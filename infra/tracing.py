"""An X-Ray sampling rule for the REST API's stage (-c traceSampling=<share>).

X-Ray's default rule traces one request a second and 5% of the rest, billed per trace recorded. The
stage's tracing makes API Gateway take the sampling decision, under the rule that matches it, and the
handler (active tracing) follows the decision it receives. Lambda's own sampling, for requests that
arrive with no decision (through a load balancer), cannot be configured (Lambda developer guide,
Using AWS Lambda with AWS X-Ray).
"""

from __future__ import annotations

from aws_cdk import Names
from aws_cdk import aws_xray as xray
from constructs import Construct

# Rules are evaluated in ascending priority; X-Ray's default rule comes last (10000).
PRIORITY = 100


class TraceSampling(Construct):
    """Trace this share of the stage's requests, and no fixed number a second."""

    def __init__(self, scope: Construct, construct_id: str, *, stage_service_name: str, share: float) -> None:
        super().__init__(scope, construct_id)
        self.rule = xray.CfnSamplingRule(
            self,
            "Rule",
            sampling_rule=xray.CfnSamplingRule.SamplingRuleProperty(
                rule_name=Names.unique_resource_name(self, max_length=32),
                priority=PRIORITY,
                fixed_rate=share,
                reservoir_size=0,
                service_name=stage_service_name,  # API Gateway's: "{api name}/{stage}"
                service_type="AWS::ApiGateway::Stage",
                host="*",
                http_method="*",
                url_path="*",
                resource_arn="*",
                version=1,
            ),
        )
