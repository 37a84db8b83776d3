"""The key rules (scope, binding) and the execution environment's key cache (its revocation bound)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from heartbeat.access_keys import (
    AccessKey,
    Binding,
    KeyStatus,
    binding,
    check_worker_group,
    is_key_id,
    new_key_id,
    new_secret,
)
from heartbeat.errors import AccessDeniedException
from heartbeat.key_cache import REFRESH_SECONDS, KeyCache
from heartbeat.store.keys import StoredKey
from tests.support import FakeClock


def test_issued_ids_and_secrets_have_the_shape_of_aws_credentials_and_never_repeat() -> None:
    ids = {new_key_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 20 and i.startswith("HBAK") and is_key_id(i) for i in ids)
    assert len(new_secret()) == 40
    assert not is_key_id("AKIAIOSFODNN7EXAMPLE")  # an AWS key is never looked up


@pytest.mark.parametrize(
    ("groups", "sent", "allowed"),
    [(None, None, True), (None, "x", True), (("etl",), "etl", True), (("etl",), "ETL", False),
     (("etl",), None, False), (("etl", ""), "", True), (("etl",), "", False)],
)  # fmt: skip
def test_a_scoped_key_reports_only_its_groups(groups: tuple[str, ...] | None, sent: str | None, allowed: bool) -> None:
    key = AccessKey("HBAKAAAAAAAAAAAAAAAA", worker_groups=groups)
    if allowed:
        check_worker_group(key, sent)
    else:
        with pytest.raises(AccessDeniedException, match="not authorized to report"):
            check_worker_group(key, sent)


def test_binding_across_a_rotation_and_otherwise() -> None:
    old, new, other = "HBAKOLDOLDOLDOLDOLDO", "HBAKNEWNEWNEWNEWNEWN", "HBAKOTHEROTHEROTHERO"
    rotated = AccessKey(old, successor=new)
    successor = AccessKey(new, predecessor=old)
    assert binding(successor, new) is Binding.OWN
    assert binding(successor, None) is Binding.CLAIM
    assert binding(successor, old) is Binding.MOVE  # the runner moves to the new key
    assert binding(rotated, new) is Binding.KEEP  # the old key still beats for a moved runner
    assert binding(rotated, other) is Binding.DENIED
    assert binding(AccessKey(other), old) is Binding.DENIED


class Keys:
    """A keys table of records in memory, counting reads."""

    def __init__(self, *keys: AccessKey) -> None:
        self.stored = {k.access_key_id: StoredKey(k, b"sealed:" + k.access_key_id.encode()) for k in keys}
        self.reads = 0

    def get(self, access_key_id: str) -> StoredKey | None:
        self.reads += 1
        return self.stored.get(access_key_id)


class Secrets:
    def __init__(self) -> None:
        self.opened = 0

    def open(self, access_key_id: str, ciphertext: bytes) -> str:
        self.opened += 1
        return "secret-of-" + access_key_id


KEY = "HBAKAAAAAAAAAAAAAAAA"


def cache(keys: Keys, clock: FakeClock, **options: int) -> tuple[KeyCache, Secrets]:
    secrets = Secrets()
    return KeyCache(keys, secrets, clock=clock, **options), secrets  # type: ignore[arg-type]


def test_a_key_is_read_once_a_bound_and_its_secret_opened_once() -> None:
    keys, clock = Keys(AccessKey(KEY)), FakeClock()
    keyed, secrets = cache(keys, clock)
    for _ in range(10):
        signing = keyed.signing_key(KEY)
        assert signing is not None
        assert signing.secret_access_key == "secret-of-" + KEY
        clock.advance(REFRESH_SECONDS / 10 - 0.001)
    assert (keys.reads, secrets.opened) == (1, 1)
    clock.advance(1)
    keyed.signing_key(KEY)
    assert (keys.reads, secrets.opened) == (2, 1)  # read again, its secret kept


def test_a_revoked_key_stops_signing_once_the_cached_record_is_older_than_the_bound() -> None:
    keys, clock = Keys(AccessKey(KEY)), FakeClock()
    keyed, _ = cache(keys, clock)
    assert keyed.signing_key(KEY) is not None
    keys.stored[KEY] = replace(keys.stored[KEY], key=AccessKey(KEY, status=KeyStatus.REVOKED.value))
    clock.advance(REFRESH_SECONDS - 1)
    assert keyed.signing_key(KEY) is not None  # within the bound: the environment's copy
    clock.advance(1)
    assert keyed.signing_key(KEY) is None
    assert keyed.record(KEY) is not None  # the record stays readable, for the binding rules


def test_ids_of_another_shape_are_never_read_and_unknown_ones_once_a_bound() -> None:
    keys, clock = Keys(), FakeClock()
    keyed, _ = cache(keys, clock)
    for _ in range(5):
        assert keyed.signing_key("AKIAIOSFODNN7EXAMPLE") is None
        assert keyed.signing_key("HBAKZZZZZZZZZZZZZZZZ") is None
    assert keys.reads == 1


def test_the_cache_holds_at_most_its_bound_of_keys() -> None:
    ids = [f"HBAK{chr(65 + i // 26)}{chr(65 + i % 26)}AAAAAAAAAAAAAA" for i in range(10)]
    keys, clock = Keys(*(AccessKey(i) for i in ids)), FakeClock()
    keyed, _ = cache(keys, clock, max_entries=4)
    for key_id in ids:
        keyed.signing_key(key_id)
    keyed.signing_key(ids[-1])
    assert keys.reads == 10  # the newest is still held
    keyed.signing_key(ids[0])
    assert keys.reads == 11  # the oldest was dropped
