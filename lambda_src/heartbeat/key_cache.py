"""Key records kept in the execution environment, so that a steady heartbeat reads no key from DynamoDB.

A record is read again once it is older than REFRESH_SECONDS: that is the bound on how long an
execution environment goes on accepting a key after it was revoked. A secret never changes for
a key id, so it is opened (one KMS Decrypt) once per environment and kept. Ids that are not
ours, or not found, are remembered too (so a flood of forged ids costs one read each per
bound), and the cache holds at most MAX_ENTRIES keys, least recently used first out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from heartbeat.access_keys import AccessKey, KeyStatus, SigningKey, is_key_id
from heartbeat.key_secrets import KeySecrets
from heartbeat.store.keys import KeyTable

REFRESH_SECONDS = 60.0  # the revocation bound: a revoked key stops working everywhere within this
MAX_ENTRIES = 4096


@dataclass(frozen=True)
class _Entry:
    key: AccessKey | None
    ciphertext: bytes | None
    read_at: float


class KeyCache:
    """The keys an execution environment has seen, refreshed once older than refresh_seconds."""

    def __init__(
        self,
        keys: KeyTable,
        secrets: KeySecrets,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = REFRESH_SECONDS,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._keys = keys
        self._secrets = secrets
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._opened: dict[str, tuple[bytes, str]] = {}  # id -> (ciphertext, secret)

    def signing_key(self, access_key_id: str) -> SigningKey | None:
        """The active key with this id and its secret, or None (unknown, not ours, or revoked)."""
        entry = self._entry(access_key_id)
        if entry.key is None or entry.ciphertext is None or entry.key.status != KeyStatus.ACTIVE.value:
            return None
        opened = self._opened.get(access_key_id)
        if opened is None or opened[0] != entry.ciphertext:
            opened = (entry.ciphertext, self._secrets.open(access_key_id, entry.ciphertext))
            self._opened[access_key_id] = opened
        return SigningKey(entry.key, opened[1])

    def record(self, access_key_id: str) -> AccessKey | None:
        """The key's record whatever its status (for the binding rules), or None."""
        return self._entry(access_key_id).key

    def forget(self, access_key_id: str) -> None:
        """Read the key afresh next time (after a write that changed it, e.g. a refused registration)."""
        self._entries.pop(access_key_id, None)

    def _entry(self, access_key_id: str) -> _Entry:
        now = self._clock()
        entry = self._entries.get(access_key_id)
        if entry is None or now - entry.read_at >= self._refresh_seconds:
            stored = self._keys.get(access_key_id) if is_key_id(access_key_id) else None
            entry = _Entry(stored.key if stored else None, stored.secret_ciphertext if stored else None, read_at=now)
            self._entries[access_key_id] = entry
            if len(self._entries) > self._max_entries:
                dropped, _ = self._entries.popitem(last=False)
                self._opened.pop(dropped, None)
        self._entries.move_to_end(access_key_id)
        return entry
