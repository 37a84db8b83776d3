"""cdk-nag and cfn-lint on the synthesized templates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from heartbeat_local.process import ROOT
from tests.infra.conftest import Synth

# W3005: CDK adds a DependsOn on each function's role policy that a GetAtt already implies; harmless.
CFN_LINT_IGNORED = "W3005"


@pytest.mark.parametrize("mode", ["private", "regional", "alb", "alb_plain_http"])
def test_cdk_nag_aws_solutions_has_no_open_finding(mode: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(mode)
    reports = {report["pluginName"]: report for report in synth.nag_report["pluginReports"]}
    report = reports["AwsSolutions"]
    assert report["violations"] == []  # errors and warnings alike
    assert report["conclusion"] == "success"
    # CDK's own warnings (e.g. on imported subnets) would print on every synth: none is left open.
    assert reports.get("Construct Annotations", {"violations": []})["violations"] == []


def test_every_acknowledged_finding_carries_a_reason(private: Synth) -> None:
    [report] = [r for r in private.nag_report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    suppressed = report["suppressedViolations"]
    assert suppressed
    for violation in suppressed:
        assert len(violation["reason"]) > 40, violation["ruleName"]


@pytest.mark.parametrize("mode", ["private", "regional", "alb"])
def test_cfn_lint_finds_nothing(mode: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(mode)
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), "--ignore-checks", CFN_LINT_IGNORED, "--", str(synth.template_file)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def cdk_cli(*args: str, outdir: Path) -> subprocess.CompletedProcess[str]:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "run 'npm ci' (make test does)"
    env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true"}
    return subprocess.run(
        [str(cdk), "synth", "--no-notices", "--no-version-reporting", "--quiet", "-o", str(outdir), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_cdk_cli_synthesizes_with_the_example_context_and_no_warning(tmp_path: Path) -> None:
    result = cdk_cli("-c", "endpointType=private", "-c", "vpcEndpointIds=vpce-0123456789abcdef0", outdir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "TaskRunnerHeartbeat.template.json").is_file()
    # e.g. "80 feature flags are not configured": cdk.json carries the pinned CDK's recommended flags.
    assert "feature flag" not in result.stderr + result.stdout


def test_cdk_cli_without_access_context_stops_with_the_clear_message(tmp_path: Path) -> None:
    result = cdk_cli(outdir=tmp_path)
    assert result.returncode != 0
    assert "Cannot synthesize: No access context given." in result.stderr
