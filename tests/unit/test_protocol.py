"""The awsJson 1.1 layer: body decoding and the response envelopes."""

from __future__ import annotations

import base64
import json

import pytest

from heartbeat import protocol
from heartbeat.errors import InvalidRequestException, RequestEntityTooLargeException, SerializationException


@pytest.mark.parametrize("raw", [b"", b"  \n\t "])
def test_empty_body_reads_as_empty_object(raw: bytes) -> None:
    assert protocol.parse_object(raw) == {}


def test_object_body_is_decoded() -> None:
    assert protocol.parse_object(b'{"taskrunnerId":"r-\\u00e9"}') == {"taskrunnerId": "r-é"}


def test_duplicate_keys_keep_the_last_value() -> None:
    assert protocol.parse_object(b'{"taskrunnerId":"a","taskrunnerId":"b"}') == {"taskrunnerId": "b"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe{}", "The request body is not valid UTF-8"),
        (b'{"taskrunnerId": "r-1"', "The request body is not valid JSON"),
        (b"{'taskrunnerId': 'r'}", "The request body is not valid JSON"),
        (b'{"a": NaN}', "The request body is not valid JSON"),
        (b'{"a": -Infinity}', "The request body is not valid JSON"),
        (b"[" * 50_000 + b"]" * 50_000, "The request body is not valid JSON"),
        (b'["taskrunnerId"]', "The request body must be a JSON object"),
        (b'"r-1"', "The request body must be a JSON object"),
        (b"null", "The request body must be a JSON object"),
        (b"42", "The request body must be a JSON object"),
    ],
)
def test_anything_but_a_json_object_is_a_serialization_error(raw: bytes, message: str) -> None:
    with pytest.raises(SerializationException) as excinfo:
        protocol.parse_object(raw)
    assert excinfo.value.message == message


def test_body_of_exactly_64_kib_is_read() -> None:
    raw = b"x" * protocol.MAX_BODY_BYTES
    assert protocol.body_bytes(raw.decode(), False) == raw
    assert protocol.body_bytes(base64.b64encode(raw).decode(), True) == raw


@pytest.mark.parametrize("size", [protocol.MAX_BODY_BYTES + 1, 10 * protocol.MAX_BODY_BYTES])
def test_body_over_64_kib_is_refused_as_too_large(size: int) -> None:
    raw = b"x" * size
    for body, encoded in ((raw.decode(), False), (base64.b64encode(raw).decode(), True)):
        with pytest.raises(RequestEntityTooLargeException):
            protocol.body_bytes(body, encoded)


def test_multibyte_text_body_is_measured_in_utf8_bytes() -> None:
    text = "é" * (protocol.MAX_BODY_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
    with pytest.raises(RequestEntityTooLargeException):
        protocol.body_bytes(text, False)


def test_invalid_base64_is_a_serialization_error() -> None:
    with pytest.raises(SerializationException):
        protocol.body_bytes("not base64!", True)


def test_success_is_compact_json_with_protocol_headers() -> None:
    response = protocol.success({"terminate": False}, "req-1")
    assert response.status_code == 200
    assert response.body == '{"terminate":false}'
    assert response.content_type == "application/x-amz-json-1.1"
    assert response.headers["x-amzn-RequestId"] == "req-1"
    assert response.headers["Date"].endswith(" GMT")


def test_error_carries_bare_code_in_body_and_header() -> None:
    response = protocol.error(InvalidRequestException("bad"), "req-2")
    assert response.status_code == 400
    assert json.loads(str(response.body)) == {"__type": "InvalidRequestException", "message": "bad"}
    assert response.headers["x-amzn-ErrorType"] == "InvalidRequestException"
    assert response.headers["x-amzn-RequestId"] == "req-2"
