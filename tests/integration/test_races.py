"""Races between heartbeats and sweeps, on a controllable clock rather than sleeps.

Hypothesis draws fleets whose runners beat with random gaps, next to a staggered backbone
of steady runners (one more than the erratic ones, spread over the period as Task Runners
are), while the sweeper runs on its schedule with the mass-staleness guard on. Whatever
the timings: a runner never silent for longer than the threshold is never told to
terminate, and one silent for longer than threshold + one sweep interval is always flagged
by the next heartbeat or the end (never more than half the fleet is silent at once, so
the guard must not hold them back).
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from heartbeat.config import DEFAULT_MASS_STALE_FRACTION, Config
from heartbeat.model import HeartbeatRequest
from heartbeat.runners import should_terminate
from heartbeat.store import RunnerStore
from heartbeat.sweeper import sweep
from tests.simulation.fleet import create_table

THRESHOLD = 900
INTERVAL = 300
PERIOD = 400  # the backbone's beat: under half the threshold, so a steady runner is never quiet
TABLE = "races"
RETENTION = 86_400
# The long fuzz profile runs proportionally more of these (each example is a whole fleet's history).
EXAMPLES = max(20, settings.default.max_examples // 100)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        create_table(client, TABLE)
        yield client


fleets = st.lists(  # per runner: when it first beats, then the gaps between its heartbeats, in seconds
    st.lists(st.floats(min_value=1, max_value=2.5 * THRESHOLD, allow_nan=False), min_size=1, max_size=4),
    min_size=1,
    max_size=4,
)


@given(fleet=fleets, first_sweep=st.floats(min_value=0, max_value=INTERVAL))
@settings(max_examples=EXAMPLES)
def test_live_runners_are_never_flagged_and_silent_ones_always_are(
    client: object, fleet: list[list[float]], first_sweep: float
) -> None:
    client.delete_table(TableName=TABLE)  # type: ignore[attr-defined]
    create_table(client, TABLE)
    store = RunnerStore(TABLE, client=client)  # type: ignore[arg-type]
    config = Config(
        TABLE,
        stale_after_seconds=THRESHOLD,
        retention_seconds=RETENTION,
        mass_stale_fraction=DEFAULT_MASS_STALE_FRACTION,
    )
    start = 1_000_000.0

    beats = []  # (time, runner, silence before this beat; 0 for its first)
    for runner, gaps in enumerate(fleet):
        when = start + first_sweep  # the first gap is when the runner arrives, after the watch began
        for index, gap in enumerate(gaps):
            when += gap
            beats.append((when, runner, gap if index else 0.0))
    end = max(when for when, _, _ in beats) + THRESHOLD + 2 * INTERVAL
    steady = len(fleet) + 1  # the backbone: beats every PERIOD, staggered evenly over it
    backbone = [
        (start + first_sweep + (b + 0.5) * PERIOD / steady + k * PERIOD, f"steady-{b}")
        for b in range(steady)
        for k in range(int((end - start) // PERIOD) + 2)
    ]
    sweeps = [start + first_sweep + k * INTERVAL for k in range(int((end - start - first_sweep) // INTERVAL) + 1)]
    timeline = sorted(
        [(t, 1, r, g) for t, r, g in beats] + [(t, 0, -1, 0.0) for t in sweeps] + [(t, 2, -1, 0.0) for t, _ in backbone]
    )
    steady_beats = iter(name for _, name in sorted(backbone))

    told_to_terminate: dict[int, bool] = {}
    silent_too_long: dict[int, bool] = {}
    for when, kind, runner, silence in timeline:
        if kind == 0:
            sweep(store, config, when)
            continue
        if kind == 2:
            steady_runner = next(steady_beats)
            assert not should_terminate(store.record_heartbeat(HeartbeatRequest(steady_runner), when, RETENTION))
            continue
        answer = should_terminate(store.record_heartbeat(HeartbeatRequest(f"r-{runner}"), when, RETENTION))
        silent_too_long[runner] = silent_too_long.get(runner, False) or silence > THRESHOLD + INTERVAL
        never_silent_too_long = all(gap <= THRESHOLD for t, r, gap in beats if r == runner and t <= when)
        if never_silent_too_long:
            assert answer is False, f"runner {runner} beat every {THRESHOLD}s or sooner yet was told to terminate"
        if silent_too_long[runner]:
            assert answer is True, f"runner {runner} was silent over threshold + interval yet was not flagged"
        told_to_terminate[runner] = answer

    # At the end every runner has been silent for threshold + 2 intervals: all flagged.
    for runner in range(len(fleet)):
        stored = store.get_runner(f"r-{runner}")
        assert stored is not None
        assert stored.status == "stale"
