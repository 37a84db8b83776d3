"""From a front door's event to the key that signed it: the request rebuilt as the client signed it.

What each front door hands Lambda (checked in AWS's documentation; see docs/authentication.md):

- API Gateway (REST, Lambda proxy): the client's headers, ``Host`` and ``Authorization``
  included, as sent (``multiValueHeaders`` keeps every value; ``Content-Length`` is not passed
  on); ``path`` is the resource path, while ``requestContext.path`` is the path the client
  called and signed: with the stage (``/prod/``) on the execute-api host or a VPC endpoint's,
  with the base path on a custom domain.
- Application Load Balancer: the client's headers as sent (the last value of a repeated one,
  unless the target group's multi-value option is on), the path and the query as sent.
"""

from __future__ import annotations

from urllib.parse import unquote

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from heartbeat import protocol, sigv4
from heartbeat.access_keys import SigningKey
from heartbeat.key_cache import KeyCache


def signed_request(event: BaseProxyEvent) -> sigv4.SignedRequest:
    """The request as the client sent it, from an API Gateway REST proxy or an ALB event."""
    context = event.get("requestContext") or {}
    load_balancer = "elb" in context
    path = event.path if load_balancer else str(context.get("path") or event.path)
    headers: list[tuple[str, str]] = []
    multi = event.get("multiValueHeaders")
    if multi:
        headers = [(str(name), str(value)) for name, values in multi.items() for value in values or ()]
    else:
        headers = [(str(name), str(value)) for name, value in (event.get("headers") or {}).items()]
    query: list[tuple[str, str]] = []
    multi_query = event.get("multiValueQueryStringParameters")
    if multi_query:
        query = [(str(name), str(value)) for name, values in multi_query.items() for value in values or ()]
    else:
        query = [(str(name), str(value)) for name, value in (event.get("queryStringParameters") or {}).items()]
    if load_balancer:  # an ALB passes the query as sent, API Gateway decoded: the verifier takes it decoded
        query = [(unquote(name), unquote(value)) for name, value in query]
    return sigv4.SignedRequest(
        method=event.http_method,
        path=path,
        headers=tuple(headers),
        body=protocol.body_bytes(event.body, bool(event.is_base64_encoded)),
        query=tuple(query),
    )


def authenticate(event: BaseProxyEvent, keys: KeyCache, now: float) -> SigningKey:
    """The active key that signed this request, or the awsJson error AWS would answer (see sigv4.verify)."""
    return sigv4.verify(signed_request(event), keys.signing_key, now)
