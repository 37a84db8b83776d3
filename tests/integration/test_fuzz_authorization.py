"""Generated Authorization headers (and the headers signed beside them): never a 5XX, nothing stored.

Every request is refused with one of AWS's signature errors, in the awsJson envelope, and writes
nothing: no runner, no key count. 2,000 examples per property in `make test`; `make fuzz` runs 50,000.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import TABLE, Authenticated
from tests.integration.test_fuzz import any_text, assert_well_formed, respond
from tests.support import FakeClock, RequestCounter, event_header, heartbeat_event, set_event_header, sign_event

SIGNATURE_ERRORS = {
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The authenticated service on moto, with one issued key, for the whole module."""
    import boto3
    from moto import mock_aws

    from heartbeat.config import AuthMode, Config
    from heartbeat.key_cache import KeyCache
    from heartbeat.key_secrets import KeySecrets
    from heartbeat.store import RunnerStore
    from heartbeat.store.keys import KeyTable
    from heartbeat_local.server import create_keys_kms_key, create_keys_table, create_table, keys_table_name

    with mock_aws():
        dynamodb = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        create_table(dynamodb, TABLE)
        create_keys_table(dynamodb, keys_table_name(TABLE))
        kms = boto3.client("kms", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        secrets = KeySecrets(create_keys_kms_key(kms), client=kms)
        keys = KeyTable(keys_table_name(TABLE), dynamodb)
        clock = FakeClock()
        config = Config(TABLE, auth_mode=AuthMode.SIGV4, keys_table_name=keys.name)
        store = RunnerStore(TABLE, client=dynamodb, keys_table_name=keys.name)
        authenticated = Authenticated(dynamodb, keys, secrets, store, clock, config, KeyCache(keys, secrets, clock))
        issued = authenticated.issue()
        yield authenticated, issued, RequestCounter(dynamodb)


WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
key_ids = st.sampled_from(["HBAKAAAAAAAAAAAAAAAA", "AKIDEXAMPLE", ""]) | any_text
dates = st.sampled_from(["20261124", "20261123", "2026-11-24", ""]) | st.text(max_size=10)
scopes = st.builds(
    lambda key, date, region, service, term: "/".join((key, date, region, service, term)),
    key_ids, dates, st.sampled_from(["us-east-1", "0", ""]) | any_text,
    st.sampled_from(["datapipeline", "127", ""]) | any_text, st.sampled_from(["aws4_request", "aws4", ""]) | any_text,
)  # fmt: skip
signed_lists = st.lists(
    st.sampled_from(["host", "x-amz-date", "x-amz-target", "content-type", "user-agent", "content-length"]) | any_text,
    max_size=6,
).map(";".join)
signatures = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64) | any_text
structured = st.builds(
    lambda algorithm, scope, signed, signature, sep: (
        f"{algorithm} Credential={scope}{sep}SignedHeaders={signed}{sep}Signature={signature}"
    ),
    st.sampled_from(["AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", "AWS", "Bearer"]) | any_text,
    scopes, signed_lists, signatures, st.sampled_from([", ", ",", " ,", ",,", ""]),
)  # fmt: skip
authorizations = structured | any_text | st.none()
amz_dates = st.sampled_from(["20261124T120000Z", "20261124T115000Z", "20991231T235959Z", "", "x"]) | st.none()


@given(authorization=authorizations, amz_date=amz_dates, token=st.none() | any_text)
def test_any_authorization_is_refused_with_a_signature_error_and_stores_nothing(
    target: Any, authorization: str | None, amz_date: str | None, token: str | None
) -> None:
    authenticated, _, calls = target
    event = heartbeat_event({"taskrunnerId": "fuzzed", "workerGroup": "etl"})
    set_event_header(event, "Authorization", authorization)
    set_event_header(event, "X-Amz-Date", amz_date)
    set_event_header(event, "X-Amz-Security-Token", token)
    calls.reset()
    status, body, headers = respond(authenticated.dependencies(), event)
    assert_well_formed(status, body, headers)
    assert status in (400, 403), body
    assert body["__type"] in SIGNATURE_ERRORS, body
    assert not (set(calls.calls) & WRITES)


@given(name=st.sampled_from(["Authorization", "X-Amz-Date", "Host", "X-Amz-Target", "Content-Type"]),
       value=any_text | st.none())  # fmt: skip
def test_a_signed_request_with_one_header_changed_is_refused_and_stores_nothing(
    target: Any, name: str, value: str | None
) -> None:
    authenticated, issued, calls = target
    event = sign_event(
        heartbeat_event({"taskrunnerId": "fuzz-signed", "workerGroup": "etl"}),
        issued.key.access_key_id, issued.secret_access_key, at=authenticated.clock.now,
    )  # fmt: skip
    original = event_header(event, name)
    if value == original:
        return
    set_event_header(event, name, value)
    calls.reset()
    status, body, headers = respond(authenticated.dependencies(), event)
    assert_well_formed(status, body, headers)
    assert status in (400, 403), body
    assert not (set(calls.calls) & WRITES)
    assert (
        authenticated.dynamodb.get_item(TableName=TABLE, Key={"taskrunnerId": {"S": "fuzz-signed"}}).get("Item") is None
    )
