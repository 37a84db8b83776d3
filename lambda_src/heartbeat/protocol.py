"""The awsJson 1.1 protocol, as AWS Data Pipeline speaks it.

Requests: POST / with ``X-Amz-Target: DataPipeline.<Operation>`` and a JSON object
body (an empty body reads as ``{}``). Responses: a compact JSON body with
``Content-Type: application/x-amz-json-1.1``, ``Date`` and ``x-amzn-RequestId``;
errors add ``x-amzn-ErrorType`` and carry ``{"__type": code, "message": text}``,
the code being the bare shape name (botocore reads ``__type``, the JS and Java
SDKs read the header first).
"""

from __future__ import annotations

import base64
import binascii
import json
from email.utils import formatdate
from typing import Any

from aws_lambda_powertools.event_handler import Response

from heartbeat.errors import RequestEntityTooLargeException, SerializationException, ServiceError

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_HEADER = "X-Amz-Target"
TARGET_PREFIX = "DataPipeline."
MAX_BODY_BYTES = 64 * 1024


def body_bytes(body: str | None, is_base64_encoded: bool) -> bytes:
    """The request body's bytes, refusing one over MAX_BODY_BYTES before any parsing."""
    if not body:
        return b""
    # Cheap early refusal: base64 takes 4 characters per 3 bytes, UTF-8 at least 1 byte a character.
    if len(body) > (MAX_BODY_BYTES // 3 + 1) * 4 if is_base64_encoded else len(body) > MAX_BODY_BYTES:
        raise _too_large()
    if is_base64_encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise SerializationException("The request body is not valid base64") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    return raw


def parse_object(raw: bytes) -> dict[str, Any]:
    """Decode a body as a JSON object, raising SerializationException for anything else."""
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
        document = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise SerializationException("The request body is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise SerializationException("The request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise SerializationException("The request body must be a JSON object")
    return document


def success(document: dict[str, Any], request_id: str) -> Response[str]:
    """A 200 answer carrying the operation's output."""
    return Response(
        status_code=200,
        content_type=CONTENT_TYPE,
        body=_compact(document),
        headers=_headers(request_id),
    )


def error(exc: ServiceError, request_id: str) -> Response[str]:
    """An error in the awsJson envelope, with the bare code in body and header alike."""
    headers = _headers(request_id)
    headers["x-amzn-ErrorType"] = exc.code
    return Response(
        status_code=exc.status,
        content_type=CONTENT_TYPE,
        body=_compact({"__type": exc.code, "message": exc.message}),
        headers=headers,
    )


def _headers(request_id: str) -> dict[str, str]:
    # The Date header is the real time of the answer, whatever clock the rules were given.
    return {"Date": formatdate(usegmt=True), "x-amzn-RequestId": request_id}


def _compact(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _too_large() -> RequestEntityTooLargeException:
    return RequestEntityTooLargeException(f"The request body must not exceed {MAX_BODY_BYTES} bytes")
