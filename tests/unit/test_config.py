"""Configuration: defaults, and a clear message naming any bad variable."""

from __future__ import annotations

import pytest

from heartbeat.config import Config, ConfigError


def test_defaults_apply_when_only_the_table_is_given() -> None:
    config = Config.from_env({"TABLE_NAME": "runners"})
    assert config == Config("runners", stale_after_seconds=2700, retention_seconds=604800, mass_stale_fraction=0.5)


def test_values_are_read_from_the_environment() -> None:
    env = {"TABLE_NAME": "t", "STALE_AFTER_SECONDS": "60", "RETENTION_SECONDS": "120", "MASS_STALE_FRACTION": "1"}
    assert Config.from_env(env) == Config("t", 60, 120, 1.0)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "TABLE_NAME"),
        ({"TABLE_NAME": "  "}, "TABLE_NAME"),
        ({"TABLE_NAME": "t", "STALE_AFTER_SECONDS": "45m"}, "STALE_AFTER_SECONDS"),
        ({"TABLE_NAME": "t", "STALE_AFTER_SECONDS": "0"}, "STALE_AFTER_SECONDS"),
        ({"TABLE_NAME": "t", "RETENTION_SECONDS": "-5"}, "RETENTION_SECONDS"),
        ({"TABLE_NAME": "t", "STALE_AFTER_SECONDS": "600", "RETENTION_SECONDS": "600"}, "RETENTION_SECONDS"),
        ({"TABLE_NAME": "t", "MASS_STALE_FRACTION": "half"}, "MASS_STALE_FRACTION"),
        ({"TABLE_NAME": "t", "MASS_STALE_FRACTION": "0"}, "MASS_STALE_FRACTION"),
        ({"TABLE_NAME": "t", "MASS_STALE_FRACTION": "1.5"}, "MASS_STALE_FRACTION"),
        ({"TABLE_NAME": "t", "MASS_STALE_FRACTION": "nan"}, "MASS_STALE_FRACTION"),
    ],
)
def test_bad_value_stops_with_the_variable_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Config.from_env(env)
