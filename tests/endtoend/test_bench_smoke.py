"""make bench's quick smoke run: the deterministic counts per heartbeat, checked on every make test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from heartbeat_local.process import ROOT


def test_quick_bench_runs_and_every_heartbeat_path_costs_what_it_should(tmp_path: Path) -> None:
    results_file = tmp_path / "results.json"
    env = {
        **os.environ,
        "BENCH_QUICK": "1",
        "BENCH_RESULTS": str(results_file),
        "BENCH_FIGURES": str(tmp_path / "figures.json"),  # the committed figures come from a full run only
        "PYTHONPATH": f"{ROOT / 'lambda_src'}{os.pathsep}{ROOT}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bench"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    paths = {row["path"]: row for row in json.loads(results_file.read_text())["requests"]["paths"]}
    steady = paths["steady-state heartbeat"]
    assert (steady["requests"], steady["write_units"], steady["terminate"]) == ({"UpdateItem": 1}, 1, False)
    for name in ("first heartbeat", "stale heartbeat (silent, not yet flagged)", "terminate answer (flagged runner)"):
        assert (paths[name]["requests"], paths[name]["write_units"]) == ({"UpdateItem": 1}, 1), name
    assert paths["terminate answer (flagged runner)"]["terminate"] is True
    assert paths["record past its TTL (runs afresh)"]["requests"] == {"UpdateItem": 1, "PutItem": 1}
    auth = {row["path"]: row for row in json.loads(results_file.read_text())["auth"]["requests"]["paths"]}
    assert (auth["steady heartbeat, key cached"]["requests"], auth["steady heartbeat, key cached"]["kms"]) == (
        {"UpdateItem": 1}, {},
    )  # fmt: skip
