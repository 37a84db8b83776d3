"""The ReportTaskRunnerHeartbeat request, checked exactly as the AWS service model does.

Constraints from the model (datapipeline 2012-10-29): taskrunnerId is required,
length 1..1024; workerGroup 0..1024; hostname 1..1024; all three match
``[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*``. Lengths count
Unicode code points. Unknown members are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from heartbeat.errors import InvalidRequestException, SerializationException

MAX_LENGTH = 1024
# The pattern as the service model writes it, quoted verbatim in error messages.
MODEL_PATTERN = "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*"
# Its meaning over Python's code points: the surrogate-pair range of the Java-style
# pattern is every supplementary code point; a lone surrogate (from a JSON escape
# such as "\ud800") matches nothing. Written as the complement it is (C0 controls but
# tab, LF and CR; surrogates; U+FFFE and U+FFFF): the negated form spanning U+10FFFF
# took re.compile tens of milliseconds, a tenth of the handler's cold start.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Member:
    """One string member of the request shape and its constraints."""

    name: str
    min_length: int
    required: bool = False


# In the order of the service model's shape, which is the order violations are listed in.
MEMBERS = (
    Member("taskrunnerId", min_length=1, required=True),
    Member("workerGroup", min_length=0),
    Member("hostname", min_length=1),
)


@dataclass(frozen=True)
class HeartbeatRequest:
    """A valid heartbeat. workerGroup is an exact, case-sensitive value; absent is None."""

    taskrunner_id: str
    worker_group: str | None = None
    hostname: str | None = None


def parse_heartbeat(document: dict[str, Any]) -> HeartbeatRequest:
    """Check a decoded JSON object against the model and return the request.

    Raises SerializationException for a member of the wrong JSON type and
    InvalidRequestException, listing every violation in AWS's wording, otherwise.
    """
    for member in MEMBERS:
        if member.name in document and not isinstance(document[member.name], str):
            raise SerializationException(
                f"Value at '{member.name}' must be a JSON string, not {_json_type(document[member.name])}"
            )
    violations = [v for member in MEMBERS for v in _violations(member, document.get(member.name))]
    if violations:
        count = len(violations)
        noun = "error" if count == 1 else "errors"
        raise InvalidRequestException(f"{count} validation {noun} detected: " + "; ".join(violations))
    return HeartbeatRequest(
        taskrunner_id=document["taskrunnerId"],
        worker_group=document.get("workerGroup"),
        hostname=document.get("hostname"),
    )


def _violations(member: Member, value: str | None) -> list[str]:
    if value is None:
        if member.required:
            return [f"Value null at '{member.name}' failed to satisfy constraint: Member must not be null"]
        return []
    found = []
    prefix = f"Value at '{member.name}' failed to satisfy constraint: Member must"
    if len(value) < member.min_length:
        found.append(f"{prefix} have length greater than or equal to {member.min_length}")
    if len(value) > MAX_LENGTH:
        found.append(f"{prefix} have length less than or equal to {MAX_LENGTH}")
    if _FORBIDDEN.search(value):
        found.append(f"{prefix} satisfy regular expression pattern: {MODEL_PATTERN}")
    return found


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object"
