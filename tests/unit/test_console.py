"""make serve's console: a log record as one readable line, and one line a sweep."""

from __future__ import annotations

import io
import logging
import re
import uuid
from dataclasses import asdict

import pytest
from aws_lambda_powertools import Logger

from heartbeat.sweeper import SweepReport
from heartbeat_local.console import SweepConsole, sweep_line, use_console_lines


@pytest.fixture
def console() -> tuple[Logger, io.StringIO]:
    """A Powertools logger of its own, as the handlers build theirs, writing console lines to a buffer."""
    sink = io.StringIO()
    # A service name of its own: Powertools configures one stdlib logger per name, once.
    logger = Logger(service=f"console-test-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(sink))
    use_console_lines(logger)
    return logger, sink


def test_a_record_reads_as_one_line_with_its_own_fields(console: tuple[Logger, io.StringIO]) -> None:
    logger, sink = console
    logger.append_keys(correlation_id="3f2a", cold_start=True)  # what Lambda's context adds: not shown
    logger.info("New runner", extra={"taskrunnerId": "r-1", "workerGroup": "wg 1", "count": 2})
    assert re.fullmatch(
        r'\d\d:\d\d:\d\d INFO    New runner  taskrunnerId=r-1 workerGroup="wg 1" count=2\n', sink.getvalue()
    )


def test_an_id_with_control_characters_stays_on_one_line(console: tuple[Logger, io.StringIO]) -> None:
    logger, sink = console
    logger.warning("Flagged", extra={"taskrunnerId": "x\nother-runner"})
    assert sink.getvalue().endswith('WARNING Flagged  taskrunnerId="x\\nother-runner"\n')


def test_an_exception_follows_its_line(console: tuple[Logger, io.StringIO]) -> None:
    logger, sink = console
    try:
        raise RuntimeError("store down")
    except RuntimeError:
        logger.exception("Sweep failed")
    first, *trace = sink.getvalue().splitlines()
    assert first.endswith("ERROR   Sweep failed")
    assert trace[-1] == "RuntimeError: store down"


# the sweeper's own report, as its lambda_handler returns it, so a renamed field breaks these tests
REPORT = asdict(SweepReport(examined=6, silent=0, stale=0, flagged=0, in_grace=0))


def test_a_sweep_that_did_nothing_prints_nothing() -> None:
    assert sweep_line(REPORT, []) is None


def test_a_sweep_names_the_runners_it_flagged_and_counts_past_ten() -> None:
    flagged = [f"r-{n}" for n in range(12)]
    line = sweep_line({**REPORT, "events_published": 12}, flagged)
    assert line == (
        "Sweep: flagged 12 runners stale: r-0, r-1, r-2, r-3, r-4, r-5, r-6, r-7, r-8, r-9 and 2 more "
        "(next heartbeat answers terminate: true); 12 stale events published, 0 owed (read them: heartbeat-ops events)"
    )


def test_a_sweep_cut_short_by_its_deadline_says_how_many_it_left() -> None:
    flagged = [f"r-{n}" for n in range(3)]
    line = sweep_line({**REPORT, "left": 397, "events_published": 3}, flagged)
    assert line == (
        "Sweep: flagged 3 runners stale: r-0, r-1, r-2 (next heartbeat answers terminate: true); "
        "397 runners past their threshold left for the next sweep (its deadline passed); "
        "3 stale events published, 0 owed (read them: heartbeat-ops events)"
    )
    assert sweep_line({**REPORT, "left": 20, "workers_busy": True}, []) is None  # the workers have them


def test_a_held_worker_group_is_named_with_the_way_out() -> None:
    report = {
        **REPORT,
        "held": ["batch"],
        "scopes": {"fleet": "normal (all heard)", "batch": "silent (4 of 4 silent, none heard)"},
        "in_grace": 4,
    }
    assert sweep_line(report, []) == (
        "Sweep: held worker group batch: silent (4 of 4 silent, none heard); "
        "4 runners past their threshold not flagged (if they are gone: heartbeat-ops runners sweep --override-guard)"
    )


def test_the_sweep_console_keeps_flagged_ids_and_lets_warnings_through() -> None:
    console = SweepConsole()
    records = [
        logging.LogRecord("s", logging.INFO, __file__, 1, "Flagged runners stale", None, None),
        logging.LogRecord("s", logging.INFO, __file__, 1, "Sweep finished", None, None),
        logging.LogRecord("s", logging.WARNING, __file__, 1, "Sweeper starts a new watch", None, None),
        logging.LogRecord("s", logging.ERROR, __file__, 1, "Sweep held: no runner of it is flagged", None, None),
    ]
    records[0].taskrunnerIds = ["r-7", "r-8"]
    assert [console.filter(record) for record in records] == [False, False, True, False]
    assert console.take_flagged() == ["r-7", "r-8"]
    assert console.take_flagged() == []
