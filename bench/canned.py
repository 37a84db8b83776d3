"""DynamoDB answered with canned HTTP responses: what a client does around the network is measured.

Stubber answers before the request is built, so it leaves out serializing, signing, sending and
parsing. Here a request goes all the way to botocore's ``before-send`` (in process) or over a
loopback socket (``canned_endpoint``, for a fresh interpreter), and the answer is parsed as
DynamoDB's own would be. Every attempt is counted at ``before-send``, so retries count.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse

from tests.support import canned_response

# A steady runner's record, as UpdateItem with ReturnValues=ALL_NEW answers it.
RUNNER_ATTRIBUTES: dict[str, Any] = {
    "taskrunnerId": {"S": "i-0a1b2c3d4e5f67890-taskrunner"}, "status": {"S": "active"},
    "firstSeen": {"N": "1795521600.000"}, "lastSeen": {"N": "1795522500.000"},
    "heartbeatCount": {"N": "42"}, "expiresAt": {"N": "1796127300"},
    "hostname": {"S": "ip-10-20-31-42.eu-west-1.compute.internal"}, "workerGroup": {"S": "etl-workers-prod"},
}  # fmt: skip
UPDATE_ITEM_ANSWER = json.dumps({"Attributes": RUNNER_ATTRIBUTES}).encode()
THROTTLED_ANSWER = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    }
).encode()
HEADERS = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "canned"}


class Attempts:
    """HTTP attempts a botocore client sends, by operation, counted at before-send (retries included)."""

    def __init__(self, client: Any) -> None:
        self.counts: Counter[str] = Counter()
        client.meta.events.register("before-send.dynamodb", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        self.counts[request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1]] += 1

    @contextlib.contextmanager
    def measuring(self) -> Iterator[Counter[str]]:
        self.counts.clear()
        snapshot: Counter[str] = Counter()
        yield snapshot
        snapshot.update(self.counts)


class CannedDynamoDB:
    """Answers every request of a client at before-send: throttled `throttle_first` times, then success."""

    def __init__(self, client: Any, throttle_first: int = 0) -> None:
        self.throttles_left = throttle_first
        client.meta.events.register_last("before-send.dynamodb", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        if self.throttles_left > 0:
            self.throttles_left -= 1
            return canned_response(request.url, 400, THROTTLED_ANSWER, HEADERS)
        return canned_response(request.url, 200, UPDATE_ITEM_ANSWER, HEADERS)


@contextlib.contextmanager
def canned_endpoint() -> Iterator[str]:
    """A loopback DynamoDB endpoint that answers every request with UPDATE_ITEM_ANSWER; yields its URL."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    @Request.application
    def answer(request: Request) -> Response:
        request.get_data()
        return Response(UPDATE_ITEM_ANSWER, headers=HEADERS)

    server = make_server("127.0.0.1", 0, answer, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
