"""A heartbeat's cold start loads only what a heartbeat uses: the sweeper's and the operator's code waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from heartbeat_local.process import ROOT


def test_the_api_handler_imports_none_of_the_sweepers_or_operators_modules() -> None:
    code = "import json, sys, heartbeat.handler; print(json.dumps(sorted(m for m in sys.modules if 'heartbeat' in m)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lambda_src"), "POWERTOOLS_TRACE_DISABLED": "true"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stdout))
    assert {"heartbeat.store", "heartbeat.store.heartbeats", "heartbeat.store.items", "heartbeat.store.table"} <= loaded
    deferred = {"heartbeat.sweeper", "heartbeat.events", "heartbeat.store.scan", "heartbeat.store.sweep_state",
                "heartbeat.store.flags", "heartbeat.store.operator"}  # fmt: skip
    assert not loaded & deferred


def test_the_sweepers_names_are_still_the_stores() -> None:
    from heartbeat import store
    from heartbeat.store.scan import SweepCandidate
    from heartbeat.store.sweep_state import SweepState

    assert (store.SweepCandidate, store.SweepState) == (SweepCandidate, SweepState)
