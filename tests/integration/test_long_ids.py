"""Every valid taskrunnerId works, up to 1,024 code points of any valid character (up to 4,096 UTF-8 bytes).

DynamoDB holds at most 2,048 bytes in a partition key: the store keys longer ids by a digest and keeps
the id itself in the item. These tests drive the real handler on API Gateway events, with the table on moto
(which enforces the 2,048-byte limit as DynamoDB does).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from heartbeat.handler import Dependencies, make_handler
from heartbeat.model import HeartbeatRequest
from heartbeat.plan import SweepState
from heartbeat.store import RunnerStore, StoreError, UnknownRunner
from tests.conftest import TABLE
from tests.support import FakeClock, LambdaContext, RequestCounter, answer, heartbeat_event

AT_LIMIT = "中" * 682 + "ab"  # 2,048 bytes: the longest id that is its own key
OVER_LIMIT = "中" * 683  # 2,049 bytes: 683 code points, the example

IDS = {
    "ascii-1024": "r" * 1024,
    "2048-bytes": AT_LIMIT,
    "2049-bytes": OVER_LIMIT,
    "1024-four-byte": "\U0001f600" * 1024,  # 4,096 bytes
    "1024-highest": "\U0010ffff" * 1024,
    "mixed-1024": ("a\u00e9中\U00010000" * 256),  # 1+2+3+4 bytes, 2,560 bytes
    "2048-then-tab": AT_LIMIT + "\t",  # 2,049 bytes, the last one a control character the model allows
}


def beat(dependencies: Dependencies, taskrunner_id: str, hostname: str = "h") -> tuple[int, dict[str, Any]]:
    event = heartbeat_event({"taskrunnerId": taskrunner_id, "workerGroup": "wg", "hostname": hostname})
    status, body, _ = answer(make_handler(lambda: dependencies)(event, LambdaContext()))  # type: ignore[arg-type]
    return status, body


def digest_key(taskrunner_id: str) -> str:
    return "\uffffsha256:" + hashlib.sha256(taskrunner_id.encode()).hexdigest()


def items(dynamodb: Any) -> list[dict[str, Any]]:
    return dynamodb.scan(TableName=TABLE)["Items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("taskrunner_id", IDS.values(), ids=IDS.keys())
def test_every_valid_id_answers_200_and_keeps_one_record_under_its_real_id(
    taskrunner_id: str, dependencies: Dependencies, store: RunnerStore, dynamodb: Any, clock: FakeClock
) -> None:
    assert beat(dependencies, taskrunner_id) == (200, {"terminate": False})
    clock.advance(900)
    assert beat(dependencies, taskrunner_id, hostname="moved") == (200, {"terminate": False})

    [item] = items(dynamodb)
    if len(taskrunner_id.encode()) <= 2048:  # keyed as it always was: existing tables need no migration
        assert item["taskrunnerId"]["S"] == taskrunner_id
        assert "fullTaskrunnerId" not in item
    else:
        assert item["taskrunnerId"]["S"] == digest_key(taskrunner_id)
        assert item["fullTaskrunnerId"]["S"] == taskrunner_id
    runner = store.get_runner(taskrunner_id)
    assert runner is not None
    assert (runner.taskrunner_id, runner.heartbeat_count, runner.hostname) == (taskrunner_id, 2, "moved")
    assert [r.taskrunner_id for r in store.runners()] == [taskrunner_id]


def test_a_long_id_heartbeat_is_still_one_dynamodb_request(
    dependencies: Dependencies, dynamodb_calls: RequestCounter
) -> None:
    beat(dependencies, OVER_LIMIT)
    dynamodb_calls.reset()
    beat(dependencies, OVER_LIMIT)
    assert dynamodb_calls.calls == {"UpdateItem": 1}


def test_ids_that_differ_only_past_the_key_limit_never_share_a_record(
    dependencies: Dependencies, store: RunnerStore, dynamodb: Any
) -> None:
    ids = [
        AT_LIMIT,  # its own key
        AT_LIMIT + "c",  # the same first 2,048 bytes, then one more: a truncating key would collide
        AT_LIMIT + "d",
        "中" * 700 + "a",  # both long, differing in the last character only
        "中" * 700 + "b",
        "\U0001f600" * 1023 + "\U0001f601",
    ]
    for beats, taskrunner_id in enumerate(ids, start=1):
        for _ in range(beats):
            assert beat(dependencies, taskrunner_id, hostname=f"host-{beats}")[0] == 200
    assert len(items(dynamodb)) == len(ids)
    for beats, taskrunner_id in enumerate(ids, start=1):
        runner = store.get_runner(taskrunner_id)
        assert runner is not None
        assert (runner.taskrunner_id, runner.heartbeat_count) == (taskrunner_id, beats)
        assert runner.hostname == f"host-{beats}"
    assert sorted(r.taskrunner_id for r in store.runners()) == sorted(ids)


def test_an_id_that_looks_like_a_digest_key_is_its_own_runner(
    dependencies: Dependencies, store: RunnerStore, dynamodb: Any
) -> None:
    lookalike = digest_key(OVER_LIMIT)[1:]  # "sha256:<hex>" without the U+FFFF no valid id can hold
    assert beat(dependencies, OVER_LIMIT)[0] == 200
    assert beat(dependencies, lookalike)[0] == 200
    assert beat(dependencies, lookalike)[0] == 200
    store.save_sweep_state(SweepState(last_sweep_at=1.0, watching_since=1.0))  # the store's own U+FFFF item
    assert {r.taskrunner_id: r.heartbeat_count for r in store.runners()} == {OVER_LIMIT: 1, lookalike: 2}


def test_the_digest_key_itself_is_refused_as_an_id_and_changes_nothing(
    dependencies: Dependencies, store: RunnerStore, dynamodb: Any
) -> None:
    beat(dependencies, OVER_LIMIT)
    before = items(dynamodb)
    status, body = beat(dependencies, digest_key(OVER_LIMIT))
    assert (status, body["__type"]) == (400, "InvalidRequestException")
    assert "regular expression pattern" in body["message"]
    assert items(dynamodb) == before
    assert store.get_runner(digest_key(OVER_LIMIT)) is None  # an operator typing it finds nothing either


def test_a_digest_collision_is_refused_never_merged(
    dependencies: Dependencies, store: RunnerStore, dynamodb: Any, clock: FakeClock
) -> None:
    # SHA-256 has no known collision, so plant one: another id's record under this id's digest key.
    other = "中" * 684
    beat(dependencies, other)
    [planted] = items(dynamodb)
    planted["taskrunnerId"] = {"S": digest_key(OVER_LIMIT)}
    dynamodb.put_item(TableName=TABLE, Item=planted)
    before = dynamodb.get_item(TableName=TABLE, Key={"taskrunnerId": {"S": digest_key(OVER_LIMIT)}})["Item"]

    status, body = beat(dependencies, OVER_LIMIT)

    assert (status, body["__type"]) == (500, "InternalServiceError")
    after = dynamodb.get_item(TableName=TABLE, Key={"taskrunnerId": {"S": digest_key(OVER_LIMIT)}})["Item"]
    assert after == before  # the other runner's record is untouched
    assert store.get_runner(OVER_LIMIT) is None
    with pytest.raises(StoreError, match="share one digest key"):
        store.record_heartbeat(HeartbeatRequest(OVER_LIMIT), clock.now, 3600)
    with pytest.raises(UnknownRunner):
        store.request_terminate(OVER_LIMIT, by="op", reason=None, now=clock.now)
    with pytest.raises(UnknownRunner):
        store.forget(OVER_LIMIT)
    assert store.flag_stale(OVER_LIMIT, last_seen_before=clock.now + 1, now=clock.now, claim_until=clock.now) is False
    assert dynamodb.get_item(TableName=TABLE, Key={"taskrunnerId": {"S": digest_key(OVER_LIMIT)}})["Item"] == before
