"""make deploy's preflight against moto: each problem one line naming it and its override; none when all is there."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.ssm.models import Parameter, ssm_backends

from heartbeat_local.process import ROOT
from infra import preflight
from infra.functions import powertools_parameter_name

REGION = "eu-west-1"
LAYER_ARN = f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def publish_powertools_parameter() -> None:
    """AWS's public parameter; moto refuses /aws/ names through the API, so it is stored as AWS would hold it."""
    ssm_backends[DEFAULT_ACCOUNT_ID][REGION]._parameters[powertools_parameter_name()].append(
        Parameter(
            account_id=DEFAULT_ACCOUNT_ID, name=powertools_parameter_name(), value=LAYER_ARN, parameter_type="String",
            description=None, allowed_pattern=None, keyid=None, version=1, data_type="text",
            last_modified_date=datetime.datetime.now(datetime.UTC),
        )
    )  # fmt: skip


def set_api_gateway_logging_role(session: boto3.session.Session) -> None:
    session.client("apigateway").update_account(
        patchOperations=[
            {"op": "replace", "path": "/cloudwatchRoleArn", "value": "arn:aws:iam::123456789012:role/apigw-logs"}
        ]
    )


def execute_api_endpoint(
    session: boto3.session.Session,
    service: str = f"com.amazonaws.{REGION}.execute-api",
    endpoint_url: str | None = None,
) -> str:
    ec2 = session.client("ec2", endpoint_url=endpoint_url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=service, VpcEndpointType="Interface")
    return str(endpoint["VpcEndpoint"]["VpcEndpointId"])


def private(vpce: str, **more: str) -> dict[str, Any]:
    return {"endpointType": "private", "vpcEndpointIds": vpce, **more}


def test_a_private_deploy_with_everything_in_place_passes(aws: boto3.session.Session) -> None:
    publish_powertools_parameter()
    set_api_gateway_logging_role(aws)
    assert preflight.check(private(execute_api_endpoint(aws)), aws) == []


def test_missing_powertools_parameter_names_it_and_the_override(aws: boto3.session.Session) -> None:
    set_api_gateway_logging_role(aws)
    [line] = preflight.check(private(execute_api_endpoint(aws)), aws)
    assert line.startswith(f"The Powertools layer parameter {powertools_parameter_name()} does not exist in {REGION}")
    assert f"-c powertoolsLayerArn=arn:aws:lambda:{REGION}:" in line


def test_a_given_layer_replaces_the_parameter_and_must_exist_in_the_region(aws: boto3.session.Session) -> None:
    set_api_gateway_logging_role(aws)
    vpce = execute_api_endpoint(aws)
    [line] = preflight.check(private(vpce, powertoolsLayerArn=LAYER_ARN), aws)  # not published here
    assert f"powertoolsLayerArn {LAYER_ARN} cannot be read" in line
    layer = aws.client("lambda").publish_layer_version(
        LayerName="powertools", Content={"ZipFile": b"PK\x05\x06" + b"\0" * 18}, CompatibleRuntimes=["python3.13"]
    )
    assert preflight.check(private(vpce, powertoolsLayerArn=layer["LayerVersionArn"]), aws) == []
    other_region = layer["LayerVersionArn"].replace(REGION, "us-east-1")
    [line] = preflight.check(private(vpce, powertoolsLayerArn=other_region), aws)
    assert "powertoolsLayerArn is in us-east-1, but Lambda takes layers of its own region only" in line


def test_missing_or_wrong_vpc_endpoints_each_get_their_line(aws: boto3.session.Session) -> None:
    publish_powertools_parameter()
    set_api_gateway_logging_role(aws)
    good = execute_api_endpoint(aws)
    s3 = execute_api_endpoint(aws, f"com.amazonaws.{REGION}.s3")
    problems = preflight.check(private(f"{good},vpce-0123456789abcdef0,{s3}"), aws)
    assert problems == [
        f"VPC endpoint vpce-0123456789abcdef0 does not exist in {REGION}: check -c vpcEndpointIds=...",
        f"VPC endpoint {s3} is for com.amazonaws.{REGION}.s3, not com.amazonaws.{REGION}.execute-api: a private API "
        "is reached only through execute-api interface endpoints (-c vpcEndpointIds=...)",
    ]


def test_account_without_api_gateway_logging_role_is_told_both_ways_out(aws: boto3.session.Session) -> None:
    publish_powertools_parameter()
    [line] = preflight.check(private(execute_api_endpoint(aws)), aws)
    assert line.startswith(f"API Gateway in {REGION} has no CloudWatch Logs role")
    assert "-c apiGatewayCloudWatchRole=true" in line
    # Asking the stack to set the role is the other way out: then there is nothing to check.
    assert preflight.check(private(execute_api_endpoint(aws), apiGatewayCloudWatchRole="true"), aws) == []


def test_a_private_range_for_a_regional_api_is_one_line_pointing_to_private_mode(aws: boto3.session.Session) -> None:
    [line] = preflight.check({"endpointType": "regional", "allowedSourceCidrs": "10.0.0.0/16"}, aws)
    assert "\n" not in line
    assert "-c endpointType=private -c vpcEndpointIds=vpce-..." in line


def test_no_region_is_one_line(aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    no_region = boto3.session.Session()
    [line] = preflight.check(private("vpce-0123456789abcdef0"), no_region)
    assert line.startswith("No AWS region configured")


def alb_network(session: boto3.session.Session, zones: tuple[str, ...]) -> dict[str, str]:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(zones)
    ]
    runners = ec2.create_security_group(GroupName="runners", Description="task runners", VpcId=vpc)["GroupId"]
    return {"vpcId": vpc, "subnetIds": ",".join(subnets), "allowedSecurityGroupIds": runners}


def imported_certificate(session: boto3.session.Session, *names: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names = names or ("heartbeat.example.internal",)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    alternative = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30)).add_extension(alternative, critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    arn = session.client("acm").import_certificate(
        Certificate=cert.public_bytes(serialization.Encoding.PEM),
        PrivateKey=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )["CertificateArn"]
    return str(arn)


def test_an_alb_deploy_with_everything_in_place_passes(aws: boto3.session.Session) -> None:
    publish_powertools_parameter()  # and no API Gateway role needed: there is no API
    context = {"endpointType": "alb", **alb_network(aws, (f"{REGION}a", f"{REGION}b")),
               "certificateArn": imported_certificate(aws)}  # fmt: skip
    assert preflight.check(context, aws) == []


def test_the_alb_domain_name_must_be_one_the_certificate_covers(aws: boto3.session.Session) -> None:
    publish_powertools_parameter()
    network = alb_network(aws, (f"{REGION}a", f"{REGION}b"))
    certificate = imported_certificate(aws, "heartbeat.example.internal", "*.runners.example.internal")
    context = {"endpointType": "alb", **network, "certificateArn": certificate}
    for covered in ("heartbeat.example.internal", "HEARTBEAT.example.internal.", "hb.runners.example.internal"):
        assert preflight.check({**context, "albDomainName": covered}, aws) == [], covered
    for not_covered in ("example.internal", "a.b.runners.example.internal", "runners.example.internal"):
        [line] = preflight.check({**context, "albDomainName": not_covered}, aws)
        assert line == (
            f"Certificate {certificate} covers *.runners.example.internal, heartbeat.example.internal, not "
            f"{not_covered}: clients calling {not_covered} would refuse it (check -c albDomainName=... and "
            "-c certificateArn=...)"
        )


def test_alb_network_and_certificate_problems_each_get_their_line(aws: boto3.session.Session) -> None:
    publish_powertools_parameter()
    network = alb_network(aws, (f"{REGION}a", f"{REGION}a"))
    pending = aws.client("acm").request_certificate(DomainName="heartbeat.example.com")["CertificateArn"]
    context = {"endpointType": "alb", **network, "certificateArn": pending,
               "allowedSecurityGroupIds": f"{network['allowedSecurityGroupIds']},sg-0123456789abcdef0",
               "albAccessLogBucket": "no-such-heartbeat-logs"}  # fmt: skip
    assert preflight.check(context, aws) == [
        f"The subnets are all in {REGION}a: a load balancer needs subnets in at least two Availability Zones "
        "(-c subnetIds=...)",
        f"Certificate {pending} is PENDING_VALIDATION, not ISSUED: a listener needs an issued certificate "
        "(-c certificateArn=...)",
        f"Security group sg-0123456789abcdef0 does not exist in {REGION}: check -c allowedSecurityGroupIds=...",
        "Access log bucket no-such-heartbeat-logs cannot be reached (404): check -c albAccessLogBucket=...",
    ]
    context = {
        **context,
        "vpcId": "vpc-0123456789abcdef0",
        "allowedSecurityGroupIds": network["allowedSecurityGroupIds"],
    }
    context.pop("albAccessLogBucket")
    assert preflight.check(context, aws)[0] == f"VPC {context['vpcId']} does not exist in {REGION}: check -c vpcId=..."


def test_main_prints_one_line_per_problem_and_fails(
    aws: boto3.session.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert preflight.main(["-c", "endpointType=private", "-c", "vpcEndpointIds=vpce-0123456789abcdef0"]) == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["preflight"] * 4
    assert "powertoolsLayerArn" in lines[0]
    assert "vpce-0123456789abcdef0 does not exist" in lines[1]
    assert "apiGatewayCloudWatchRole" in lines[2]
    assert lines[3] == f"preflight: 3 problem(s) in account {DEFAULT_ACCOUNT_ID}, {REGION}; nothing was deployed"
    assert out == ""  # no region for cdk deploy


def test_main_checks_the_region_cdk_deploy_would_use_and_prints_it_for_cdk_deploy(
    aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Everything is in place in eu-west-1 only. The CDK CLI reads AWS_REGION first (boto3 never reads it).
    publish_powertools_parameter()
    set_api_gateway_logging_role(aws)
    argv = ["-c", "endpointType=private", "-c", f"vpcEndpointIds={execute_api_endpoint(aws)}"]
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", REGION)
    assert preflight.main(argv) == 0
    out, err = capsys.readouterr()
    assert out == f"{REGION}\n"
    assert err == f"preflight: account {DEFAULT_ACCOUNT_ID}, region {REGION} (from AWS_REGION): ready\n"
    monkeypatch.delenv("AWS_REGION")  # now the CDK CLI would deploy to us-east-1: that is what is checked
    assert preflight.main(argv) == 1
    assert "does not exist in us-east-1" in capsys.readouterr().err


def test_no_credentials_is_one_line_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", REGION)
    assert preflight.main(["-c", "endpointType=private", "-c", "vpcEndpointIds=vpce-0123456789abcdef0"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "preflight: No AWS credentials found: run `aws configure` (or `aws sso login`), pass --profile in CONTEXT, "
        "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )


def test_make_deploy_passes_the_region_the_preflight_checked_to_cdk_deploy() -> None:
    """make deploy for real, against moto's server, with `echo` standing in for the CDK CLI."""
    with moto_server() as url:
        env = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            env.pop(name, None)
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="x")
        layer = session.client("lambda", endpoint_url=url).publish_layer_version(
            LayerName="powertools", Content={"ZipFile": b"PK\x05\x06" + b"\0" * 18}, CompatibleRuntimes=["python3.13"]
        )["LayerVersionArn"]
        vpce = execute_api_endpoint(session, endpoint_url=url)
        context = (f"-c endpointType=private -c vpcEndpointIds={vpce} -c powertoolsLayerArn={layer} "
                   "-c apiGatewayCloudWatchRole=true")  # fmt: skip
        result = subprocess.run(
            ["make", "--no-print-directory", "deploy", f"CONTEXT={context}", "CDK=echo cdk", "REQUIRE_APPROVAL=never"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [deployed] = [line for line in result.stdout.splitlines() if line.startswith("cdk deploy")]
    assert f"--region {REGION} --require-approval never" in deployed
    assert f"region {REGION} (from AWS_REGION): ready" in result.stderr


def test_make_deploy_runs_cdk_deploy_only_after_a_passing_preflight() -> None:
    result = subprocess.run(
        ["make", "-n", "deploy", "CONTEXT=-c endpointType=private -c vpcEndpointIds=vpce-0123456789abcdef0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    # One shell command: cdk deploy runs only if the preflight succeeded, with the region it printed.
    [command] = [line for line in result.stdout.replace("\\\n", " ").splitlines() if "cdk deploy" in line]
    assert command.startswith("region=$(.venv/bin/python -m infra.preflight -c endpointType=private")
    assert ") &&  node_modules/.bin/cdk deploy" in command
    assert '--region "$region"' in command
    assert "--require-approval" not in command  # asked for only with REQUIRE_APPROVAL=...


def test_a_given_alarm_topic_under_the_aws_managed_key_is_refused(aws: boto3.session.Session) -> None:
    publish_powertools_parameter()
    set_api_gateway_logging_role(aws)
    sns = aws.client("sns")
    managed = sns.create_topic(Name="ops", Attributes={"KmsMasterKeyId": "alias/aws/sns"})["TopicArn"]
    [line] = preflight.check(private(execute_api_endpoint(aws), alarmTopicArn=managed), aws)
    assert line.startswith(f"Alarm topic {managed} is encrypted with alias/aws/sns, which CloudWatch cannot use")
    missing = managed.replace(":ops", ":gone")
    [line] = preflight.check(private(execute_api_endpoint(aws), alarmTopicArn=missing), aws)
    assert line == f"Alarm topic {missing} does not exist: check -c alarmTopicArn=..."


def test_an_upgrade_over_api_gateways_own_execution_log_group_is_told_to_delete_it(
    aws: boto3.session.Session,
) -> None:
    # Stacks deployed before this one let API Gateway create the group (no retention); creating it now
    # under the same name would fail the deploy half-way.
    publish_powertools_parameter()
    set_api_gateway_logging_role(aws)
    template = {"Resources": {"Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "old"}}}}
    aws.client("cloudformation").create_stack(StackName="HeartbeatOld", TemplateBody=json.dumps(template))
    [api] = aws.client("cloudformation").describe_stack_resources(StackName="HeartbeatOld")["StackResources"]
    context = private(execute_api_endpoint(aws), stackName="HeartbeatOld")
    assert preflight.check(context, aws) == []  # nothing logged yet: nothing in the way
    name = f"API-Gateway-Execution-Logs_{api['PhysicalResourceId']}/v1"
    aws.client("logs").create_log_group(logGroupName=name)
    [line] = preflight.check(context, aws)
    assert line.startswith(f"Log group {name} exists outside the stack")
    assert f"aws logs delete-log-group --log-group-name {name}" in line


def test_main_checks_the_profile_cdk_deploy_is_given(
    aws: boto3.session.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    # CONTEXT may carry --profile for cdk deploy: the preflight must look at that account, not the default one.
    argv = ["-c", "endpointType=private", "-c", "vpcEndpointIds=vpce-0123456789abcdef0", "--profile", "no-such-profile"]
    assert preflight.main(argv) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("preflight: The config profile (no-such-profile) could not be found")


def test_a_given_alarm_topic_under_a_key_cloudwatch_may_not_use_is_refused(aws: boto3.session.Session) -> None:
    # CloudWatch itself calls KMS when an alarm publishes to an encrypted topic: the key policy must name it.
    publish_powertools_parameter()
    set_api_gateway_logging_role(aws)
    kms, sns = aws.client("kms"), aws.client("sns")
    closed = kms.create_key()["KeyMetadata"]["KeyId"]  # the default key policy: this account's IAM only
    kms.create_alias(AliasName="alias/ops-alarms", TargetKeyId=closed)
    topic = sns.create_topic(Name="ops", Attributes={"KmsMasterKeyId": "alias/ops-alarms"})["TopicArn"]
    [line] = preflight.check(private(execute_api_endpoint(aws), alarmTopicArn=topic), aws)
    assert line.startswith(f"Alarm topic {topic} is encrypted with a key whose policy does not let cloudwatch")
    open_to_cloudwatch = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root"}, "Action": "kms:*",
             "Resource": "*"},
            {"Effect": "Allow", "Principal": {"Service": ["cloudwatch.amazonaws.com"]},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"},
        ],
    }  # fmt: skip
    kms.put_key_policy(KeyId=closed, PolicyName="default", Policy=json.dumps(open_to_cloudwatch))
    assert preflight.check(private(execute_api_endpoint(aws), alarmTopicArn=topic), aws) == []
