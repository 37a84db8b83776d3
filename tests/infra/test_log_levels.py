"""Lambda's log-level filtering reads the handlers' levels: their timestamps are RFC 3339.

Lambda (JSON log format) takes a line's "level" only when its "timestamp" is valid RFC 3339; any other
line, the EMF metric lines included (they have no level), is filed as INFO. With Powertools' default
timestamp ("2026-11-25 21:58:54,504+0000") every line was INFO, so a level of WARN would have dropped
the ERROR lines with the rest.
"""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import datetime
from typing import Any

import pytest

from heartbeat.handler import lambda_handler
from heartbeat.observability import SERVICE, logger
from tests.infra.conftest import Synth
from tests.support import LambdaContext, answer, heartbeat_event

# RFC 3339, section 5.6: date-time = full-date "T" full-time, with "t"/"z" and a space allowed in place of "T"
# by its note; Lambda's own example uses "T" and "Z".
RFC_3339 = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
SEVERITY = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def level_lambda_reads(line: str) -> str:
    """The level Lambda files an application log line under, as its documentation states it."""
    try:
        document: Any = json.loads(line)
    except ValueError:
        return "INFO"
    if not isinstance(document, dict):
        return "INFO"
    level = str(document.get("level", "")).upper()
    if level not in SEVERITY or not RFC_3339.match(str(document.get("timestamp", ""))):
        return "INFO"
    return level


def kept(lines: list[str], application_log_level: str) -> list[str]:
    floor = SEVERITY.index(application_log_level)
    return [line for line in lines if SEVERITY.index(level_lambda_reads(line)) >= floor]


@pytest.fixture
def handler_lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What the real handler writes to stdout for a heartbeat that fails: the logger's lines, as Powertools
    formats them, and the EMF line. With no region configured the store cannot be built."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("TABLE_NAME", "t")
    sink = io.StringIO()
    capture = logging.StreamHandler(sink)  # Powertools' handler holds the stdout of import time
    capture.setFormatter(logger.registered_formatter)
    logging.getLogger(SERVICE).addHandler(capture)
    capsys.readouterr()
    try:
        status, _, _ = answer(lambda_handler(heartbeat_event({"taskrunnerId": "r"}), LambdaContext()))
    finally:
        logging.getLogger(SERVICE).removeHandler(capture)
    assert status == 500
    return sink.getvalue().splitlines() + capsys.readouterr().out.splitlines()


def test_every_log_line_carries_an_rfc_3339_timestamp(handler_lines: list[str]) -> None:
    logged = [json.loads(line) for line in handler_lines if '"level"' in line]
    assert logged
    for line in logged:
        assert RFC_3339.match(line["timestamp"]), line["timestamp"]
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None


def test_at_the_stacks_level_lambda_keeps_every_line_and_at_warn_it_keeps_the_errors(
    private: Synth, handler_lines: list[str]
) -> None:
    for props in private.template.find_resources("AWS::Lambda::Function").values():
        config = props["Properties"]["LoggingConfig"]
        assert config["LogFormat"] == "JSON"  # level filtering only exists for JSON logs
        # The stack's level keeps every line, the EMF metric lines the alarms read among them.
        assert kept(handler_lines, config["ApplicationLogLevel"]) == handler_lines
    [error] = [line for line in handler_lines if level_lambda_reads(line) == "ERROR"]
    [emf] = [line for line in handler_lines if line.startswith('{"_aws"')]
    # Raised to WARN, Lambda would keep the ERROR line, and drop the EMF lines: why the stack stays at INFO.
    assert kept(handler_lines, "WARN") == [error]
    assert emf not in kept(handler_lines, "WARN")
    # Powertools' default timestamp: Lambda reads the same line as INFO, and WARN would drop it.
    default_format = json.dumps({**json.loads(error), "timestamp": "2026-11-25 21:58:54,504+0000"})
    assert kept([default_format], "WARN") == []
