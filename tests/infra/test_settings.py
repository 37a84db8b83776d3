"""Context settings: secure by default, a clear message for every bad value."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

from heartbeat.config import (
    DEFAULT_MASS_STALE_FRACTION,
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_STALE_AFTER_SECONDS,
    DEFAULT_SWEEP_INTERVAL_SECONDS,
)
from heartbeat_local.process import ROOT
from infra.settings import DeploySettings, SettingsError


def settings(**context: str) -> DeploySettings:
    return DeploySettings.from_context(context.get)


def test_no_access_context_stops_with_the_options_named() -> None:
    with pytest.raises(SettingsError) as excinfo:
        settings()
    message = str(excinfo.value)
    assert "endpointType=private -c vpcEndpointIds=" in message
    assert "endpointType=regional -c allowedSourceCidrs=" in message
    assert "endpointType=alb -c vpcId=" in message
    assert "allowedSourceCidrs=0.0.0.0/0" in message


def test_app_without_access_context_exits_with_one_clear_line() -> None:
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("Cannot synthesize: No access context given.")
    assert "Traceback" not in result.stderr


def test_defaults_are_the_handlers_and_match_the_docs() -> None:
    got = settings(endpointType="private", vpcEndpointIds="vpce-0123456789abcdef0")
    # The handler's defaults are pinned once, in tests/unit/test_config.py; the stack's are the same ones.
    assert (got.stale_after_minutes * 60, got.retention_days * 86_400, got.sweep_interval_minutes * 60) == (
        DEFAULT_STALE_AFTER_SECONDS, DEFAULT_RETENTION_SECONDS, DEFAULT_SWEEP_INTERVAL_SECONDS,
    )  # fmt: skip
    assert got.mass_stale_fraction == DEFAULT_MASS_STALE_FRACTION
    assert (got.throttle_rate, got.throttle_burst, got.log_retention_days) == (50, 100, 30)
    assert (got.table_encryption, got.retain_data) == ("aws-owned", True)
    assert got.sdk_tracing is False


def test_open_endpoint_only_when_asked_for_explicitly() -> None:
    got = settings(endpointType="regional", allowedSourceCidrs="0.0.0.0/0")
    assert got.allowed_source_cidrs == ("0.0.0.0/0",)


def test_lists_come_as_json_lists_too() -> None:
    got = DeploySettings.from_context({"endpointType": "private", "vpcEndpointIds": ["vpce-0123456789abcdef0"]}.get)
    assert got.vpc_endpoint_ids == ("vpce-0123456789abcdef0",)


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"endpointType": "public"}, "endpointType must be 'private', 'regional' or 'alb'"),
        ({"endpointType": "private"}, "endpointType=private needs vpcEndpointIds"),
        ({"endpointType": "private", "vpcEndpointIds": "vpc-123"}, "is not a VPC endpoint id"),
        ({"endpointType": "regional"}, "endpointType=regional needs allowedSourceCidrs"),
        ({"endpointType": "regional", "allowedSourceCidrs": "10.0.0.1/16"}, "is not a CIDR block"),
        ({"endpointType": "regional", "allowedSourceCidrs": "10.0.0.0/8", "vpcEndpointIds": "vpce-0123456789abcdef0"},
         "takes no vpcEndpointIds"),
        ({"staleAfterMinutes": "soon"}, "staleAfterMinutes must be a whole number"),
        ({"staleAfterMinutes": "0"}, "staleAfterMinutes must be between"),
        ({"sweepIntervalMinutes": "45"}, "sweepIntervalMinutes (45) must be shorter than staleAfterMinutes"),
        ({"retentionDays": "1", "staleAfterMinutes": "1440"}, "retentionDays (1) must be longer"),
        ({"logRetentionDays": "10"}, "logRetentionDays must be one of"),
        ({"massStaleFraction": "2"}, "massStaleFraction must be greater than 0 and at most 1"),
        ({"tableEncryption": "none"}, "tableEncryption must be"),
        ({"alarmTopicArn": "ops-alarms"}, "is not an SNS topic ARN"),
        ({"retainData": "maybe"}, "retainData must be true or false"),
        ({"throttleRate": "-1"}, "throttleRate must be between"),
        ({"staleAfterMinutesByWorkerGroup": "fast=10"}, "staleAfterMinutesByWorkerGroup must be a JSON object"),
        ({"staleAfterMinutesByWorkerGroup": '{"fast": "10"}'}, "must be a whole number of minutes"),
        ({"staleAfterMinutesByWorkerGroup": '{"fast": 3}'}, "must be longer than sweepIntervalMinutes"),
        ({"eventBusName": "bad bus!"}, "is not an event bus name"),
        ({"sweepWorkers": "1"}, "sweepWorkers must be between 2 and 1000"),
    ],
)  # fmt: skip
def test_bad_value_fails_with_a_clear_message(context: dict[str, str], named: str) -> None:
    full = {"endpointType": "private", "vpcEndpointIds": "vpce-0123456789abcdef0", **context}
    if context.get("endpointType") == "regional" and "vpcEndpointIds" not in context:
        full.pop("vpcEndpointIds")
    if context.get("endpointType") == "private" and "vpcEndpointIds" not in context:
        full.pop("vpcEndpointIds")
    with pytest.raises(SettingsError) as excinfo:
        settings(**full)
    assert named in str(excinfo.value)


@pytest.mark.parametrize(
    "cidr",
    ["10.0.0.0/8", "10.20.0.0/16", "172.16.5.0/24", "192.168.1.7/32", "100.64.0.0/10", "127.0.0.1/32",
     "169.254.0.0/16", "fd00::/8", "fe80::/64", "::1/128"],
)  # fmt: skip
def test_regional_mode_refuses_a_range_its_source_ip_can_never_match(cidr: str) -> None:
    # aws:SourceIp is the caller's public address: such a range would deny every caller, silently.
    with pytest.raises(SettingsError) as excinfo:
        settings(endpointType="regional", allowedSourceCidrs=f"203.0.113.0/24,{cidr}")
    message = str(excinfo.value)
    assert "\n" not in message
    assert cidr in message
    assert "-c endpointType=private -c vpcEndpointIds=" in message


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "203.0.113.0/24", "11.0.0.0/8", "2001:db8::/32", "8.0.0.0/7"])
def test_regional_mode_takes_public_ranges(cidr: str) -> None:
    assert settings(endpointType="regional", allowedSourceCidrs=cidr).allowed_source_cidrs == (cidr,)


def test_help_text_suggests_only_ranges_each_mode_can_match() -> None:
    from infra.settings import ACCESS_HELP

    regional = next(line for line in ACCESS_HELP.splitlines() if "endpointType=regional -c" in line)
    cidrs = regional.split("allowedSourceCidrs=")[1].split()[0].strip("[]").replace("[", "").split(",")
    private = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
    for cidr in cidrs:
        assert not any(ipaddress.ip_network(cidr).subnet_of(p) for p in private), cidr  # type: ignore[arg-type]
        settings(endpointType="regional", allowedSourceCidrs=cidr)  # raises if it could never match


ALB_CONTEXT = {
    "endpointType": "alb",
    "vpcId": "vpc-0123456789abcdef0",
    "subnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2",
    "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/01234567-89ab-cdef-0123-456789abcdef",
    "allowedSourceCidrs": "10.20.0.0/16",
}


def test_alb_mode_takes_private_ranges_and_security_groups() -> None:
    got = settings(**{**ALB_CONTEXT, "allowedSecurityGroupIds": "sg-0123456789abcdef0"})
    assert got.is_alb
    assert not got.alb_plain_http
    assert got.allowed_source_cidrs == ("10.20.0.0/16",)
    assert got.allowed_security_group_ids == ("sg-0123456789abcdef0",)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"vpcId": None}, "endpointType=alb needs vpcId"),
        ({"subnetIds": "subnet-0aaaaaaaaaaaaaaa1"}, "at least two subnets"),
        ({"subnetIds": "subnet-0aaaaaaaaaaaaaaa1,sub-2"}, "is not a subnet id"),
        ({"certificateArn": None}, "plain HTTP only with the explicit -c albPlainHttp=true"),
        ({"certificateArn": "arn:aws:iam::123456789012:server-certificate/x"}, "is not an ACM certificate ARN"),
        ({"allowedSourceCidrs": None}, "needs allowedSourceCidrs and/or allowedSecurityGroupIds"),
        ({"allowedSourceCidrs": "0.0.0.0/0"}, "list the networks of your task runners"),
        ({"allowedSecurityGroupIds": "group-1"}, "is not a security group id"),
        ({"vpcEndpointIds": "vpce-0123456789abcdef0"}, "takes no vpcEndpointIds"),
        ({"albAccessLogBucket": "Bad_Bucket"}, "is not an S3 bucket name"),
        ({"albDomainName": "https://heartbeat.example.com/"}, "albDomainName: 'https://heartbeat.example.com/' is not"),
        ({"albDomainName": "*.example.com"}, "is not a host name"),
        ({"albDomainName": "-bad.example.com"}, "is not a host name"),
    ],
)  # fmt: skip
def test_alb_mode_bad_value_fails_with_a_clear_message(change: dict[str, str | None], named: str) -> None:
    context = {k: v for k, v in {**ALB_CONTEXT, **change}.items() if v is not None}
    with pytest.raises(SettingsError) as excinfo:
        settings(**context)
    assert named in str(excinfo.value)


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"billing": "reserved"}, "billing must be 'on-demand' or 'provisioned'"),
        ({"traceSampling": "5%"}, "traceSampling must be a number from 0 to 1"),
        ({"traceSampling": "1.5"}, "traceSampling must be a number from 0 to 1"),
        ({**ALB_CONTEXT, "traceSampling": "0.01"}, "-c traceSampling=0 to trace no heartbeat"),
    ],
)
def test_cost_options_fail_with_a_clear_message(context: dict[str, str], named: str) -> None:
    base = (
        {} if context.get("endpointType") else {"endpointType": "private", "vpcEndpointIds": "vpce-0123456789abcdef0"}
    )
    with pytest.raises(SettingsError) as excinfo:
        settings(**{**base, **context})
    assert named in str(excinfo.value)


def test_cost_options_are_off_unless_asked_for() -> None:
    got = settings(endpointType="private", vpcEndpointIds="vpce-0123456789abcdef0")
    assert (got.billing, got.is_provisioned, got.trace_sampling) == ("on-demand", False, None)
    assert settings(**ALB_CONTEXT, traceSampling="0").trace_sampling == 0


def test_alb_domain_name_is_read_as_dns_reads_it() -> None:
    assert settings(**ALB_CONTEXT).alb_domain_name is None
    assert settings(**ALB_CONTEXT, albDomainName="HeartBeat.Example.com.").alb_domain_name == "heartbeat.example.com"


def test_alb_only_knobs_are_refused_by_the_rest_api_modes() -> None:
    with pytest.raises(SettingsError) as excinfo:
        settings(endpointType="private", vpcEndpointIds="vpce-0123456789abcdef0", certificateArn="arn:x")
    assert "certificateArn: only -c endpointType=alb takes these" in str(excinfo.value)


def test_api_gateway_account_role_is_off_unless_asked_for() -> None:
    assert (
        settings(endpointType="private", vpcEndpointIds="vpce-0123456789abcdef0").api_gateway_cloudwatch_role is False
    )
    got = settings(endpointType="private", vpcEndpointIds="vpce-0123456789abcdef0", apiGatewayCloudWatchRole="true")
    assert got.api_gateway_cloudwatch_role is True
