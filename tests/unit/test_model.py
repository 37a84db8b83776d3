"""The request model: every constraint of the service model, at its boundaries."""

from __future__ import annotations

import pytest

from heartbeat import model
from heartbeat.errors import InvalidRequestException, SerializationException
from heartbeat.model import MODEL_PATTERN, HeartbeatRequest, parse_heartbeat

PATTERN_RULE = f"Member must satisfy regular expression pattern: {MODEL_PATTERN}"
FIELDS = ["taskrunnerId", "workerGroup", "hostname"]


def body(**members: object) -> dict[str, object]:
    return {"taskrunnerId": "r-1", **members}


def violation_message(excinfo: pytest.ExceptionInfo[InvalidRequestException]) -> str:
    return excinfo.value.message


def test_valid_heartbeat_is_parsed_with_every_member() -> None:
    request = parse_heartbeat({"taskrunnerId": "r-1", "workerGroup": "wg", "hostname": "h"})
    assert request == HeartbeatRequest("r-1", "wg", "h")


def test_optional_members_absent_are_none() -> None:
    assert parse_heartbeat({"taskrunnerId": "r-1"}) == HeartbeatRequest("r-1", None, None)


def test_unknown_members_are_ignored() -> None:
    assert parse_heartbeat(body(extra=[1, {"x": None}], Hostname=5)) == HeartbeatRequest("r-1")


def test_missing_taskrunner_id_is_reported_as_null() -> None:
    with pytest.raises(InvalidRequestException) as excinfo:
        parse_heartbeat({"workerGroup": "wg"})
    assert violation_message(excinfo) == (
        "1 validation error detected: "
        "Value null at 'taskrunnerId' failed to satisfy constraint: Member must not be null"
    )


@pytest.mark.parametrize(
    ("field", "length"),
    [
        ("taskrunnerId", 1),
        ("taskrunnerId", 1024),
        ("hostname", 1),
        ("hostname", 1024),
        ("workerGroup", 0),
        ("workerGroup", 1),
        ("workerGroup", 1024),
    ],
)
def test_lengths_inside_the_bounds_are_accepted(field: str, length: int) -> None:
    value = "x" * length
    request = parse_heartbeat(body(**{field: value}))
    assert {"taskrunnerId": request.taskrunner_id, "workerGroup": request.worker_group, "hostname": request.hostname}[
        field
    ] == value


@pytest.mark.parametrize("field", ["taskrunnerId", "hostname"])
def test_empty_id_or_hostname_is_too_short(field: str) -> None:
    with pytest.raises(InvalidRequestException) as excinfo:
        parse_heartbeat(body(**{field: ""}))
    assert violation_message(excinfo) == (
        f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


@pytest.mark.parametrize("field", FIELDS)
def test_1025_code_points_is_too_long(field: str) -> None:
    with pytest.raises(InvalidRequestException) as excinfo:
        parse_heartbeat(body(**{field: "x" * 1025}))
    assert violation_message(excinfo) == (
        f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
        "Member must have length less than or equal to 1024"
    )


@pytest.mark.parametrize("field", FIELDS)
def test_length_counts_code_points_not_utf16_units_or_bytes(field: str) -> None:
    emoji = "\U0001f600"  # 1 code point, 2 UTF-16 units, 4 UTF-8 bytes
    assert parse_heartbeat(body(**{field: emoji * 1024}))
    with pytest.raises(InvalidRequestException, match="less than or equal to 1024"):
        parse_heartbeat(body(**{field: emoji * 1025}))


ALLOWED = {
    "tab": "\t",
    "line feed": "\n",
    "carriage return": "\r",
    "space": " ",
    "last before surrogates": "\ud7ff",
    "first after surrogates": "\ue000",
    "replacement character": "\ufffd",
    "first supplementary": "\U00010000",
    "last code point": "\U0010ffff",
    "non-ASCII letters": "Zoë-東京",
}
FORBIDDEN = {
    "NUL": "\x00",
    "control before tab": "\x08",
    "vertical tab": "\x0b",
    "form feed": "\x0c",
    "control after CR": "\x0e",
    "unit separator": "\x1f",
    "U+FFFE": "\ufffe",
    "U+FFFF": "\uffff",
    "lone high surrogate": "\ud800",
    "lone low surrogate": "\udfff",
    "reversed pair": "\udc00\ud800",
}


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("char", ALLOWED.values(), ids=ALLOWED.keys())
def test_allowed_characters_pass_the_pattern(field: str, char: str) -> None:
    assert parse_heartbeat(body(**{field: f"a{char}b"}))


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("char", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_forbidden_characters_break_the_pattern(field: str, char: str) -> None:
    with pytest.raises(InvalidRequestException) as excinfo:
        parse_heartbeat(body(**{field: f"a{char}b"}))
    assert violation_message(excinfo) == (
        f"1 validation error detected: Value at '{field}' failed to satisfy constraint: {PATTERN_RULE}"
    )


def test_every_violation_is_counted_in_one_message_in_model_order() -> None:
    with pytest.raises(InvalidRequestException) as excinfo:
        parse_heartbeat({"hostname": "\x00" * 1025, "workerGroup": "x" * 2000})
    assert violation_message(excinfo) == (
        "4 validation errors detected: "
        "Value null at 'taskrunnerId' failed to satisfy constraint: Member must not be null; "
        "Value at 'workerGroup' failed to satisfy constraint: Member must have length less than or equal to 1024; "
        "Value at 'hostname' failed to satisfy constraint: Member must have length less than or equal to 1024; "
        f"Value at 'hostname' failed to satisfy constraint: {PATTERN_RULE}"
    )


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (5, "a number"),
        (1.5, "a number"),
        (True, "a boolean"),
        (None, "null"),
        (["r"], "an array"),
        ({"S": "r"}, "an object"),
    ],
)
def test_wrong_json_type_is_a_serialization_error(field: str, value: object, kind: str) -> None:
    with pytest.raises(SerializationException) as excinfo:
        parse_heartbeat(body(**{field: value}))
    assert excinfo.value.message == f"Value at '{field}' must be a JSON string, not {kind}"


def test_forbidden_characters_are_exactly_those_outside_the_model_pattern_over_every_code_point() -> None:
    def allowed(code: int) -> bool:  # the service model's pattern, read over Python's code points
        return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000

    everything = "".join(map(chr, range(0x110000)))
    forbidden = {match.start() for match in model._FORBIDDEN.finditer(everything)}
    assert forbidden == {code for code in range(0x110000) if not allowed(code)}
