"""Context settings: secure by default, a clear message for every bad value."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
    assert "allowedSourceCidrs=0.0.0.0/0" in message


def test_app_without_access_context_exits_with_one_clear_line() -> None:
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("Cannot synthesize: No access context given.")
    assert "Traceback" not in result.stderr


def test_defaults_match_the_readme() -> None:
    got = settings(endpointType="private", vpcEndpointIds="vpce-0123456789abcdef0")
    assert (got.stale_after_minutes, got.retention_days, got.sweep_interval_minutes) == (45, 7, 5)
    assert (got.throttle_rate, got.throttle_burst, got.log_retention_days) == (50, 100, 30)
    assert (got.mass_stale_fraction, got.table_encryption, got.retain_data) == (0.5, "aws-owned", True)
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
        ({"endpointType": "public"}, "endpointType must be 'private' or 'regional'"),
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
