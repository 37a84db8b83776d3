"""make serve's console: the handlers' log records as one readable line each, and one line per sweep.

In Lambda, Powertools' Logger writes each record as a JSON line for CloudWatch. Each process of
make serve swaps that Logger's formatter for ``ConsoleFormatter`` (Powertools' way to bring a
formatter of your own: subclass ``LambdaPowertoolsFormatter``, override ``serialize``), so the
same records read ``12:00:05 INFO    New runner  taskrunnerId=r-1 workerGroup=wg``. Nothing
changes in Lambda: ``heartbeat.observability`` still builds the JSON logger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from heartbeat.flagging import FLAGGED_RUNNERS  # the sweeper's line for each ten runners it flags

# What every record carries in Lambda, and says nothing on a local console.
_LAMBDA_KEYS = frozenset({
    "level", "location", "message", "timestamp", "service", "sampling_rate", "cold_start", "function_name",
    "function_memory_size", "function_arn", "function_request_id", "correlation_id", "xray_trace_id",
    "exception", "exception_name", "exception_notes", "stack_trace",
})  # fmt: skip
GUARD_HELD = "Sweep held"
NAMED_AT_MOST = 10  # runners named in a sweep's line; the rest are counted


class ConsoleFormatter(LambdaPowertoolsFormatter):
    """A log record as one line: time, level, message, then its own fields as key=value."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def serialize(self, log: Mapping[str, Any]) -> str:
        fields = " ".join(f"{key}={_shown(value)}" for key, value in log.items() if key not in _LAMBDA_KEYS)
        line = f"{log.get('timestamp')} {log.get('level', '')!s:<7} {log.get('message')}"
        if fields:
            line += f"  {fields}"
        if log.get("exception"):
            line += "\n" + str(log["exception"])
        return line


def _shown(value: Any) -> str:
    """A value as it reads best on one line: plain words as they are, anything else as JSON."""
    if isinstance(value, str) and value and value.isprintable() and " " not in value and '"' not in value:
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def use_console_lines(logger: Logger) -> None:
    """Write this process's log records as console lines instead of JSON."""
    logger.registered_handler.setFormatter(ConsoleFormatter())


class SweepConsole(logging.Filter):
    """In make serve's sweeper process: takes each sweep's per-runner lines, for one line a sweep instead.

    The sweeper logs the runners it flags, ten a line, at INFO and a held guard at ERROR; this keeps the
    flagged runners' ids for ``sweep_line`` and lets through the other warnings and errors.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flagged: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message == FLAGGED_RUNNERS:
            self.flagged.extend(str(runner) for runner in getattr(record, "taskrunnerIds", ()))
            return False
        if message.startswith(GUARD_HELD):
            return False  # sweep_line says it, from the sweep's report
        return record.levelno >= logging.WARNING

    def take_flagged(self) -> list[str]:
        flagged, self.flagged = self.flagged, []
        return flagged


def _scope(label: str) -> str:
    return "the fleet" if label == "fleet" else f"worker group {label}"


def sweep_line(report: Mapping[str, Any], flagged: Sequence[str]) -> str | None:
    """One line on what a sweep did, naming the runners it flagged; None when it did nothing worth a line."""
    parts = []
    if flagged:
        named = ", ".join(_shown(runner_id) for runner_id in flagged[:NAMED_AT_MOST])
        more = f" and {len(flagged) - NAMED_AT_MOST} more" if len(flagged) > NAMED_AT_MOST else ""
        runners = "runner" if len(flagged) == 1 else "runners"
        parts.append(f"flagged {len(flagged)} {runners} stale: {named}{more} (next heartbeat answers terminate: true)")
    held = report.get("held") or []
    if held:
        scopes = report.get("scopes") or {}
        named = "; ".join(f"{_scope(scope)}: {scopes.get(scope, 'held')}" for scope in held)
        held_line = f"held {named}"
        if report.get("in_grace"):
            held_line += (
                f"; {report['in_grace']} runners past their threshold not flagged (if they are gone: "
                "heartbeat-ops runners sweep --override-guard)"
            )
        parts.append(held_line)
    if report.get("left") and not report.get("workers_busy"):
        parts.append(f"{report['left']} runners past their threshold left for the next sweep (its deadline passed)")
    if report.get("events_published") or report.get("events_owed"):
        parts.append(
            f"{report.get('events_published')} stale events published, {report.get('events_owed')} owed "
            "(read them: heartbeat-ops events)"
        )
    return "Sweep: " + "; ".join(parts) if parts else None
