"""The test kit as a user meets it: this project pip-installed into a fresh virtualenv, a runner's own tests.

A throwaway project (the runner and its test from docs/testing-your-runners.md, and the tests
below) is tested by pytest in a subprocess, in a virtualenv that has only this project's wheel
installed, by name with its `testing` extra, as `pip install 'taskrunner-heartbeat[testing]'`.

Kept cheap and offline: the wheel is built from this checkout, and the dependencies are this
project's own pinned set, seen by the fresh virtualenv through a .pth file (every package but
this project itself), so pip resolves the extra against them and installs only the wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing-your-runners.md"
PROJECT_FILES = ["pyproject.toml", "README.md"]
PROJECT_PACKAGES = ["lambda_src/heartbeat", "heartbeat_local", "heartbeat_ops", "heartbeat_testing"]

# Imported by pytest once its plugins are loaded, before any test module: what the plugin brought in.
USERS_CONFTEST = """
import sys

LOADED_WITH_THE_PLUGINS = [m for m in ("moto", "boto3", "heartbeat", "aws_lambda_powertools") if m in sys.modules]
"""

USERS_TESTS = """
import boto3
import pytest
from moto import mock_aws

from conftest import LOADED_WITH_THE_PLUGINS


def test_pytest_loads_the_plugin_without_moto_boto3_or_the_service():
    assert LOADED_WITH_THE_PLUGINS == []


def test_first_heartbeat_answers_keep_working(heartbeat_fleet):
    client = boto3.client("datapipeline", region_name="eu-west-1")
    assert client.report_task_runner_heartbeat(taskrunnerId="r-1")["terminate"] is False
    assert heartbeat_fleet.runner("r-1").status == "active"


def test_silence_past_the_threshold_then_a_sweep_answers_terminate(heartbeat_fleet):
    client = boto3.client("datapipeline", region_name="us-west-2")
    client.report_task_runner_heartbeat(taskrunnerId="r-1")
    heartbeat_fleet.advance(heartbeat_fleet.config.stale_after_seconds + 1)
    assert heartbeat_fleet.sweep().flagged == 1
    assert client.report_task_runner_heartbeat(taskrunnerId="r-1")["terminate"] is True
    assert [e["detail"]["taskrunnerId"] for e in heartbeat_fleet.events()] == ["r-1"]


def test_an_operators_terminate_answers_terminate(heartbeat_fleet):
    client = boto3.client("datapipeline", region_name="us-east-1")
    client.report_task_runner_heartbeat(taskrunnerId="r-1")
    heartbeat_fleet.terminate("r-1")
    assert client.report_task_runner_heartbeat(taskrunnerId="r-1")["terminate"] is True


def test_an_invalid_id_raises_the_clients_invalid_request_exception(heartbeat_fleet):
    client = boto3.client("datapipeline", region_name="us-east-1")
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.report_task_runner_heartbeat(taskrunnerId="tab\\tand\\u0001control")
    assert heartbeat_fleet.runners() == []


@mock_aws
def test_another_data_pipeline_operation_behaves_as_moto_does(heartbeat_fleet):
    client = boto3.client("datapipeline", region_name="us-east-1")
    pipeline_id = client.create_pipeline(name="nightly", uniqueId="nightly-1")["pipelineId"]
    assert [p["id"] for p in client.list_pipelines()["pipelineIdList"]] == [pipeline_id]
"""

EXPECTED = {
    "test_a_users_own_tests::test_pytest_loads_the_plugin_without_moto_boto3_or_the_service",
    "test_a_users_own_tests::test_first_heartbeat_answers_keep_working",
    "test_a_users_own_tests::test_silence_past_the_threshold_then_a_sweep_answers_terminate",
    "test_a_users_own_tests::test_an_operators_terminate_answers_terminate",
    "test_a_users_own_tests::test_an_invalid_id_raises_the_clients_invalid_request_exception",
    "test_a_users_own_tests::test_another_data_pipeline_operation_behaves_as_moto_does",
    "test_runner::test_my_runner_stops_when_told_to_terminate",
}


def doc_files() -> dict[str, str]:
    """The doc's example, file by file: each python block with a title, its path."""
    blocks = re.findall(r'```python title="([^"]+)"\n(.*?)```', DOC.read_text(), flags=re.DOTALL)
    return dict(blocks)


def clean_env(**extra: str) -> dict[str, str]:
    """The user's machine: none of this checkout's settings, no AWS configuration, no pip configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIP_", "PYTHON", "POWERTOOLS_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", **extra)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


def fresh_virtualenv(where: Path) -> Path:
    """A new virtualenv whose site-packages sees this project's pinned dependencies, but not this project."""
    run([sys.executable, "-m", "venv", "--without-pip", str(where)], where.parent, clean_env())
    python = where / "bin" / "python"
    ours = Path(sysconfig.get_paths()["purelib"])
    deps = where.parent / "dependencies"
    deps.mkdir()
    for entry in ours.iterdir():
        if not entry.name.startswith(("taskrunner_heartbeat", "__editable__")):
            (deps / entry.name).symlink_to(entry)
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], where, clean_env())
    (Path(site.stdout.strip()) / "project_dependencies.pth").write_text(f"{deps}\n")
    return python


def test_a_users_project_tests_its_runner_with_the_installed_kit(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    env = clean_env()

    started = time.perf_counter()
    source = tmp_path / "source"
    for name in PROJECT_FILES:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for package in PROJECT_PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    python = fresh_virtualenv(tmp_path / "venv")
    timings["fresh virtualenv"] = time.perf_counter() - started

    started = time.perf_counter()
    wheels = tmp_path / "wheels"
    pip = [str(python), "-m", "pip", "--no-cache-dir"]
    run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(source)],
        tmp_path,
        env,
    )
    timings["build the wheel"] = time.perf_counter() - started
    started = time.perf_counter()
    installed = run(
        [*pip, "install", "--no-index", "--find-links", str(wheels), "taskrunner-heartbeat[testing]"], tmp_path, env
    )
    timings["pip install 'taskrunner-heartbeat[testing]'"] = time.perf_counter() - started
    assert "Successfully installed taskrunner-heartbeat-0.1.0" in installed.stdout

    project = tmp_path / "project"
    for path, text in doc_files().items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    (project / "tests" / "test_a_users_own_tests.py").write_text(USERS_TESTS)
    (project / "conftest.py").write_text(USERS_CONFTEST)
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\ntestpaths = ["tests"]\n')

    started = time.perf_counter()
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", str(report),
         "tests/test_a_users_own_tests.py", "tests/test_runner.py"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    timings["pytest run (subprocess)"] = time.perf_counter() - started

    cases = ET.parse(report).getroot().iter("testcase")  # noqa: S314 - pytest's own report
    outcomes = {f"{c.get('classname', '').rsplit('.', 1)[-1]}::{c.get('name')}": c for c in cases}
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(outcomes) == EXPECTED
    assert all(len(case) == 0 for case in outcomes.values())  # no failure, error or skip element
    where = run([str(python), "-c", "import heartbeat_testing; print(heartbeat_testing.__file__)"], project, env)
    assert where.stdout.startswith(str(tmp_path / "venv"))  # the installed wheel's, not this checkout's
    for name, case in sorted(outcomes.items()):
        timings[name] = float(case.get("time", "nan"))
    print(*(f"{seconds:7.3f} s  {what}" for what, seconds in timings.items()), sep="\n")
