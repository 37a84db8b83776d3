"""One synth per front door, shared by all the infra tests of a run (each synth takes seconds)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app
from heartbeat_local.process import ROOT

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

PRIVATE = {"endpointType": "private", "vpcEndpointIds": "vpce-0123456789abcdef0,vpce-0fedcba9876543210"}
REGIONAL = {
    "stackName": "HeartbeatEu",
    "endpointType": "regional",
    "allowedSourceCidrs": "203.0.113.0/24,198.51.100.7/32",
    "apiGatewayCloudWatchRole": "true",
    "tableEncryption": "customer-managed",
    "alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops-alarms",
    "sweepIntervalMinutes": "2",
    "sweepWorkers": "16",
    "staleAfterMinutes": "20",
    "throttleRate": "25",
    "throttleBurst": "40",
    "retainData": "false",
    "eventBusName": "ops-bus",
    "staleAfterMinutesByWorkerGroup": '{"fast-etl": 10}',
    "billing": "provisioned",
    "traceSampling": "0.001",
}

ALB = {
    "stackName": "HeartbeatAlb",
    "endpointType": "alb",
    "vpcId": "vpc-0123456789abcdef0",
    "subnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2",
    "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/01234567-89ab-cdef-0123-456789abcdef",
    "allowedSourceCidrs": "10.20.0.0/16,2001:db8::/56",
    "allowedSecurityGroupIds": "sg-0123456789abcdef0",
    "albDomainName": "Heartbeat.Example.Internal.",
    "retireOnSignals": "true",
}
# The one way to get a plain-HTTP listener: no certificate, and the explicit opt-in.
ALB_PLAIN_HTTP = {
    **{k: v for k, v in ALB.items() if k not in ("certificateArn", "albDomainName")},
    "stackName": "HeartbeatAlbHttp",
    "albPlainHttp": "true",
    "albAccessLogBucket": "heartbeat-alb-logs",
    "traceSampling": "0",
}
# The feature flags cdk.json gives the CLI's synth; the tests synthesize with the same.
FEATURE_FLAGS: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synth:
    """A synthesized app: its template, its output folder and cdk-nag's report."""

    template: Template
    outdir: Path
    stack_name: str

    @property
    def template_file(self) -> Path:
        return self.outdir / f"{self.stack_name}.template.json"

    @property
    def nag_report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())  # type: ignore[no-any-return]


def synth(context: dict[str, str], outdir: Path) -> Synth:
    """Synthesize the app as `cdk synth` would, cdk-nag included (an open finding fails synth)."""
    app = cdk.App(outdir=str(outdir), context={**FEATURE_FLAGS, **context})
    stack = build_app(app)
    app.synth()
    return Synth(Template.from_stack(stack), outdir, stack.stack_name)


@pytest.fixture(scope="session")
def private(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(PRIVATE, tmp_path_factory.mktemp("private"))


@pytest.fixture(scope="session")
def regional(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(REGIONAL, tmp_path_factory.mktemp("regional"))


@pytest.fixture(scope="session")
def alb(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(ALB, tmp_path_factory.mktemp("alb"))


@pytest.fixture(scope="session")
def alb_plain_http(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(ALB_PLAIN_HTTP, tmp_path_factory.mktemp("alb-plain-http"))
