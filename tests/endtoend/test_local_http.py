"""make serve's HTTP layer over raw sockets: malformed requests, framing, the body cap, methods, keep-alive.

Every answer the gateway gives itself is in the awsJson envelope with x-amzn-RequestId and Date,
and a request whose framing cannot be trusted closes the connection after its answer.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from heartbeat_local.process import LocalProcess

TARGET = "DataPipeline.ReportTaskRunnerHeartbeat"
GATEWAY_LIMIT = 10 * 1024 * 1024


SERVE_SETTINGS = {"ACCESS_LOG": "0"}  # make serve's environment for the endpoint fixture (conftest.py)


def exchange(endpoint: LocalProcess, raw: bytes, *, stream: Iterator[bytes] | None = None) -> tuple[bytes, bool]:
    """Send raw bytes (then optionally a stream of more); return everything read and whether the server closed."""
    parts = urlsplit(endpoint.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(raw)
        try:
            for piece in stream or ():
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the client finished: what a cap should do
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if _complete(received):
                    # A complete answer; the server must now close (or it kept the connection alive).
                    sock.settimeout(3)
                    try:
                        return received, sock.recv(1) == b""
                    except TimeoutError:
                        return received, False
        except ConnectionResetError:
            pass
        return received, True


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse(data: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        assert name.lower() not in {k.lower() for k in headers}, f"repeated header {name}"
        headers[name] = value.strip()
    return status, headers, json.loads(body) if body else {}


def assert_gateway_error(data: bytes, status: int, code: str) -> dict[str, str]:
    got_status, headers, body = parse(data)
    assert (got_status, body.get("__type"), headers.get("x-amzn-ErrorType")) == (status, code, code), data[:300]
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-RequestId"]
    assert headers["Date"].endswith("GMT")
    return body


def request(method: str = "POST", body: bytes = b"", extra: str = "", target: str = TARGET) -> bytes:
    head = f"{method} / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: {target}\r\n{extra}"
    if "Transfer-Encoding" not in extra and "Content-Length" not in extra:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def test_chunked_heartbeat_is_served_like_any_other(endpoint: LocalProcess) -> None:
    body = chunked(b'{"taskrunnerId":', b'"chunky"}')
    data, _ = exchange(endpoint, request(body=body, extra="Transfer-Encoding: chunked\r\n"))
    status, headers, answer = parse(data)
    assert (status, answer) == (200, {"terminate": False})
    assert headers["x-amzn-RequestId"]


@pytest.mark.parametrize(
    ("name", "framing"),
    [
        ("chunk size not hex", b"zz\r\n{}\r\n0\r\n\r\n"),
        ("negative chunk size", b"-1\r\n{}\r\n0\r\n\r\n"),
        ("chunk size with sign", b"+2\r\n{}\r\n0\r\n\r\n"),
        ("chunk without its CRLF", b"2\r\n{}XX0\r\n\r\n"),
    ],
)
def test_bad_chunk_framing_gets_400_in_the_envelope_and_the_connection_closed(
    endpoint: LocalProcess, name: str, framing: bytes
) -> None:
    data, closed = exchange(endpoint, request(body=framing, extra="Transfer-Encoding: chunked\r\n"))
    assert_gateway_error(data, 400, "BadRequestException")
    assert closed, name


def test_a_transfer_coding_other_than_chunked_is_refused_and_its_body_never_read_as_a_request(
    endpoint: LocalProcess,
) -> None:
    smuggled = request(body=b'{"taskrunnerId":"smuggled"}')
    data, closed = exchange(endpoint, request(body=chunked(smuggled), extra="Transfer-Encoding: gzip, chunked\r\n"))
    assert_gateway_error(data, 400, "BadRequestException")
    assert closed
    assert data.count(b"HTTP/1.1") == 1  # the body was not served as a second request
    item = endpoint.dynamodb().get_item(TableName=endpoint.table, Key={"taskrunnerId": {"S": "smuggled"}})
    assert "Item" not in item


@pytest.mark.parametrize(
    "header",
    [
        "Content-Length: abc\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
    ],
)
def test_bad_or_ambiguous_content_length_gets_400_and_the_connection_closed(
    endpoint: LocalProcess, header: str
) -> None:
    data, closed = exchange(endpoint, request(body=b"{}", extra=header))
    assert_gateway_error(data, 400, "BadRequestException")
    assert closed


def test_declared_body_over_the_gateway_limit_is_refused_before_it_is_sent(endpoint: LocalProcess) -> None:
    data, closed = exchange(endpoint, request(extra=f"Content-Length: {GATEWAY_LIMIT + 1}\r\n"))
    assert_gateway_error(data, 413, "RequestEntityTooLargeException")
    assert closed


def test_chunked_body_over_the_gateway_limit_is_refused_and_the_connection_closed(endpoint: LocalProcess) -> None:
    piece = b"x" * (1024 * 1024)
    stream = (b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(12))  # 12 MiB, never terminated
    data, closed = exchange(endpoint, request(extra="Transfer-Encoding: chunked\r\n"), stream=stream)
    assert_gateway_error(data, 413, "RequestEntityTooLargeException")
    assert closed


def test_chunked_body_over_64_kib_reaches_the_handler_and_gets_its_413(endpoint: LocalProcess) -> None:
    body = json.dumps({"taskrunnerId": "big-chunked", "pad": "x" * 70_000}).encode()
    data, _ = exchange(
        endpoint, request(body=chunked(body[:40_000], body[40_000:]), extra="Transfer-Encoding: chunked\r\n")
    )
    assert_gateway_error(data, 413, "RequestEntityTooLargeException")
    item = endpoint.dynamodb().get_item(TableName=endpoint.table, Key={"taskrunnerId": {"S": "big-chunked"}})
    assert "Item" not in item


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "BREW"])
def test_a_method_api_gateway_does_not_route_gets_405_in_the_envelope(endpoint: LocalProcess, method: str) -> None:
    data, _ = exchange(endpoint, request(method=method))
    body = assert_gateway_error(data, 405, "MethodNotAllowedException")
    assert method in body["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",  # a TLS hello on plain HTTP
        b"POST / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"P@ST / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nX-Folded: a\r\n  b\r\n\r\n",
    ],
)
def test_garbage_gets_400_in_the_envelope_and_the_connection_closed(endpoint: LocalProcess, raw: bytes) -> None:
    data, closed = exchange(endpoint, raw)
    assert_gateway_error(data, 400, "BadRequestException")
    assert closed


def test_oversized_headers_get_an_answer_in_the_envelope(endpoint: LocalProcess) -> None:
    data, closed = exchange(endpoint, request(extra=f"X-Big: {'a' * 20_000}\r\n"))
    assert_gateway_error(data, 431, "BadRequestException")
    assert closed


def test_pipelined_requests_on_one_connection_each_get_their_own_answer(endpoint: LocalProcess) -> None:
    first = request(body=b'{"taskrunnerId":"pipe-1"}')
    second = request(body=b'{"taskrunnerId":""}')
    parts = urlsplit(endpoint.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(first + second)
        received = b""
        while received.count(b"HTTP/1.1 ") < 2 or not _complete(received[received.rindex(b"HTTP/1.1 ") :]):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    one, two = (b"HTTP/1.1 " + r for r in received.split(b"HTTP/1.1 ")[1:])
    assert parse(one)[0] == 200
    assert_gateway_error(two, 400, "InvalidRequestException")
    assert parse(one)[1]["x-amzn-RequestId"] != parse(two)[1]["x-amzn-RequestId"]
