"""The operator's key commands, apart from their parsing: issue, list, revoke, rotate, and rebind a runner.

Each takes the key store it works on (and the time), so that tests and make serve drive the
same functions the CLI does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from heartbeat.access_keys import AccessKey, KeyStatus, new_key_id, new_secret
from heartbeat.key_secrets import KeySecrets
from heartbeat.store.keys import KeyTable, StoredKey, UnknownKey


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its secret, shown once: the secret is stored only sealed."""

    key: AccessKey
    secret_access_key: str

    def as_credentials(self) -> dict[str, str]:
        """The two values every AWS client takes (--json prints these)."""
        return {"accessKeyId": self.key.access_key_id, "secretAccessKey": self.secret_access_key}


class KeyCommandError(Exception):
    """A key command cannot go on; the message is for the operator."""


def issue(
    keys: KeyTable,
    secrets: KeySecrets,
    now: float,
    *,
    worker_groups: Sequence[str] | None = None,
    max_runners: int | None = None,
    description: str | None = None,
) -> IssuedKey:
    """A new active key, its secret sealed under the KMS key and stored with its scope and cap."""
    if max_runners is not None and max_runners < 1:
        raise KeyCommandError("--max-runners must be at least 1")
    key = AccessKey(
        access_key_id=new_key_id(),
        status=KeyStatus.ACTIVE.value,
        worker_groups=tuple(dict.fromkeys(worker_groups)) if worker_groups else None,
        max_runners=max_runners,
        description=description or None,
        created_at=now,
    )
    secret = new_secret()
    keys.create(StoredKey(key, secrets.seal(key.access_key_id, secret)))
    return IssuedKey(key, secret)


def rotate(keys: KeyTable, secrets: KeySecrets, old_id: str, now: float) -> IssuedKey:
    """A new key with the old one's scope and cap, to which the old key's runners move at their next heartbeat.

    Both keys beat for the runners of either until the old one is revoked, so hosts switch one by one.
    """
    stored = keys.get(old_id)
    if stored is None:
        raise KeyCommandError(f"no key {old_id}")
    old = stored.key
    if old.status != KeyStatus.ACTIVE.value:
        raise KeyCommandError(f"key {old_id} is revoked: issue a new key and rebind its runners instead")
    if old.successor:
        raise KeyCommandError(f"key {old_id} was already rotated to {old.successor}")
    key = replace(
        old,
        access_key_id=new_key_id(),
        runner_count=0,
        created_at=now,
        predecessor=old_id,
        successor=None,
        last_seen=None,
        description=old.description,
    )
    secret = new_secret()
    try:
        keys.rotate(old_id, StoredKey(key, secrets.seal(key.access_key_id, secret)))
    except UnknownKey:
        raise KeyCommandError(f"key {old_id} changed meanwhile (revoked or rotated): look again") from None
    return IssuedKey(key, secret)


def revoke(keys: KeyTable, access_key_id: str, now: float) -> AccessKey:
    """Revoke the key: refused at once by the table, by every execution environment within its cache bound."""
    try:
        return keys.revoke(access_key_id, now)
    except UnknownKey:
        raise KeyCommandError(f"no key {access_key_id}") from None


def listing(keys: KeyTable) -> Iterator[AccessKey]:
    """Every key, oldest first."""
    return iter(sorted(keys.keys(), key=lambda key: (key.created_at or 0, key.access_key_id)))
