"""One synth per access mode, shared by the infra tests of a module."""

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

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

PRIVATE = {"endpointType": "private", "vpcEndpointIds": "vpce-0123456789abcdef0,vpce-0fedcba9876543210"}
REGIONAL = {
    "endpointType": "regional",
    "allowedSourceCidrs": "10.20.0.0/16,192.0.2.0/24",
    "tableEncryption": "customer-managed",
    "alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops-alarms",
    "sweepIntervalMinutes": "2",
    "staleAfterMinutes": "20",
    "throttleRate": "25",
    "throttleBurst": "40",
    "retainData": "false",
    "eventBusName": "ops-bus",
    "staleAfterMinutesByWorkerGroup": '{"fast-etl": 10}',
}


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
    app = cdk.App(outdir=str(outdir), context=context)
    stack = build_app(app)
    app.synth()
    return Synth(Template.from_stack(stack), outdir, stack.stack_name)


@pytest.fixture(scope="session")
def private(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(PRIVATE, tmp_path_factory.mktemp("private"))


@pytest.fixture(scope="session")
def regional(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(REGIONAL, tmp_path_factory.mktemp("regional"))
