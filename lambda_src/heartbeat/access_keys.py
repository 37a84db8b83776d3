"""Access keys the service issues, and the rules about them: plain values and plain functions.

A key is an access key id and a secret, as an AWS access key is, so that every client signs
its heartbeats with it unmodified (see docs/authentication.md). A key may be scoped to worker
groups and capped at a number of runners. A runner belongs to the key that registered it:
its record names that key, and a heartbeat under another key is refused, except across a
rotation (a key and the one it was rotated to both beat for its runners until the old one is
revoked). Nothing here touches AWS; the key store, the cache and the handler call these.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from heartbeat.errors import AccessDeniedException

# "HBAK" and 16 base32 characters (80 random bits): the shape of an AWS access key id, with a
# prefix of its own so that nobody mistakes one for an AWS credential, or an AWS one for ours.
KEY_ID_PREFIX = "HBAK"
_KEY_ID = re.compile(KEY_ID_PREFIX + "[A-Z2-7]{16}")
SECRET_BYTES = 30  # 40 base64 characters, as an AWS secret access key has


class KeyStatus(StrEnum):
    """Only an ACTIVE key signs heartbeats."""

    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True)
class AccessKey:
    """A key's record, never its secret.

    worker_groups is None for a key that may report any worker group. runner_count is the
    number of runners bound to it, as the key store counts them (see store.keys). last_seen is
    its runners' latest heartbeat as the sweeper last saw it.
    """

    access_key_id: str
    status: str = KeyStatus.ACTIVE.value
    worker_groups: tuple[str, ...] | None = None
    max_runners: int | None = None
    runner_count: int = 0
    description: str | None = None
    created_at: float | None = None
    revoked_at: float | None = None
    predecessor: str | None = None  # the key this one was rotated from
    successor: str | None = None  # the key this one was rotated to
    last_seen: float | None = None


@dataclass(frozen=True)
class SigningKey:
    """An active key with its secret: what a verified request was signed with."""

    key: AccessKey
    secret_access_key: str

    @property
    def access_key_id(self) -> str:
        return self.key.access_key_id


def new_key_id() -> str:
    """A fresh access key id."""
    return KEY_ID_PREFIX + base64.b32encode(secrets.token_bytes(10)).decode()


def new_secret() -> str:
    """A fresh secret access key."""
    return base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def is_key_id(value: str) -> bool:
    """Whether a string has the shape of an id this service issues (anything else needs no lookup)."""
    return _KEY_ID.fullmatch(value) is not None


def check_worker_group(key: AccessKey, worker_group: str | None) -> None:
    """Refuse a heartbeat whose workerGroup the key may not report (AccessDeniedException).

    A scoped key must name one of its groups: a runner without a group would be judged by the
    default threshold, outside any group's scope.
    """
    if key.worker_groups is None or worker_group in key.worker_groups:
        return
    groups = ", ".join(repr(group) for group in key.worker_groups)
    stated = "no workerGroup" if worker_group is None else f"workerGroup {worker_group!r}"
    raise AccessDeniedException(
        f"Access key {key.access_key_id} is not authorized to report {stated}: it may report only {groups}"
    )


class Binding(StrEnum):
    """What a heartbeat under a key may do with a runner's record that names another key (or none)."""

    OWN = "own"  # the runner is this key's
    CLAIM = "claim"  # a record written before authentication was on: this key registers it
    MOVE = "move"  # the runner's key was rotated to this one: the runner moves to it
    KEEP = "keep"  # this key was rotated to the runner's key: accepted, the runner stays where it is
    DENIED = "denied"


def binding(key: AccessKey, bound_to: str | None) -> Binding:
    """Whether the key may beat for a runner bound to bound_to, and what happens to the binding.

    During a rotation from A to B both keys beat for the runners of either, so a runner's hosts
    can switch keys one by one with no gap; a runner moves to B at its first heartbeat under B.
    Once A is revoked, only B signs.
    """
    if bound_to == key.access_key_id:
        return Binding.OWN
    if bound_to is None:
        return Binding.CLAIM
    if bound_to == key.predecessor:
        return Binding.MOVE
    if bound_to == key.successor:
        return Binding.KEEP
    return Binding.DENIED


def access_denied(key: AccessKey) -> AccessDeniedException:
    """The refusal of a heartbeat for a runner that belongs to another key (which it does not name)."""
    return AccessDeniedException(
        f"Access key {key.access_key_id} is not authorized to report for this taskrunnerId: "
        "it is registered to another access key"
    )
