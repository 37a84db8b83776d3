"""The stack's authentication: -c auth=sigv4 (the default) gives the keys table and sealing key, granted narrowly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from heartbeat.config import AuthMode
from heartbeat.key_secrets import PURPOSE
from heartbeat.store.keys import PARTITION_KEY
from infra import access_keys
from infra.settings import AUTH_MODES, DeploySettings, SettingsError
from tests.infra.conftest import PRIVATE, Synth, synth
from tests.infra.test_stack import actions_on, function, only, role_statements

HANDLER, SWEEPER = "heartbeat.handler.lambda_handler", "heartbeat.sweeper.lambda_handler"


@pytest.fixture(scope="session")
def open_stack(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """-c auth=none: the network is the only boundary."""
    return synth({**PRIVATE, "stackName": "HeartbeatNoAuth", "auth": "none"}, tmp_path_factory.mktemp("no-auth"))


def environment(synth: Synth, handler: str) -> dict[str, Any]:
    _, props = function(synth.template, handler)
    return props["Properties"]["Environment"]["Variables"]  # type: ignore[no-any-return]


def keys_table(synth: Synth) -> tuple[str, dict[str, Any]]:
    found = synth.template.find_resources(
        "AWS::DynamoDB::Table", {"Properties": {"KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}]}}
    )
    assert len(found) == 1
    return next(iter(found.items()))


def sealing_key(synth: Synth) -> tuple[str, dict[str, Any]]:
    env = environment(synth, HANDLER)
    key_id = env["KEYS_KMS_KEY_ID"]["Fn::GetAtt"][0]
    return key_id, synth.template.to_json()["Resources"][key_id]


def test_the_code_and_the_stack_name_the_same_modes_keys_table_and_purpose() -> None:
    assert tuple(mode.value for mode in AuthMode) == AUTH_MODES
    assert AUTH_MODES[0] == AuthMode.SIGV4.value  # secure by default, in the stack as in the function
    assert access_keys.PARTITION_KEY == PARTITION_KEY
    assert PURPOSE["purpose"] == access_keys.PURPOSE


def test_authentication_is_on_by_default_for_both_functions(private: Synth) -> None:
    table_id, _ = keys_table(private)
    key_id, _ = sealing_key(private)
    for handler in (HANDLER, SWEEPER):
        env = environment(private, handler)
        assert env["AUTH_MODE"] == "sigv4"
        assert env["KEYS_TABLE_NAME"] == {"Ref": table_id}
        assert env["KEYS_KMS_KEY_ID"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_keys_table_is_on_demand_keyed_on_access_key_id_with_pitr_and_kept(private: Synth) -> None:
    _, table = keys_table(private)
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert "TimeToLiveSpecification" not in props  # a key never expires by itself: it is revoked


def test_sealing_key_rotates_and_is_kept_with_the_data(private: Synth, regional: Synth) -> None:
    _, key = sealing_key(private)
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    _, key = sealing_key(regional)  # retainData=false
    assert key["DeletionPolicy"] == "Delete"


def test_keys_table_takes_the_customer_managed_key_when_the_runners_table_does(regional: Synth) -> None:
    _, table = keys_table(regional)
    sse = table["Properties"]["SSESpecification"]
    assert (sse["SSEEnabled"], sse["SSEType"]) == (True, "KMS")
    assert "RunnersKey" in sse["KMSMasterKeyId"]["Fn::GetAtt"][0]


def test_only_the_handler_may_open_secrets_and_only_those_sealed_as_access_keys(private: Synth) -> None:
    key_id, _ = sealing_key(private)
    handler_statements = role_statements(private.template, function(private.template, HANDLER)[1]["Properties"])
    [decrypt] = [s for s in handler_statements if "kms:Decrypt" in str(s["Action"])]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert decrypt["Condition"] == {"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE["purpose"]}}
    assert actions_on(handler_statements, "kms:") == {"kms:Decrypt"}  # never Encrypt: it issues no keys
    sweeper_statements = role_statements(private.template, function(private.template, SWEEPER)[1]["Properties"])
    assert actions_on(sweeper_statements, "kms:") == set()


def test_outputs_give_the_auth_mode_keys_table_and_sealing_key(private: Synth) -> None:
    outputs = private.template.to_json()["Outputs"]
    assert outputs["AuthMode"]["Value"] == "sigv4"
    assert outputs["KeysTableName"]["Value"] == {"Ref": keys_table(private)[0]}
    assert outputs["KeysKmsKeyArn"]["Value"] == {"Fn::GetAtt": [sealing_key(private)[0], "Arn"]}


def test_auth_none_deploys_no_keys_and_says_so(open_stack: Synth) -> None:
    for handler in (HANDLER, SWEEPER):
        env = environment(open_stack, handler)
        assert env["AUTH_MODE"] == "none"
        assert "KEYS_TABLE_NAME" not in env
        assert "KEYS_KMS_KEY_ID" not in env
    assert len(open_stack.template.find_resources("AWS::DynamoDB::Table")) == 1
    outputs = open_stack.template.to_json()["Outputs"]
    assert outputs["AuthMode"]["Value"] == "none"
    assert "KeysTableName" not in outputs
    api = only(open_stack.template, "AWS::ApiGateway::RestApi")["Properties"]
    assert api["EndpointConfiguration"]["Types"] == ["PRIVATE"]  # network-only, never open


def test_the_nag_acknowledgment_says_how_callers_are_authenticated(private: Synth, open_stack: Synth) -> None:
    def reason(synth: Synth) -> str:
        text = Path(synth.outdir / "validation-report.json").read_text()
        start = text.index("AwsSolutions-APIG4")
        return text[start : start + 2000]

    assert "verifies each request's SigV4 signature" in reason(private)
    assert "network-only" in reason(open_stack)


@pytest.mark.parametrize("value", ["iam", "SIGV4A", "off"])
def test_an_unknown_auth_mode_is_refused_with_the_choices(value: str) -> None:
    with pytest.raises(SettingsError, match="auth must be 'sigv4'"):
        DeploySettings.from_context({**PRIVATE, "auth": value}.get)
