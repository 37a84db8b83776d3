"""Generated bad input: whatever arrives, the answer is well-formed awsJson, never a 5XX, and nothing is written.

2,000 examples per property in `make test`; `make fuzz` runs 50,000.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from heartbeat.config import Config
from heartbeat.handler import Dependencies, make_handler
from heartbeat.store import RunnerStore
from heartbeat_local.server import create_table
from tests.support import FakeClock, LambdaContext, RequestCounter, heartbeat_event

CLIENT_FAULT_STATUSES = {400, 403, 404, 405, 413}  # 403: no signature, with authentication on
MEMBERS = ["taskrunnerId", "workerGroup", "hostname"]


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[Dependencies, RequestCounter]]:
    """One in-memory table for the whole module (Hypothesis runs many examples per test)."""
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        create_table(client, "fuzz")
        dependencies = Dependencies(Config("fuzz"), RunnerStore("fuzz", client=client), FakeClock())
        yield dependencies, RequestCounter(client)


def respond(dependencies: Dependencies, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    result = make_handler(lambda: dependencies)(event, LambdaContext())  # type: ignore[arg-type]
    headers = {**(result.get("headers") or {}), **{k: v[0] for k, v in (result.get("multiValueHeaders") or {}).items()}}
    return result["statusCode"], json.loads(result["body"]), headers


def assert_well_formed(status: int, body: dict[str, Any], headers: dict[str, Any]) -> None:
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-RequestId"]
    assert headers["Date"]
    if status == 200:
        assert set(body) == {"terminate"}
        assert isinstance(body["terminate"], bool)
    else:
        assert status in CLIENT_FAULT_STATUSES, (status, body)
        assert set(body) == {"__type", "message"}
        assert headers["x-amzn-ErrorType"] == body["__type"]
        assert isinstance(body["message"], str)
        assert body["message"]


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
# Strings from every class the pattern cares about: controls, surrogates, U+FFFE/FFFF, supplementary.
EDGE_CHARACTERS = (
    "\x00\x07\t\n\r\x0b\x1f \u00e9\ud7ff\ud800\udbff\udc00\udfff\ue000\ufffd\ufffe\uffff\U00010000\U0010ffff"
)
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40) | st.text(
    alphabet=st.sampled_from(EDGE_CHARACTERS), max_size=20
)
# Every character the model's pattern allows, of every UTF-8 length (1 to 4 bytes).
valid_characters = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="\ufffe\uffff"
) | st.sampled_from("\t\n\r\x7f\x85\x9f")
# Long values, valid and not: DynamoDB limits a key to 2,048 bytes, the model a value to 1,024 code points
# (up to 4,096 bytes), so these cross both limits: runs of one character of each width, random valid text
# repeated up to 1,024 code points (cheap to draw), values a few bytes either side of 2,048, and values a few
# code points over 1,024.
long_values = (
    st.builds(lambda char, count: char * count, st.sampled_from(["a", "\u00e9", "\u4e2d", "\U0001f600", "\U0010ffff"]),
              st.integers(1, 1024))
    | st.builds(lambda text, count: (text * count)[:1024], st.text(alphabet=valid_characters, min_size=1, max_size=16),
                st.integers(64, 1024))
    | st.builds(lambda pad, tail: "\u4e2d" * 682 + "a" * pad + tail, st.integers(0, 3),
                st.sampled_from(["", "\t", "\u00e9", "\U0001f600"]))
    | st.builds(lambda char, count: char * count, st.sampled_from(["a", "\U0001f600"]), st.integers(1025, 1030))
)  # fmt: skip
member_values = any_text | long_values | json_values


@st.composite
def heartbeat_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Objects with the members present or not, of any type and content, plus extra members."""
    document: dict[str, Any] = {}
    for member in MEMBERS:
        if draw(st.booleans()):
            document[member] = draw(member_values)
    document.update(draw(st.dictionaries(st.text(max_size=12), json_values, max_size=3)))
    return document


def encode(document: Any) -> bytes:
    # surrogatepass: lone surrogates go out as JSON escapes, as a client's JSON encoder would send them
    return json.dumps(document).encode("utf-8", "surrogatepass")


bodies = (
    heartbeat_documents().map(encode)
    | json_values.map(encode)
    | st.binary(max_size=300)
    | st.builds(lambda d: b"[" * d + b"]" * d, st.integers(1, 30_000))
    | st.builds(lambda n: encode({"taskrunnerId": "r", "pad": "x" * n}), st.integers(60_000, 80_000))
    | st.sampled_from([b"", b"   ", b"null", b"{", b'{"taskrunnerId":"a","taskrunnerId":7}', b'{"a": NaN}'])
)
targets = st.one_of(
    st.just("DataPipeline.ReportTaskRunnerHeartbeat"),
    st.none(),
    st.sampled_from(["DataPipeline.PollForTask", "datapipeline.reporttaskrunnerheartbeat", "", " ", "DataPipeline."]),
    st.text(max_size=40),
)


@given(body=bodies, target=targets, as_base64=st.booleans())
def test_any_body_and_target_get_a_well_formed_answer_and_a_refusal_writes_nothing(
    fuzz_target: tuple[Dependencies, RequestCounter], body: bytes, target: str | None, as_base64: bool
) -> None:
    dependencies, calls = fuzz_target
    if as_base64:
        event = heartbeat_event(body, target=target)
    else:
        event = heartbeat_event(body.decode("utf-8", "replace"), target=target)
    calls.reset()
    status, answer_body, headers = respond(dependencies, event)
    assert_well_formed(status, answer_body, headers)
    if status != 200:
        assert sum(calls.calls.values()) == 0  # a refused request never reaches the store


@given(
    method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "POST"]),
    path=st.sampled_from(["/", "/x", "/DataPipeline", "//", "/v1/"]) | st.text(max_size=20).map(lambda p: "/" + p),
    header_case=st.sampled_from(["X-Amz-Target", "x-amz-target", "X-AMZ-TARGET"]),
)
@settings(max_examples=300)
def test_any_method_path_and_header_casing_get_a_well_formed_answer(
    fuzz_target: tuple[Dependencies, RequestCounter], method: str, path: str, header_case: str
) -> None:
    dependencies, calls = fuzz_target
    event = heartbeat_event({"taskrunnerId": "fuzz-method"}, target=None, method=method, path=path)
    event["headers"][header_case] = "DataPipeline.ReportTaskRunnerHeartbeat"
    event["multiValueHeaders"][header_case] = ["DataPipeline.ReportTaskRunnerHeartbeat"]
    calls.reset()
    status, body, headers = respond(dependencies, event)
    assert_well_formed(status, body, headers)
    if method == "POST" and path.strip("/") == "":  # the resolver reads "//" as the root too
        assert status == 200
    else:
        assert status in {404, 405}
        assert sum(calls.calls.values()) == 0


valid_ids = st.text(alphabet=valid_characters, min_size=1, max_size=40) | long_values.filter(lambda v: len(v) <= 1024)


@given(taskrunner_id=valid_ids, hostname=st.none() | valid_ids, worker_group=st.none() | st.just("") | valid_ids)
@settings(max_examples=settings.default.max_examples // 20)  # 100 in make test, 2,500 in make fuzz
def test_every_valid_heartbeat_answers_200_and_is_stored_under_its_own_id(
    fuzz_target: tuple[Dependencies, RequestCounter], taskrunner_id: str, hostname: str | None, worker_group: str | None
) -> None:
    dependencies, _ = fuzz_target
    document = {"taskrunnerId": taskrunner_id, "hostname": hostname, "workerGroup": worker_group}
    status, body, headers = respond(
        dependencies, heartbeat_event(encode({k: v for k, v in document.items() if v is not None}))
    )
    assert_well_formed(status, body, headers)
    assert status == 200, body
    runner = dependencies.store.get_runner(taskrunner_id)
    assert runner is not None
    assert runner.taskrunner_id == taskrunner_id
    if hostname is not None:  # (one absent leaves the last one sent: ids repeat across examples)
        assert runner.hostname == hostname


def test_base64_garbage_is_a_serialization_error(fuzz_target: tuple[Dependencies, RequestCounter]) -> None:
    event = heartbeat_event(b"{}")
    event["body"] = "%%%not-base64%%%"
    status, body, headers = respond(fuzz_target[0], event)
    assert_well_formed(status, body, headers)
    assert (status, body["__type"]) == (400, "SerializationException")


def test_valid_documents_of_every_character_class_are_accepted_or_refused_cleanly(
    fuzz_target: tuple[Dependencies, RequestCounter],
) -> None:
    dependencies, _ = fuzz_target
    for char in ["\t", "\n", "\r", " ", "\ud7ff", "\ue000", "\ufffd", "\U00010000", "\U0010ffff"]:
        status, _, _ = respond(dependencies, heartbeat_event(encode({"taskrunnerId": f"ok{char}"})))
        assert status == 200, repr(char)
    encoded = base64.b64encode(encode({"taskrunnerId": "ok\udfff"})).decode()
    event = heartbeat_event(b"{}")
    event["body"] = encoded
    assert respond(dependencies, event)[0] == 400
