"""The region and profile `cdk deploy` targets, resolved as the CDK CLI resolves them.

boto3 never reads AWS_REGION, and the CDK CLI reads it first, so a preflight that asked boto3 could
check one region while `cdk deploy` deployed to another. The CLI's order, read from its own code
(`AwsCliCompatible.region` in the aws-cdk package):

1. AWS_REGION, AMAZON_REGION, AWS_DEFAULT_REGION, AMAZON_DEFAULT_REGION, the first one set;
2. `region` of the profile (--profile, else AWS_PROFILE, else AWS_DEFAULT_PROFILE, else `default`)
   in the shared credentials file, then in the config file; then the same for `default`, so a named
   profile without a region takes the default profile's;
3. the instance's region from EC2 instance metadata, then us-east-1.

The third step is a guess. `make deploy` does not follow it: with no region set, it stops and asks for one.
`make deploy` then passes the resolved region to `cdk deploy --region`, so both use the same region.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.configloader import load_config, raw_config_parse

REGION_VARIABLES = ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION")


@dataclass(frozen=True)
class Region:
    """A region and where it was read from, for the operator to see."""

    name: str
    source: str


def cdk_profile(env: Mapping[str, str], given: str | None) -> str | None:
    """The profile `cdk deploy` takes its credentials from, or None for the default chain.

    With no --profile, the CDK CLI prefers AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY over any profile
    (as boto3 does when no profile is named), and then reads AWS_PROFILE before AWS_DEFAULT_PROFILE
    (boto3 reads them the other way round).
    """
    if given:
        return given
    keys = (env.get("AWS_ACCESS_KEY_ID") or env.get("AMAZON_ACCESS_KEY_ID")) and (
        env.get("AWS_SECRET_ACCESS_KEY") or env.get("AMAZON_SECRET_ACCESS_KEY")
    )
    if keys:
        return None
    return env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or None


def cdk_region(env: Mapping[str, str], given_profile: str | None) -> Region | None:
    """The region `cdk deploy` would use from the environment and the shared files; None if it would guess."""
    for name in REGION_VARIABLES:
        if env.get(name):
            return Region(env[name], name)
    profile = given_profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    home = Path(env.get("HOME") or Path.home())
    credentials = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    config = Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    sections = {credentials: _credentials_sections(credentials), config: _config_profiles(config)}
    for name in dict.fromkeys((profile, "default")):
        for path, profiles in sections.items():
            region = profiles.get(name, {}).get("region")
            if region:
                return Region(str(region), f"profile {name!r} in {path}")
    return None


def _credentials_sections(path: Path) -> dict[str, Any]:
    """The credentials file: every section is a profile, named as written."""
    return raw_config_parse(str(path)) if path.is_file() else {}


def _config_profiles(path: Path) -> dict[str, Any]:
    """The config file: `[default]` and `[profile NAME]` sections are profiles; other sections are not."""
    if not path.is_file():
        return {}
    profiles: dict[str, Any] = load_config(str(path)).get("profiles", {})
    return profiles


def missing_region_message() -> str:
    return (
        "No AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION, or region in your profile) to the region "
        "to deploy to; the CDK CLI would otherwise guess (the instance's region on EC2, else us-east-1)"
    )
