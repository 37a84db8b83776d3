"""The internal ALB front door (-c endpointType=alb): the properties that make it private and make it work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.infra.conftest import ALB, Synth, synth
from tests.infra.test_stack import function, only

HANDLER = "heartbeat.handler.lambda_handler"


def resources(synth: Synth, resource_type: str) -> dict[str, Any]:
    return synth.template.find_resources(resource_type)  # type: ignore[no-any-return]


def test_load_balancer_is_internal_in_the_given_subnets_and_the_rest_api_is_gone(alb: Synth) -> None:
    props = only(alb.template, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    assert props["Scheme"] == "internal"
    assert props["Type"] == "application"
    assert props["Subnets"] == ALB["subnetIds"].split(",")
    [group_id] = resources(alb, "AWS::EC2::SecurityGroup")
    assert props["SecurityGroups"] == [{"Fn::GetAtt": [group_id, "GroupId"]}]
    attributes = {a["Key"]: a["Value"] for a in props["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert "access_logs.s3.enabled" not in attributes  # opt-in, see albAccessLogBucket
    assert resources(alb, "AWS::ApiGateway::RestApi") == {}
    assert resources(alb, "AWS::ApiGateway::Account") == {}


def test_only_listener_is_https_on_the_given_certificate_forwarding_everything(alb: Synth) -> None:
    [listener] = resources(alb, "AWS::ElasticLoadBalancingV2::Listener").values()
    props = listener["Properties"]
    assert (props["Protocol"], props["Port"]) == ("HTTPS", 443)
    assert props["Certificates"] == [{"CertificateArn": ALB["certificateArn"]}]
    assert props["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    [target_group_id] = resources(alb, "AWS::ElasticLoadBalancingV2::TargetGroup")
    # The default action, with no listener rules: every method and path reaches the handler.
    assert props["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": {"Ref": target_group_id}}]
    assert resources(alb, "AWS::ElasticLoadBalancingV2::ListenerRule") == {}


def test_security_group_admits_exactly_the_given_cidrs_and_groups_on_the_listener_port(alb: Synth) -> None:
    [group] = resources(alb, "AWS::EC2::SecurityGroup").values()
    ingress = {
        (rule.get("CidrIp") or rule.get("CidrIpv6") or rule.get("SourceSecurityGroupId"), rule["IpProtocol"],
         rule["FromPort"], rule["ToPort"])
        for rule in group["Properties"]["SecurityGroupIngress"]
    }  # fmt: skip
    assert ingress == {
        ("10.20.0.0/16", "tcp", 443, 443),
        ("2001:db8::/56", "tcp", 443, 443),
        ("sg-0123456789abcdef0", "tcp", 443, 443),
    }
    assert len(group["Properties"]["SecurityGroupIngress"]) == 3
    assert resources(alb, "AWS::EC2::SecurityGroupIngress") == {}  # no rule added elsewhere
    # It invokes Lambda directly, not over the network: no egress (CDK's placeholder matches nothing).
    assert group["Properties"]["SecurityGroupEgress"] == [
        {"CidrIp": "255.255.255.255/32", "Description": "Disallow all traffic", "FromPort": 252,
         "IpProtocol": "icmp", "ToPort": 86}
    ]  # fmt: skip
    assert group["Properties"]["VpcId"] == ALB["vpcId"]


def test_target_is_the_handler_invocable_by_this_accounts_load_balancers_only(alb: Synth) -> None:
    handler_id, _ = function(alb.template, HANDLER)
    [target_group] = resources(alb, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    props = target_group["Properties"]
    assert props["TargetType"] == "lambda"
    assert props["Targets"] == [{"Id": {"Fn::GetAtt": [handler_id, "Arn"]}}]
    assert props["HealthCheckEnabled"] is False  # each check would be a paid invocation
    # Multi-value headers stay off (the default): the handler reads the single-value shape.
    attributes = {a["Key"]: a["Value"] for a in props.get("TargetGroupAttributes", [])}
    assert attributes.get("lambda.multi_value_headers.enabled", "false") == "false"
    [(permission_id, permission)] = [
        (k, p) for k, p in resources(alb, "AWS::Lambda::Permission").items()
        if p["Properties"]["Principal"] == "elasticloadbalancing.amazonaws.com"
    ]  # fmt: skip
    assert permission["Properties"]["FunctionName"] == {"Fn::GetAtt": [handler_id, "Arn"]}
    assert permission["Properties"]["Action"] == "lambda:InvokeFunction"
    assert permission["Properties"]["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert permission_id in target_group["DependsOn"]  # registered only once it may be invoked


def test_alarm_and_dashboard_read_the_load_balancers_own_metrics(alb: Synth) -> None:
    [lb_id] = resources(alb, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    alarm = next(
        a["Properties"] for a in resources(alb, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == "HeartbeatAlb-LoadBalancer5xxRate"
    )  # fmt: skip
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    assert by_id[next(i for i in by_id if "Expression" in by_id[i])]["Expression"] == (
        "(FILL(elb5xx, 0) + FILL(target5xx, 0)) / FILL(requests, 1)"
    )
    names = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert names == {"elb5xx": "HTTPCode_ELB_5XX_Count", "target5xx": "HTTPCode_Target_5XX_Count",
                     "requests": "RequestCount"}  # fmt: skip
    for metric in alarm["Metrics"]:
        if "MetricStat" in metric:
            assert metric["MetricStat"]["Metric"]["Namespace"] == "AWS/ApplicationELB"
            assert metric["MetricStat"]["Metric"]["Dimensions"] == [
                {"Name": "LoadBalancer", "Value": {"Fn::GetAtt": [lb_id, "LoadBalancerFullName"]}}
            ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0.05, "GreaterThanThreshold")
    body = json.dumps(only(alb.template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    for metric in ("HTTPCode_ELB_5XX_Count", "HTTPCode_Target_4XX_Count", "TargetResponseTime", "p99"):
        assert metric in body
    assert "AWS/ApiGateway" not in body


def test_endpoint_url_is_the_name_the_certificate_covers_and_the_dns_record_to_make_is_output(alb: Synth) -> None:
    # The load balancer's own name (internal-...elb.amazonaws.com) matches no certificate a client would accept.
    [lb_id] = resources(alb, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    outputs = alb.template.find_outputs("*")
    assert outputs["EndpointUrl"]["Value"] == "https://heartbeat.example.internal/"
    record = outputs["LoadBalancerDnsName"]
    assert record["Value"] == {"Fn::GetAtt": [lb_id, "DNSName"]}
    assert record["Description"].startswith("Point heartbeat.example.internal at this name")


def test_without_a_domain_name_no_endpoint_url_is_made_up(tmp_path: Path) -> None:
    no_name = synth({k: v for k, v in ALB.items() if k != "albDomainName"}, tmp_path)
    outputs = no_name.template.find_outputs("*")
    assert "EndpointUrl" not in outputs
    assert outputs["LoadBalancerDnsName"]["Description"].startswith("Point a name your certificate covers at")


def test_plain_http_calls_the_load_balancers_own_name(alb_plain_http: Synth) -> None:
    [lb_id] = resources(alb_plain_http, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    outputs = alb_plain_http.template.find_outputs("*")
    url = outputs["EndpointUrl"]["Value"]
    assert url == {"Fn::Join": ["", ["http://", {"Fn::GetAtt": [lb_id, "DNSName"]}, "/"]]}
    assert "LoadBalancerDnsName" not in outputs  # nothing to point anywhere


def test_plain_http_only_when_opted_in_and_then_only_on_port_80(alb: Synth, alb_plain_http: Synth) -> None:
    protocols = {(r["Properties"]["Protocol"], r["Properties"]["Port"])
                 for r in resources(alb, "AWS::ElasticLoadBalancingV2::Listener").values()}  # fmt: skip
    assert protocols == {("HTTPS", 443)}
    [listener] = resources(alb_plain_http, "AWS::ElasticLoadBalancingV2::Listener").values()
    assert (listener["Properties"]["Protocol"], listener["Properties"]["Port"]) == ("HTTP", 80)
    [group] = resources(alb_plain_http, "AWS::EC2::SecurityGroup").values()
    assert {(r["FromPort"], r["ToPort"]) for r in group["Properties"]["SecurityGroupIngress"]} == {(80, 80)}


def test_access_logs_go_to_the_given_bucket_when_asked_for(alb_plain_http: Synth) -> None:
    props = only(alb_plain_http.template, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    attributes = {a["Key"]: a["Value"] for a in props["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == "heartbeat-alb-logs"


def test_trace_sampling_zero_behind_a_load_balancer_traces_no_heartbeat(alb: Synth, alb_plain_http: Synth) -> None:
    # Nothing upstream of the handler takes X-Ray's sampling decision, and Lambda's own rate cannot be set:
    # traceSampling=0 makes the handler trace only requests already sampled, and an ALB samples none.
    _, traced = function(alb.template, HANDLER)
    assert traced["Properties"]["TracingConfig"] == {"Mode": "Active"}
    _, untraced = function(alb_plain_http.template, HANDLER)
    assert untraced["Properties"]["TracingConfig"] == {"Mode": "PassThrough"}
    _, sweeper = function(alb_plain_http.template, "heartbeat.sweeper.lambda_handler")
    assert sweeper["Properties"]["TracingConfig"] == {"Mode": "Active"}  # a sweep every few minutes: all traced
    assert resources(alb_plain_http, "AWS::XRay::SamplingRule") == {}
