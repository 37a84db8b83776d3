"""The preflight's region is the CDK CLI's: each case is put to the pinned CDK CLI itself, which tells its app
the region it resolved (CDK_DEFAULT_REGION), and to infra.target, in the same environment."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from heartbeat_local.process import ROOT
from infra.target import Region, cdk_profile, cdk_region

# An app that only reports the region the CLI hands it, and an empty cloud assembly.
APP = """#!/bin/sh
printf '%s' "$CDK_DEFAULT_REGION" > "$REGION_OUT"
mkdir -p "$CDK_OUTDIR"
echo '{"version":"36.0.0","artifacts":{}}' > "$CDK_OUTDIR/manifest.json"
"""

CONFIG = """[default]
region = eu-central-1
[profile ops]
region = ap-southeast-2
[profile bare]
output = json
[sa-east-1]
region = sa-east-1
"""
CREDENTIALS = """[shared]
aws_access_key_id = AKIAEXAMPLE
aws_secret_access_key = example
region = ca-central-1
"""

CASES: dict[str, tuple[dict[str, str], str | None]] = {
    # (environment, --profile)
    "AWS_REGION before AWS_DEFAULT_REGION": ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}, None),
    "AWS_DEFAULT_REGION before the profile": ({"AWS_DEFAULT_REGION": "us-west-2", "AWS_PROFILE": "ops"}, None),
    "the profile's region in the config file": ({"AWS_PROFILE": "ops"}, None),
    "--profile before AWS_PROFILE": ({"AWS_PROFILE": "ops"}, "shared"),
    "a profile without a region takes the default profile's": ({"AWS_PROFILE": "bare"}, None),
    "a config section without 'profile' is no profile": ({"AWS_PROFILE": "sa-east-1"}, None),
}


def shared_files(home: Path) -> dict[str, str]:
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(CONFIG)
    (home / ".aws" / "credentials").write_text(CREDENTIALS)
    return {"HOME": str(home)}


def region_the_cdk_cli_resolves(env: dict[str, str], profile: str | None, work: Path) -> str:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "run 'npm ci' (make test does)"
    work.mkdir()
    app = work / "app.sh"
    app.write_text(APP)
    app.chmod(0o755)
    args = [str(cdk), "synth", "--app", str(app), "-o", str(work / "out"), "--no-notices", "--no-version-reporting"]
    subprocess.run(
        [*args, *(["--profile", profile] if profile else [])],
        cwd=work, capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": os.environ["PATH"], "CDK_DISABLE_CLI_TELEMETRY": "true", "AWS_EC2_METADATA_DISABLED": "true",
             "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "REGION_OUT": str(work / "region"), **env},
    )  # fmt: skip
    return (work / "region").read_text()


def test_the_preflight_resolves_the_region_the_cdk_cli_deploys_to(tmp_path: Path) -> None:
    home = shared_files(tmp_path / "home")
    cases = {name: ({**home, **env}, profile) for name, (env, profile) in CASES.items()}
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:  # each CLI run is mostly Node.js starting
        futures = {
            name: pool.submit(region_the_cdk_cli_resolves, env, profile, tmp_path / f"case{i}")
            for i, (name, (env, profile)) in enumerate(cases.items())
        }
        cli = {name: future.result() for name, future in futures.items()}
    ours = {name: getattr(cdk_region(env, profile), "name", None) for name, (env, profile) in cases.items()}
    assert ours == cli
    assert cli == {
        "AWS_REGION before AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION before the profile": "us-west-2",
        "the profile's region in the config file": "ap-southeast-2",
        "--profile before AWS_PROFILE": "ca-central-1",
        "a profile without a region takes the default profile's": "eu-central-1",
        "a config section without 'profile' is no profile": "eu-central-1",
    }


def test_the_region_says_where_it_came_from(tmp_path: Path) -> None:
    home = shared_files(tmp_path / "home")
    assert cdk_region({"AWS_REGION": "eu-west-1"}, None) == Region("eu-west-1", "AWS_REGION")
    found = cdk_region({**home, "AWS_PROFILE": "ops"}, None)
    assert found == Region("ap-southeast-2", f"profile 'ops' in {tmp_path / 'home' / '.aws' / 'config'}")


def test_no_region_anywhere_is_none_where_the_cdk_cli_would_guess(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert cdk_region({"HOME": str(tmp_path / "empty")}, None) is None
    assert cdk_region({"HOME": str(tmp_path / "empty"), "AWS_REGION": ""}, None) is None  # set but empty: unset


@pytest.mark.parametrize(
    ("env", "given", "expected"),
    [
        ({"AWS_PROFILE": "a", "AWS_DEFAULT_PROFILE": "b"}, None, "a"),  # boto3 alone would take b
        ({"AWS_DEFAULT_PROFILE": "b"}, None, "b"),
        ({"AWS_PROFILE": "a", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"}, None, None),  # keys first
        ({"AWS_PROFILE": "a", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"}, "c", "c"),
    ],
)
def test_credentials_come_from_the_profile_the_cdk_cli_uses(
    env: dict[str, str], given: str | None, expected: str | None
) -> None:
    assert cdk_profile(env, given) == expected
