"""SigV4 verification, pinned to AWS's published test suite and to signatures botocore made, and each refusal."""

from __future__ import annotations

import calendar
import hashlib
import time
from dataclasses import dataclass

import pytest

from heartbeat import sigv4
from heartbeat.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    ServiceError,
    UnrecognizedClientException,
)
from heartbeat.sigv4 import SignedRequest, verify


@dataclass(frozen=True)
class Key:
    secret_access_key: str


def at(amz_date: str) -> float:
    return float(calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")))


class Lookups:
    """A key store of one key, counting how often it is asked."""

    def __init__(self, key_id: str, secret: str) -> None:
        self.keys = {key_id: Key(secret)}
        self.asked = 0

    def __call__(self, key_id: str) -> Key | None:
        self.asked += 1
        return self.keys.get(key_id)


# AWS's Signature Version 4 test suite (as botocore ships it in tests/unit/auth/aws4_testsuite): the
# request as sent and the Authorization its example key produced. Service "service", us-east-1.
SUITE_KEY, SUITE_SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_TIME = "20150830T123600Z"
SUITE_SCOPE = f"Credential={SUITE_KEY}/20150830/us-east-1/service/aws4_request"
SUITE = {
    "post-vanilla": (
        "POST", "/", (), [], b"", "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ),
    "post-x-www-form-urlencoded": (
        "POST", "/", (), [("Content-Type", "application/x-www-form-urlencoded")], b"Param1=value1",
        "content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    ),
    "post-header-key-sort": (
        "POST", "/", (), [("My-Header1", "value1")], b"", "host;my-header1;x-amz-date",
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    ),
    "post-header-value-case": (
        "POST", "/", (), [("My-Header1", "VALUE1")], b"", "host;my-header1;x-amz-date",
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    ),
    "get-header-value-trim": (
        "GET", "/", (), [("My-Header1", " value1"), ("My-Header2", ' "a   b   c"')],
        b"", "host;my-header1;my-header2;x-amz-date",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    "get-header-value-order": (
        "GET", "/", (), [("My-Header1", v) for v in ("value4", "value1", "value3", "value2")],
        b"", "host;my-header1;x-amz-date", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    ),
    "get-vanilla-query-order-key-case": (
        "GET", "/", (("Param2", "value2"), ("Param1", "value1")), [], b"", "host;x-amz-date",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    "get-utf8": (
        "GET", "/\u1234", (), [], b"", "host;x-amz-date",
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    ),
    "post-vanilla-query": (
        "POST", "/", (("Param1", "value1"),), [], b"", "host;x-amz-date",
        "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    ),
}  # fmt: skip


def suite_request(name: str, signature: str | None = None, body: bytes | None = None) -> SignedRequest:
    method, path, query, headers, raw, signed, expected = SUITE[name]
    authorization = f"AWS4-HMAC-SHA256 {SUITE_SCOPE}, SignedHeaders={signed}, Signature={signature or expected}"
    return SignedRequest(
        method=method,
        path=path,
        query=query,
        headers=(
            ("Host", "example.amazonaws.com"),
            *headers,
            ("X-Amz-Date", SUITE_TIME),
            ("Authorization", authorization),
        ),
        body=raw if body is None else body,
    )


def verify_suite(request: SignedRequest) -> Key:
    return verify(request, Lookups(SUITE_KEY, SUITE_SECRET), at(SUITE_TIME), required_headers=("host", "x-amz-date"))


@pytest.mark.parametrize("name", SUITE)
def test_aws_test_suite_signatures_verify(name: str) -> None:
    assert verify_suite(suite_request(name)).secret_access_key == SUITE_SECRET


@pytest.mark.parametrize("name", SUITE)
def test_aws_test_suite_signatures_with_one_digit_changed_are_refused(name: str) -> None:
    expected = SUITE[name][-1]
    changed = expected[:-1] + ("0" if expected[-1] != "0" else "1")
    with pytest.raises(InvalidSignatureException, match="does not match"):
        verify_suite(suite_request(name, signature=changed))


def test_aws_test_suite_request_with_another_body_is_refused() -> None:
    with pytest.raises(InvalidSignatureException):
        verify_suite(suite_request("post-x-www-form-urlencoded", body=b"Param1=value2"))


# A ReportTaskRunnerHeartbeat that botocore signed at 2026-11-24T12:00:00Z with an issued key, for the
# REST API's stage path (/prod/) and for the load balancer's root: exactly the canonical events'.
KEY_ID, SECRET = "HBAKEXAMPLEKEYABCDEF", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = at("20261124T120000Z")
BODY = b'{"taskrunnerId": "runner-0001", "workerGroup": "etl-workers", "hostname": "ip-10-0-1-25.ec2.internal"}'
BOTOCORE_SIGNED = {
    ("abcdef1234.execute-api.us-east-1.amazonaws.com", "/prod/"):
        "d84b26a86532856820819617c8e69b15c41f2266a6101944278756325e5f55c8",
    ("internal-heartbeat-1234567890.us-east-1.elb.amazonaws.com", "/"):
        "483696c59dbc878195356901cf5fcc92ae8f6c841e7d4edc0f8983cd8d7106dc",
}  # fmt: skip
API_HOST, API_PATH = "abcdef1234.execute-api.us-east-1.amazonaws.com", "/prod/"


def heartbeat(
    host: str = API_HOST,
    path: str = API_PATH,
    *,
    signature: str | None = None,
    authorization: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    amz_date: str | None = "20261124T120000Z",
    body: bytes = BODY,
    signed: str = "content-type;host;x-amz-date;x-amz-target",
    scope: str = f"{KEY_ID}/20261124/us-east-1/datapipeline/aws4_request",
) -> SignedRequest:
    if authorization is None:
        signature = signature or BOTOCORE_SIGNED.get((host, path), "0" * 64)
        authorization = f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}"
    headers = [
        ("Host", host),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "DataPipeline.ReportTaskRunnerHeartbeat"),
        ("User-Agent", "aws-cli/1.46.3"),
        *extra,
    ]
    if amz_date is not None:
        headers.append(("X-Amz-Date", amz_date))
    if authorization:
        headers.append(("Authorization", authorization))
    return SignedRequest("POST", path, tuple(headers), body)


@pytest.mark.parametrize(("host", "path"), list(BOTOCORE_SIGNED))
def test_botocore_signed_heartbeat_verifies_for_the_path_and_host_it_was_signed_for(host: str, path: str) -> None:
    lookups = Lookups(KEY_ID, SECRET)
    assert verify(heartbeat(host, path), lookups, NOW) is lookups.keys[KEY_ID]
    assert lookups.asked == 1


@pytest.mark.parametrize(
    "changed",
    [
        {"path": "/"},  # the stage path dropped: what the resolver's event.path says
        {"host": "other.execute-api.us-east-1.amazonaws.com", "signature": BOTOCORE_SIGNED[(API_HOST, API_PATH)]},
        {"body": BODY.replace(b"etl-workers", b"fast")},
        {"body": BODY + b" "},
        {"extra": (("X-Amz-Content-SHA256", hashlib.sha256(b"{}").hexdigest()),), "signed":
         "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target"},
    ],
    ids=["stage-path-dropped", "other-host", "other-body", "trailing-space", "payload-hash-header-lies"],
)  # fmt: skip
def test_a_changed_request_is_refused_as_a_mismatch(changed: dict[str, object]) -> None:
    with pytest.raises(InvalidSignatureException) as excinfo:
        verify(heartbeat(**changed), Lookups(KEY_ID, SECRET), NOW)  # type: ignore[arg-type]
    assert excinfo.value.message == sigv4.MISMATCH_MESSAGE


def test_the_wrong_secret_is_refused() -> None:
    with pytest.raises(InvalidSignatureException, match="does not match"):
        verify(heartbeat(), Lookups(KEY_ID, SECRET.lower()), NOW)


def sign(request: SignedRequest, secret: str = SECRET) -> SignedRequest:
    """The request with the signature botocore's signer makes of it (the verifier's own canonical form)."""
    header = request.header("Authorization") or ""
    authorization = sigv4.parse_authorization(header)
    signature = sigv4.expected_signature(request, authorization, secret, request.header("X-Amz-Date") or "")
    kept = tuple((k, v) for k, v in request.headers if k.lower() != "authorization")
    return SignedRequest(
        request.method, request.path, (*kept, ("Authorization", header.rsplit("=", 1)[0] + "=" + signature)),
        request.body,
    )  # fmt: skip


def test_headers_botocore_would_never_sign_verify_when_the_client_signed_them() -> None:
    # Some SDKs sign user-agent (botocore's own signer always leaves it out) and x-amz-user-agent.
    signed = "content-type;host;user-agent;x-amz-date;x-amz-target;x-amz-user-agent"
    request = sign(heartbeat(signed=signed, extra=(("X-Amz-User-Agent", "aws-sdk-java/1.12"),)))
    assert verify(request, Lookups(KEY_ID, SECRET), NOW).secret_access_key == SECRET
    tampered = SignedRequest(
        request.method, request.path,
        tuple((k, "curl/8" if k == "User-Agent" else v) for k, v in request.headers), request.body,
    )  # fmt: skip
    with pytest.raises(InvalidSignatureException):
        verify(tampered, Lookups(KEY_ID, SECRET), NOW)


def test_a_signed_content_length_that_the_front_door_dropped_is_the_body_length() -> None:
    signed = "content-length;content-type;host;x-amz-date;x-amz-target"
    with_length = sign(heartbeat(signed=signed, extra=(("Content-Length", str(len(BODY))),)))
    dropped = SignedRequest(
        "POST", API_PATH, tuple((k, v) for k, v in with_length.headers if k != "Content-Length"), BODY
    )
    assert verify(dropped, Lookups(KEY_ID, SECRET), NOW)
    longer = SignedRequest("POST", API_PATH, dropped.headers, BODY + b" ")
    with pytest.raises(InvalidSignatureException):
        verify(longer, Lookups(KEY_ID, SECRET), NOW)


def test_an_honest_payload_hash_header_verifies() -> None:
    signed = "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target"
    request = sign(heartbeat(signed=signed, extra=(("X-Amz-Content-SHA256", hashlib.sha256(BODY).hexdigest()),)))
    assert verify(request, Lookups(KEY_ID, SECRET), NOW)


def test_region_and_service_are_accepted_as_the_client_states_them() -> None:
    # boto 2 derives both from the host name: for 127.0.0.1 it states region "127" and service "0".
    request = sign(heartbeat(host="127.0.0.1:8080", path="/", scope=f"{KEY_ID}/20261124/127/0/aws4_request"))
    assert verify(request, Lookups(KEY_ID, SECRET), NOW)


# The refusals, in AWS's words, none of which reads the key store before the request is well formed.


def refused(request: SignedRequest, error: type[ServiceError], now: float = NOW) -> str:
    lookups = Lookups(KEY_ID, SECRET)
    with pytest.raises(error) as excinfo:
        verify(request, lookups, now)
    if error is not UnrecognizedClientException and "does not match" not in excinfo.value.message:
        assert lookups.asked == 0
    return excinfo.value.message


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_signature_is_a_missing_authentication_token(value: str | None) -> None:
    request = heartbeat(authorization=value if value is not None else "")
    if value is None:
        request = SignedRequest("POST", "/", tuple(h for h in request.headers if h[0] != "Authorization"), BODY)
    assert refused(request, MissingAuthenticationTokenException) == "Request is missing Authentication Token"
    assert MissingAuthenticationTokenException.status == 403


@pytest.mark.parametrize(
    ("authorization", "fragment"),
    [
        ("Bearer eyJhbGciOiJIUzI1NiJ9", "Authorization header requires 'Credential' parameter. "
         "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
         "parameter. Authorization (hashed with SHA-256 and encoded with Base64): '"),
        ("AWS4-HMAC-SHA256 Credential", "Invalid key=value pair (missing equal-sign) in Authorization header"),
        ("AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=00", "Credential must have exactly 5 "
         "slash-delimited elements, e.g. keyid/date/region/service/term, got 'a/b/c'"),
        ("AWS4-HMAC-SHA256 Credential=x/20261124/us-east-1/datapipeline/aws4_request, Signature=00",
         "Authorization header requires 'SignedHeaders' parameter."),
        (f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20261124/us-east-1/datapipeline/aws4_request, "
         "SignedHeaders=content-type;host;x-amz-date, Signature=00",
         "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."),
        (f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20261124/us-east-1/datapipeline/aws4_request, "
         "SignedHeaders=x-amz-target, Signature=00",
         "'Host' must be a 'SignedHeader' in the AWS Authorization. 'X-Amz-Date' must be a 'SignedHeader'"),
    ],
)  # fmt: skip
def test_a_malformed_authorization_is_an_incomplete_signature(authorization: str, fragment: str) -> None:
    message = refused(heartbeat(authorization=authorization), IncompleteSignatureException)
    assert fragment in message
    assert "eyJhbGciOiJIUzI1NiJ9" not in message  # the header is quoted hashed, never as sent


def test_no_date_is_an_incomplete_signature() -> None:
    message = refused(heartbeat(amz_date=None), IncompleteSignatureException)
    assert "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header." in message


@pytest.mark.parametrize("amz_date", ["2026-11-24T12:00:00Z", "20261124T1200Z", "20261324T120000Z", "x"])
def test_a_date_not_in_iso_basic_format_is_an_incomplete_signature(amz_date: str) -> None:
    message = refused(heartbeat(amz_date=amz_date), IncompleteSignatureException)
    assert message.startswith(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.")


def test_a_scope_date_that_is_not_the_request_s_is_an_invalid_signature() -> None:
    message = refused(
        heartbeat(scope=f"{KEY_ID}/20261123/us-east-1/datapipeline/aws4_request"), InvalidSignatureException
    )
    assert message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20261123' != '20261124', from '20261124T120000Z'."
    )


def test_a_scope_without_the_aws4_request_terminator_is_an_invalid_signature() -> None:
    message = refused(heartbeat(scope=f"{KEY_ID}/20261124/us-east-1/datapipeline/aws4"), InvalidSignatureException)
    assert message == "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4'."


def test_a_request_signed_over_5_minutes_ago_has_expired() -> None:
    message = refused(heartbeat(), InvalidSignatureException, now=NOW + 301)
    assert message == (
        "Signature expired: 20261124T120000Z is now earlier than 20261124T120001Z (20261124T120501Z - 5 min.)"
    )


def test_a_request_signed_over_5_minutes_ahead_is_not_yet_current() -> None:
    message = refused(heartbeat(), InvalidSignatureException, now=NOW - 301)
    assert message == (
        "Signature not yet current: 20261124T120000Z is still later than 20261124T115959Z (20261124T115459Z + 5 min.)"
    )


@pytest.mark.parametrize("skew", [-300, 300])
def test_a_request_within_5_minutes_of_the_service_s_clock_verifies(skew: int) -> None:
    assert verify(heartbeat(), Lookups(KEY_ID, SECRET), NOW + skew)


def test_an_unknown_key_is_an_unrecognized_client() -> None:
    other = heartbeat(scope="HBAKUNKNOWN000000000/20261124/us-east-1/datapipeline/aws4_request")
    assert refused(other, UnrecognizedClientException) == "The security token included in the request is invalid."


def test_a_session_token_is_an_unrecognized_client_since_none_is_issued() -> None:
    request = heartbeat(extra=(("X-Amz-Security-Token", "FwoGZXIvYXdzE"),))
    assert refused(request, UnrecognizedClientException) == "The security token included in the request is invalid."


@pytest.mark.parametrize("value", ["caf\u00e9", "\ud800", "\x00", "\u2028"])
def test_a_signed_header_outside_ascii_is_a_mismatch_never_a_crash(value: str) -> None:
    request = heartbeat(signed="content-type;host;my-header;x-amz-date;x-amz-target", extra=(("My-Header", value),))
    with pytest.raises(InvalidSignatureException):
        verify(request, Lookups(KEY_ID, SECRET), NOW)
