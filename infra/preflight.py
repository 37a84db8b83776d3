"""What `make deploy` checks in the target account and region before `cdk deploy`.

Synth makes no AWS call, so a missing dependency would otherwise surface only as an opaque
CloudFormation failure half-way through a deploy. Each problem found is one line that names it
and what to pass instead. Run as `python -m infra.preflight -c key=value ...` (the deploy's context): it
checks the account and region `cdk deploy` would target (infra/target.py) and prints that region, which
`make deploy` passes to `cdk deploy --region`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.api import STAGE
from infra.functions import POWERTOOLS_VERSION, powertools_parameter_name
from infra.settings import DEFAULT_STACK_NAME, DeploySettings, SettingsError
from infra.target import cdk_profile, cdk_region, missing_region_message

ROOT = Path(__file__).resolve().parent.parent


def check(context: Mapping[str, Any], session: boto3.session.Session) -> list[str]:
    """Every problem a deploy with this context would hit in the session's account and region, one line each."""
    try:
        settings = DeploySettings.from_context(context.get)
    except SettingsError as error:
        return [str(error).splitlines()[0].rstrip(":") + " (see docs/deploy.md)"]
    region = session.region_name
    if not region:
        return [missing_region_message()]
    checks: list[Callable[[DeploySettings, boto3.session.Session, str], list[str]]] = [_powertools_layer]
    if settings.alarm_topic_arn:
        checks.append(_alarm_topic)
    if not settings.is_alb:
        stack_name = str(context.get("stackName") or DEFAULT_STACK_NAME)

        def execution_log_group(_: DeploySettings, session: boto3.session.Session, region: str) -> list[str]:
            return _execution_log_group(stack_name, session, region)

        checks.append(execution_log_group)
    if settings.is_private:
        checks.append(_vpc_endpoints)
    if settings.is_alb:
        checks += [_vpc_and_subnets, _certificate, _security_groups, _access_log_bucket]
    elif not settings.api_gateway_cloudwatch_role:
        checks.append(_api_gateway_logging_role)
    problems: list[str] = []
    for one in checks:
        try:
            problems += one(settings, session, region)
        except (ClientError, BotoCoreError) as error:
            problems.append(f"Could not check ({one.__name__.strip('_').replace('_', ' ')}): {error}")
    return problems


def _powertools_layer(settings: DeploySettings, session: boto3.session.Session, region: str) -> list[str]:
    override = (
        f"pass -c powertoolsLayerArn=arn:aws:lambda:{region}:<account>:layer:<name>:<version> "
        f"(a Powertools {POWERTOOLS_VERSION} layer for Python 3.13 arm64 in {region})"
    )
    if settings.powertools_layer_arn is not None:
        layer_region = settings.powertools_layer_arn.split(":")[3]
        if layer_region != region:
            return [
                f"powertoolsLayerArn is in {layer_region}, but Lambda takes layers of its own region only: {override}"
            ]
        layer, _, version = settings.powertools_layer_arn.rpartition(":")
        try:
            session.client("lambda").get_layer_version(LayerName=layer, VersionNumber=int(version))
        except ClientError as error:
            if _code(error) in ("ResourceNotFoundException", "AccessDeniedException"):
                return [
                    f"powertoolsLayerArn {settings.powertools_layer_arn} cannot be read ({_code(error)}): {override}"
                ]
            raise
        return []
    name = powertools_parameter_name()
    try:
        session.client("ssm").get_parameter(Name=name)
    except ClientError as error:
        if _code(error) == "ParameterNotFound":
            return [f"The Powertools layer parameter {name} does not exist in {region}: {override}"]
        raise
    return []


def _vpc_endpoints(settings: DeploySettings, session: boto3.session.Session, region: str) -> list[str]:
    ec2 = session.client("ec2")
    by_id: dict[str, Any] = {}
    for vpce in settings.vpc_endpoint_ids:  # one by one: a single unknown id fails the whole call
        try:
            [by_id[vpce]] = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"]
        except ClientError as error:
            if not _code(error).startswith("InvalidVpcEndpointId"):
                raise
    service = f"com.amazonaws.{region}.execute-api"
    problems = []
    for vpce in settings.vpc_endpoint_ids:
        endpoint = by_id.get(vpce)
        if endpoint is None:
            problems.append(f"VPC endpoint {vpce} does not exist in {region}: check -c vpcEndpointIds=...")
        elif endpoint["ServiceName"] != service:
            problems.append(
                f"VPC endpoint {vpce} is for {endpoint['ServiceName']}, not {service}: a private API is reached "
                "only through execute-api interface endpoints (-c vpcEndpointIds=...)"
            )
    return problems


def _vpc_and_subnets(settings: DeploySettings, session: boto3.session.Session, region: str) -> list[str]:
    ec2 = session.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [str(settings.vpc_id)]}])["Vpcs"]
    if not vpcs:
        return [f"VPC {settings.vpc_id} does not exist in {region}: check -c vpcId=..."]
    subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": list(settings.subnet_ids)}])["Subnets"]
    by_id = {subnet["SubnetId"]: subnet for subnet in subnets}
    problems = []
    for subnet_id in settings.subnet_ids:
        subnet = by_id.get(subnet_id)
        if subnet is None:
            problems.append(f"Subnet {subnet_id} does not exist in {region}: check -c subnetIds=...")
        elif subnet["VpcId"] != settings.vpc_id:
            problems.append(
                f"Subnet {subnet_id} is in {subnet['VpcId']}, not {settings.vpc_id}: check -c subnetIds=..."
            )
    zones = {subnet["AvailabilityZone"] for subnet in by_id.values()}
    if not problems and len(zones) < 2:
        problems.append(
            f"The subnets are all in {', '.join(sorted(zones))}: a load balancer needs subnets in at least two "
            "Availability Zones (-c subnetIds=...)"
        )
    return problems


def _certificate(settings: DeploySettings, session: boto3.session.Session, region: str) -> list[str]:
    arn = settings.certificate_arn
    if arn is None:
        return []
    if arn.split(":")[3] != region:
        return [
            f"certificateArn is in {arn.split(':')[3]}, but a load balancer takes certificates of its own region "
            f"({region}): check -c certificateArn=..."
        ]
    try:
        certificate = session.client("acm").describe_certificate(CertificateArn=arn)["Certificate"]
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            return [f"Certificate {arn} does not exist in {region}: check -c certificateArn=..."]
        raise
    problems = []
    if certificate["Status"] != "ISSUED":
        problems.append(
            f"Certificate {arn} is {certificate['Status']}, not ISSUED: a listener needs an issued certificate "
            "(-c certificateArn=...)"
        )
    names = {certificate.get("DomainName", ""), *certificate.get("SubjectAlternativeNames", [])} - {""}
    domain = settings.alb_domain_name
    if domain is not None and not any(covers(name, domain) for name in names):
        problems.append(
            f"Certificate {arn} covers {', '.join(sorted(names))}, not {domain}: clients calling {domain} would "
            "refuse it (check -c albDomainName=... and -c certificateArn=...)"
        )
    return problems


def covers(name: str, host: str) -> bool:
    """Whether a certificate name covers a host name: exactly, or as a wildcard for one leftmost label."""
    name, host = name.lower().rstrip("."), host.lower().rstrip(".")
    if name.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == name[2:]
    return name == host


def _security_groups(settings: DeploySettings, session: boto3.session.Session, region: str) -> list[str]:
    wanted = list(settings.allowed_security_group_ids)
    if not wanted:
        return []
    groups = session.client("ec2").describe_security_groups(Filters=[{"Name": "group-id", "Values": wanted}])
    found = {group["GroupId"] for group in groups["SecurityGroups"]}
    return [
        f"Security group {group} does not exist in {region}: check -c allowedSecurityGroupIds=..."
        for group in wanted
        if group not in found
    ]


def _access_log_bucket(settings: DeploySettings, session: boto3.session.Session, region: str) -> list[str]:
    bucket = settings.alb_access_log_bucket
    if bucket is None:
        return []
    try:
        session.client("s3").head_bucket(Bucket=bucket)
    except ClientError as error:
        return [f"Access log bucket {bucket} cannot be reached ({_code(error)}): check -c albAccessLogBucket=..."]
    return []


def _api_gateway_logging_role(settings: DeploySettings, session: boto3.session.Session, region: str) -> list[str]:
    account = session.client("apigateway").get_account()
    if account.get("cloudwatchRoleArn"):
        return []
    return [
        f"API Gateway in {region} has no CloudWatch Logs role, which the stage's access and error logs need: "
        "set one in API Gateway's settings, or pass -c apiGatewayCloudWatchRole=true to have the stack set it "
        "(it replaces the account's role in this region, and stays after the stack is destroyed)"
    ]


def _alarm_topic(settings: DeploySettings, session: boto3.session.Session, region: str) -> list[str]:
    arn = str(settings.alarm_topic_arn)
    try:
        attributes = session.client("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
    except ClientError as error:
        if _code(error) == "NotFound":
            return [f"Alarm topic {arn} does not exist: check -c alarmTopicArn=..."]
        raise
    if attributes.get("KmsMasterKeyId", "").endswith("alias/aws/sns"):
        return [
            f"Alarm topic {arn} is encrypted with alias/aws/sns, which CloudWatch cannot use: no alarm would arrive; "
            "re-encrypt it with a customer-managed key CloudWatch may use, or leave -c alarmTopicArn out"
        ]
    key = attributes.get("KmsMasterKeyId")
    if key and not _key_lets_cloudwatch_encrypt(session, key):
        return [
            f"Alarm topic {arn} is encrypted with a key whose policy does not let cloudwatch.amazonaws.com use it "
            "(kms:GenerateDataKey*, kms:Decrypt): no alarm would arrive; add that statement to the key policy, "
            "or leave -c alarmTopicArn out"
        ]
    return []


def _key_lets_cloudwatch_encrypt(session: boto3.session.Session, key: str) -> bool:
    """Whether the key policy allows CloudWatch, which calls KMS itself when an alarm publishes; True if unreadable.

    A key of another account cannot have its policy read from here: that is left to the key's owner.
    """
    kms = session.client("kms")
    try:
        key_id = kms.describe_key(KeyId=key)["KeyMetadata"]["KeyId"]
        policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    except ClientError as error:
        if _code(error) in ("AccessDeniedException", "NotFoundException"):
            return True
        raise
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if (
            statement.get("Effect") == "Allow"
            and "cloudwatch.amazonaws.com" in services
            and any(a in ("kms:*", "kms:GenerateDataKey*", "kms:GenerateDataKey") for a in actions)
        ):
            return True
    return False


def _execution_log_group(stack_name: str, session: boto3.session.Session, region: str) -> list[str]:
    """A stack deployed before the execution log group was the stack's own: API Gateway made it, with no retention."""
    try:
        resources = session.client("cloudformation").describe_stack_resources(StackName=stack_name)["StackResources"]
    except ClientError as error:
        if "does not exist" in str(error):
            return []  # a first deploy: API Gateway has not logged anything yet
        raise
    owned = {r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Logs::LogGroup"}
    problems = []
    for api in (r for r in resources if r["ResourceType"] == "AWS::ApiGateway::RestApi"):
        name = f"API-Gateway-Execution-Logs_{api['PhysicalResourceId']}/{STAGE}"
        found = session.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        if name not in owned and any(group["logGroupName"] == name for group in found):
            problems.append(
                f"Log group {name} exists outside the stack (API Gateway created it, with no retention), and the "
                f"stack now creates it with one: delete it first (aws logs delete-log-group --log-group-name {name})"
            )
    return problems


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def read_context(pairs: Sequence[str], cdk_json: Path = ROOT / "cdk.json") -> dict[str, Any]:
    """The context `cdk deploy` would see: cdk.json's, overridden by each -c key=value."""
    context: dict[str, Any] = dict(json.loads(cdk_json.read_text()).get("context", {})) if cdk_json.exists() else {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        context[key.strip()] = value
    return context


class Stop(Exception):
    """A problem that leaves nothing to check: no region, no credentials. Its message is the one line to print."""


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    """Check, one line per problem on stderr; on success print the region checked on stdout, for cdk deploy."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.preflight", description="Check the target account and region before cdk deploy."
    )
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--profile", help="the AWS profile cdk deploy is given, if any")
    args, _cdk_options = parser.parse_known_args(argv)
    try:
        region = cdk_region(env, args.profile)
        if region is None:
            raise Stop(missing_region_message())
        try:
            session = boto3.session.Session(profile_name=cdk_profile(env, args.profile), region_name=region.name)
        except BotoCoreError as error:
            raise Stop(f"{error}: check --profile and your AWS configuration") from None
        account = account_of(session)
    except Stop as stop:
        return _fail([str(stop)])
    problems = check(read_context(args.context), session)
    if problems:
        summary = f"{len(problems)} problem(s) in account {account}, {region.name}; nothing was deployed"
        return _fail([*problems, summary])
    print(f"preflight: account {account}, region {region.name} (from {region.source}): ready", file=sys.stderr)
    print(region.name)
    return 0


def account_of(session: boto3.session.Session) -> str:
    """The account the session's credentials belong to; Stop with the fix when there are none, or they are refused."""
    profile = "" if session.profile_name == "default" else f" for profile {session.profile_name}"
    if session.get_credentials() is None:
        raise Stop(
            f"No AWS credentials found{profile}: run `aws configure` (or `aws sso login`), pass --profile in CONTEXT, "
            "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    try:
        return str(session.client("sts").get_caller_identity()["Account"])
    except ClientError as error:
        raise Stop(f"The AWS credentials{profile} were refused ({_code(error)}): renew them, or pass others") from None
    except BotoCoreError as error:  # an expired SSO token, a failing credential_process, no network...
        raise Stop(f"Could not use the AWS credentials{profile}: {error}") from None


def _fail(problems: list[str]) -> int:
    for problem in problems:
        print(f"preflight: {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
