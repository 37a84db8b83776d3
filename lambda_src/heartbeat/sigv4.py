"""SigV4 verification: an AWS4-HMAC-SHA256 request checked as AWS checks it, with botocore's own signer.

A pure function of the request as the client signed it (method, path, headers and raw
body), a key lookup and the service's time. It returns the key the request was signed
with, or raises the error AWS answers, in AWS's words (see docs/authentication.md):

- no Authorization header: MissingAuthenticationTokenException (403);
- a malformed one, or no X-Amz-Date: IncompleteSignatureException;
- a scope that is not the request's date, or a time over 5 minutes from the service's
  clock, or a signature that does not match: InvalidSignatureException;
- an unknown or revoked key, or a session token (this service issues none):
  UnrecognizedClientException.

The canonical request is rebuilt from exactly the headers the client lists in
SignedHeaders (SDKs differ: some sign user-agent or content-length, which botocore's
own choice of headers would leave out), and the payload hash is always the hash of the
raw body, never a header's claim. The region and service in the client's scope are
taken as stated: keys are this service's own, so a signature is valid only with the
key's secret whatever the scope says, and clients differ there (boto 2 derives both
from the endpoint's host name). Signatures are compared in constant time.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from heartbeat.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_SKEW_SECONDS = 5 * 60
# What every heartbeat must sign: where it went, when, and which operation it is.
REQUIRED_SIGNED_HEADERS = ("host", "x-amz-date", "x-amz-target")
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")

MISSING_TOKEN_MESSAGE = "Request is missing Authentication Token"  # noqa: S105 - AWS's words, not a secret
INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."  # noqa: S105
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


class SigningKey(Protocol):
    """What verification needs of a key: its secret."""

    @property
    def secret_access_key(self) -> str: ...


KeyT = TypeVar("KeyT", bound=SigningKey)


@dataclass(frozen=True)
class SignedRequest:
    """A request as the client signed it: the path of its request line (with any stage or base path, as
    sent), every header as received (names in any case, a repeated header once per value, in order), the
    query's decoded pairs and the raw body."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    query: tuple[tuple[str, str], ...] = ()

    def values(self, name: str) -> list[str]:
        """Every value of a header, in the order received."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def header(self, name: str) -> str | None:
        """A header's last value, as the front doors' single-value maps hold it."""
        found = self.values(name)
        return found[-1] if found else None


@dataclass(frozen=True)
class Authorization:
    """The parts of an AWS4-HMAC-SHA256 Authorization header."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str


def verify(
    request: SignedRequest,
    lookup: Callable[[str], KeyT | None],
    now: float,
    required_headers: tuple[str, ...] = REQUIRED_SIGNED_HEADERS,
) -> KeyT:
    """The key that signed the request, or the error AWS would answer.

    The cheap checks (form, scope, time) come before the lookup, so a malformed or stale
    request never costs a read of the key store.
    """
    header = request.header("Authorization")
    if header is None or not header.strip():
        raise MissingAuthenticationTokenException(MISSING_TOKEN_MESSAGE)
    amz_date = request.header("X-Amz-Date")
    authorization = parse_authorization(header, has_date=amz_date is not None)
    amz_date = amz_date or ""  # present: parse_authorization refuses a request without one
    signed_at = _parse_amz_date(amz_date)
    missing = [name for name in required_headers if name not in authorization.signed_headers]
    if missing:
        raise IncompleteSignatureException(
            " ".join(f"'{_title(name)}' must be a 'SignedHeader' in the AWS Authorization." for name in missing)
        )
    if authorization.terminator != TERMINATOR:
        raise InvalidSignatureException(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{authorization.terminator}'."
        )
    if authorization.date != amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{authorization.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    _check_time(amz_date, signed_at, now)
    if request.values("X-Amz-Security-Token"):
        raise UnrecognizedClientException(INVALID_TOKEN_MESSAGE)  # this service issues no session tokens
    key = lookup(authorization.access_key_id)
    if key is None:
        raise UnrecognizedClientException(INVALID_TOKEN_MESSAGE)
    try:
        expected = expected_signature(request, authorization, key.secret_access_key, amz_date)
    except UnicodeError:  # a lone surrogate in a header or the path: no client signed that
        raise InvalidSignatureException(MISMATCH_MESSAGE) from None
    if not hmac.compare_digest(expected.encode(), authorization.signature.encode("utf-8", "surrogatepass")):
        raise InvalidSignatureException(MISMATCH_MESSAGE)
    return key


def parse_authorization(header: str, has_date: bool = True) -> Authorization:
    """Split an Authorization header into its parts, or raise IncompleteSignatureException in AWS's words."""
    algorithm, _, rest = header.strip().partition(" ")
    parameters: dict[str, str] = {}
    if algorithm == ALGORITHM:
        for pair in (p.strip() for p in rest.split(",")):
            name, equals, value = pair.partition("=")
            if not equals:
                raise IncompleteSignatureException(
                    "Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 "
                    f"and encoded with Base64): '{_hashed(header)}'."
                )
            parameters[name.strip()] = value.strip()
    required = ("Credential", "Signature", "SignedHeaders")
    problems = [f"Authorization header requires '{name}' parameter." for name in required if not parameters.get(name)]
    if not has_date:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise IncompleteSignatureException(
            " ".join(problems) + f" Authorization (hashed with SHA-256 and encoded with Base64): '{_hashed(header)}'"
        )
    credential = parameters["Credential"].split("/")
    if len(credential) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{parameters['Credential']}'"
        )
    access_key_id, date, region, service, terminator = credential
    return Authorization(
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=service,
        terminator=terminator,
        signed_headers=tuple(name.strip().lower() for name in parameters["SignedHeaders"].split(";")),
        signature=parameters["Signature"],
    )


def expected_signature(request: SignedRequest, authorization: Authorization, secret: str, amz_date: str) -> str:
    """The signature botocore's signer makes of this request, for the headers and scope the client stated."""
    signer = _AsSigned(request, authorization, secret)
    # The path as sent; a "?" or "#" in it (a front door's decoded %3F or %23) must not end it inside the URL.
    path = request.path.replace("?", "%3F").replace("#", "%23")
    signable = AWSRequest(method=request.method, url="https://verifier.invalid" + path)
    # botocore takes a list of pairs too, which keeps repeated names.
    signable.params = list(request.query)  # type: ignore[assignment]
    signable.context["timestamp"] = amz_date
    canonical_request = signer.canonical_request(signable)
    string_to_sign = signer.string_to_sign(signable, canonical_request)
    return str(signer.signature(string_to_sign, signable))


class _AsSigned(SigV4Auth):
    """botocore's signer, told which headers the client signed and the hash of the body received.

    headers_to_sign is exactly the client's SignedHeaders (botocore's own choice leaves out
    user-agent and others that some SDKs sign); a signed Content-Length that the front door
    dropped (API Gateway does) is the body's length, which is what it said. The payload hash
    is the raw body's, whatever an X-Amz-Content-SHA256 header claims.
    """

    def __init__(self, request: SignedRequest, authorization: Authorization, secret: str) -> None:
        super().__init__(Credentials(authorization.access_key_id, secret), authorization.service, authorization.region)
        self._request = request
        self._signed = frozenset(authorization.signed_headers)
        self._payload_hash = hashlib.sha256(request.body).hexdigest()

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers = _SignedHeaders()
        for name, value in self._request.headers:
            lowered = name.lower()
            if lowered in self._signed:
                # The payload's own hash stands for the header's claim: a body that does not match it
                # then fails as a mismatch, exactly as a changed body does.
                headers.add(lowered, self._payload_hash if lowered == "x-amz-content-sha256" else value)
        if "content-length" in self._signed and "content-length" not in headers:
            headers.add("content-length", str(len(self._request.body)))
        return headers  # type: ignore[return-value]

    def payload(self, request: AWSRequest) -> str:
        return self._payload_hash


class _SignedHeaders:
    """The signed headers as botocore's canonical_headers reads them (names, then each name's values).

    Not botocore's HTTPHeaders, an email.message: it turns a value outside ASCII into a Header object,
    which botocore's canonical form cannot join; here every value stays the string received.
    """

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self._values.setdefault(name, []).append(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def get_all(self, name: str) -> list[str]:
        return self._values.get(name, [])


def _parse_amz_date(amz_date: str) -> float:
    try:
        if not _AMZ_DATE.fullmatch(amz_date):
            raise ValueError(amz_date)
        return float(calendar.timegm(time.strptime(amz_date, AMZ_DATE_FORMAT)))
    except ValueError:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def _check_time(amz_date: str, signed_at: float, now: float) -> None:
    if signed_at < now - MAX_SKEW_SECONDS:
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than {_format(now - MAX_SKEW_SECONDS)} "
            f"({_format(now)} - 5 min.)"
        )
    if signed_at > now + MAX_SKEW_SECONDS:
        raise InvalidSignatureException(
            f"Signature not yet current: {amz_date} is still later than {_format(now + MAX_SKEW_SECONDS)} "
            f"({_format(now)} + 5 min.)"
        )


def _format(moment: float) -> str:
    return time.strftime(AMZ_DATE_FORMAT, time.gmtime(moment))


def _hashed(header: str) -> str:
    """A header value as AWS quotes it in errors: hashed, so that no log holds a usable signature."""
    return base64.b64encode(hashlib.sha256(header.encode("utf-8", "surrogatepass")).digest()).decode()


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))
