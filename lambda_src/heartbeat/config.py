"""Configuration, read from the environment once per cold start and checked."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DEFAULT_STALE_AFTER_SECONDS = 2700  # three missed 15-minute heartbeats
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600
DEFAULT_MASS_STALE_FRACTION = 0.5
DEFAULT_SWEEP_INTERVAL_SECONDS = 300  # the schedule's rate (the stack's sweepIntervalMinutes)


class AuthMode(StrEnum):
    """How heartbeats are authenticated (docs/authentication.md)."""

    SIGV4 = "sigv4"  # SigV4, verified against the keys the service issues
    NONE = "none"  # nobody: the network is the only boundary


# Secure by default: a function whose environment does not say otherwise verifies signatures.
DEFAULT_AUTH_MODE = AuthMode.SIGV4


class ConfigError(ValueError):
    """An environment variable is missing or has a bad value; the message names it."""


@dataclass(frozen=True)
class Config:
    """What both functions need to know, as plain values."""

    table_name: str
    stale_after_seconds: int = DEFAULT_STALE_AFTER_SECONDS
    retention_seconds: int = DEFAULT_RETENTION_SECONDS
    mass_stale_fraction: float = DEFAULT_MASS_STALE_FRACTION
    # workerGroup -> seconds, for groups that beat faster (or slower) than the default
    stale_after_by_worker_group: Mapping[str, int] = field(default_factory=dict)
    event_bus_name: str = "default"
    sweep_interval_seconds: float = DEFAULT_SWEEP_INTERVAL_SECONDS
    auth_mode: AuthMode = DEFAULT_AUTH_MODE
    keys_table_name: str = ""  # the keys the service issued (needed to verify; the sweeper counts their runners)
    keys_kms_key_id: str = ""  # the KMS key their secrets are sealed with
    # The sweeper's own deadline, in seconds (make serve); in Lambda the invocation's remaining time also bounds it.
    sweep_budget_seconds: float | None = None
    # The queue that feeds the sweep's workers (fan_out.py); None: a sweep writes every flag itself.
    work_queue_url: str | None = None

    def __post_init__(self) -> None:
        if not self.table_name:
            raise ConfigError("TABLE_NAME must be set to the DynamoDB table's name")
        if self.stale_after_seconds <= 0:
            raise ConfigError(
                f"STALE_AFTER_SECONDS must be a positive whole number of seconds, got {self.stale_after_seconds}"
            )
        if self.retention_seconds <= self.stale_after_seconds:
            raise ConfigError(
                f"RETENTION_SECONDS ({self.retention_seconds}) must exceed STALE_AFTER_SECONDS "
                f"({self.stale_after_seconds}), or runners would expire before they could be flagged"
            )
        for group, seconds in self.stale_after_by_worker_group.items():
            if not 0 < seconds < self.retention_seconds:
                raise ConfigError(
                    f"STALE_AFTER_BY_WORKER_GROUP: {group!r} must be a positive number of seconds below "
                    f"RETENTION_SECONDS ({self.retention_seconds}), got {seconds}"
                )
        if self.sweep_budget_seconds is not None and not 0 < self.sweep_budget_seconds < math.inf:
            raise ConfigError(
                f"SWEEP_BUDGET_SECONDS must be a positive number of seconds, got {self.sweep_budget_seconds}"
            )
        if not 0 < self.mass_stale_fraction <= 1:
            raise ConfigError(
                "MASS_STALE_FRACTION must be greater than 0 and at most 1 (1 turns the guard off), "
                f"got {self.mass_stale_fraction}"
            )

    def stale_after_for(self, worker_group: str | None) -> int:
        """The threshold a runner of this worker group is judged with: its group's own, or the default."""
        if worker_group is not None and worker_group in self.stale_after_by_worker_group:
            return self.stale_after_by_worker_group[worker_group]
        return self.stale_after_seconds

    def to_record(self) -> dict[str, Any]:
        """The rules the sweeper judged with, as it records them in its state for heartbeat-ops."""
        return {
            "staleAfterSeconds": self.stale_after_seconds,
            "staleAfterByWorkerGroup": dict(self.stale_after_by_worker_group),
            "retentionSeconds": self.retention_seconds,
            "massStaleFraction": self.mass_stale_fraction,
            "sweepIntervalSeconds": self.sweep_interval_seconds,
            "eventBusName": self.event_bus_name,
        }

    @classmethod
    def from_record(cls, table_name: str, record: Mapping[str, Any]) -> Config:
        """The deployment's rules as its sweeper recorded them (to_record)."""
        return cls(
            table_name=table_name,
            stale_after_seconds=int(record["staleAfterSeconds"]),
            retention_seconds=int(record["retentionSeconds"]),
            mass_stale_fraction=float(record["massStaleFraction"]),
            stale_after_by_worker_group={str(g): int(s) for g, s in record["staleAfterByWorkerGroup"].items()},
            event_bus_name=str(record["eventBusName"]),
            sweep_interval_seconds=float(record["sweepIntervalSeconds"]),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Build the configuration from environment variables, naming any bad one."""
        return cls(
            table_name=env.get("TABLE_NAME", "").strip(),
            stale_after_seconds=_whole_number(env, "STALE_AFTER_SECONDS", DEFAULT_STALE_AFTER_SECONDS),
            retention_seconds=_whole_number(env, "RETENTION_SECONDS", DEFAULT_RETENTION_SECONDS),
            mass_stale_fraction=_fraction(env, "MASS_STALE_FRACTION", DEFAULT_MASS_STALE_FRACTION),
            stale_after_by_worker_group=_group_thresholds(env, "STALE_AFTER_BY_WORKER_GROUP"),
            event_bus_name=env.get("EVENT_BUS_NAME", "").strip() or "default",
            sweep_interval_seconds=_interval(env, "SWEEP_INTERVAL_SECONDS", DEFAULT_SWEEP_INTERVAL_SECONDS),
            auth_mode=_auth_mode(env, "AUTH_MODE"),
            keys_table_name=env.get("KEYS_TABLE_NAME", "").strip(),
            keys_kms_key_id=env.get("KEYS_KMS_KEY_ID", "").strip(),
            sweep_budget_seconds=_seconds(env, "SWEEP_BUDGET_SECONDS"),
            work_queue_url=env.get("WORK_QUEUE_URL", "").strip() or None,
        )

    def require_keys(self) -> None:
        """Refuse to verify signatures without the keys table to verify them against."""
        if self.auth_mode is AuthMode.SIGV4 and not self.keys_table_name:
            raise ConfigError(
                "KEYS_TABLE_NAME must be set to the keys table's name when AUTH_MODE is sigv4 (the default); "
                "AUTH_MODE=none turns authentication off"
            )


def _auth_mode(env: Mapping[str, str], name: str) -> AuthMode:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return DEFAULT_AUTH_MODE
    try:
        return AuthMode(raw)
    except ValueError:
        modes = " or ".join(mode.value for mode in AuthMode)
        raise ConfigError(f"{name} must be {modes}, got {env[name].strip()!r}") from None


def _whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be a positive whole number of seconds, got {raw!r}")
    return value


def _interval(env: Mapping[str, str], name: str, default: float) -> float:
    """Seconds between sweeps; 0 (make serve's sweeper turned off) reads as the default, which then judges nothing."""
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else 0.0
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value or default


def _seconds(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < math.inf:
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number greater than 0 and at most 1, got {raw!r}") from None


def _group_thresholds(env: Mapping[str, str], name: str) -> dict[str, int]:
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        raise ConfigError(f'{name} must be a JSON object of workerGroup to seconds, e.g. {{"fast": 600}}') from None
    if not isinstance(document, dict):
        raise ConfigError(f'{name} must be a JSON object of workerGroup to seconds, e.g. {{"fast": 600}}')
    thresholds = {}
    for group, seconds in document.items():
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise ConfigError(f"{name}: {group!r} must map to a number of seconds, got {seconds!r}")
        thresholds[group] = int(seconds)
    return thresholds
