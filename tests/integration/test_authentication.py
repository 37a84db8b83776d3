"""Authenticated heartbeats through the real handler, store (moto) and KMS (moto), on both front doors' events.

Every request is signed by botocore's signer for the path and host its front door passes on
(API Gateway's stage path, the ALB's root); every refusal answers AWS's error and stores nothing.
"""

from __future__ import annotations

import base64
import json
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from heartbeat.access_keys import KeyStatus
from heartbeat.handler import make_handler
from heartbeat.key_cache import REFRESH_SECONDS
from heartbeat.key_secrets import SecretsUnavailable
from heartbeat.sigv4 import MAX_SKEW_SECONDS
from heartbeat.store.items import KEY_ATTRIBUTE
from heartbeat_ops import keys as key_commands
from tests.conftest import TABLE, Authenticated, EventFactory
from tests.support import (
    EXAMPLE_KEY_ID,
    LambdaContext,
    RequestCounter,
    answer,
    heartbeat_event,
    set_event_header,
    sign_event,
)


def beat(
    authenticated: Authenticated,
    make_event: EventFactory,
    issued: key_commands.IssuedKey | None,
    taskrunner_id: str = "runner-1",
    worker_group: str | None = "etl",
    **signing: Any,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"taskrunnerId": taskrunner_id, "hostname": "h-1"}
    if worker_group is not None:
        body["workerGroup"] = worker_group
    event = make_event(body)
    if issued is not None:
        sign_event(event, issued.key.access_key_id, issued.secret_access_key, at=authenticated.clock.now, **signing)
    else:
        set_event_header(event, "Authorization", None)  # the canonical event's own signature taken off
    handler = make_handler(authenticated.dependencies)
    return answer(handler(event, LambdaContext()))  # type: ignore[arg-type]


def stored(authenticated: Authenticated, taskrunner_id: str) -> dict[str, Any] | None:
    item = authenticated.dynamodb.get_item(TableName=TABLE, Key={"taskrunnerId": {"S": taskrunner_id}}).get("Item")
    return item  # type: ignore[no-any-return]


def table_items(authenticated: Authenticated) -> list[dict[str, Any]]:
    return authenticated.dynamodb.scan(TableName=TABLE)["Items"]  # type: ignore[no-any-return]


def refused(result: tuple[int, dict[str, Any], dict[str, str]], code: str, status: int = 400) -> str:
    got_status, body, headers = result
    assert (got_status, body["__type"], headers["x-amzn-ErrorType"]) == (status, code, code)
    parsedate_to_datetime(headers["Date"])  # every answer dates itself: SDKs correct their clock from it
    return str(body["message"])


def test_a_heartbeat_signed_with_an_issued_key_is_answered_and_binds_the_runner(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    issued = authenticated.issue()
    status, body, _ = beat(authenticated, make_event, issued)
    assert (status, body) == (200, {"terminate": False})
    item = stored(authenticated, "runner-1")
    assert item is not None
    assert item[KEY_ATTRIBUTE]["S"] == issued.key.access_key_id
    assert authenticated.stored_key(issued.key.access_key_id).runner_count == 1
    assert beat(authenticated, make_event, issued)[0] == 200
    assert authenticated.stored_key(issued.key.access_key_id).runner_count == 1  # the same runner, counted once


def test_the_canonical_events_verify_as_their_front_doors_deliver_them(authenticated: Authenticated) -> None:
    # The example key the events were signed with, issued into the keys table under its own id and secret.
    from heartbeat.access_keys import AccessKey
    from heartbeat.store.keys import StoredKey
    from tests.support import EXAMPLE_SECRET, load_event

    key = AccessKey(EXAMPLE_KEY_ID)
    authenticated.keys.create(StoredKey(key, authenticated.secrets.seal(EXAMPLE_KEY_ID, EXAMPLE_SECRET)))
    handler = make_handler(authenticated.dependencies)
    for name in ("heartbeat_rest", "heartbeat_alb"):
        status, body, _ = answer(handler(load_event(name), LambdaContext()))  # type: ignore[arg-type]
        assert (status, body) == (200, {"terminate": False}), body


def test_a_steady_signed_heartbeat_costs_one_update_item_as_an_unsigned_one_did(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    issued = authenticated.issue()
    calls = RequestCounter(authenticated.dynamodb)
    beat(authenticated, make_event, issued)  # first: the key read, the failed update, the registration
    assert calls.calls == {"GetItem": 1, "UpdateItem": 1, "TransactWriteItems": 1}
    for _ in range(5):
        calls.reset()
        authenticated.clock.advance(REFRESH_SECONDS / 6)
        assert beat(authenticated, make_event, issued)[0] == 200
        assert calls.calls == {"UpdateItem": 1}


# Each refusal: AWS's error, and nothing stored.


def test_an_unsigned_heartbeat_is_a_missing_authentication_token_and_stores_nothing(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    result = beat(authenticated, make_event, None)
    assert refused(result, "MissingAuthenticationTokenException", 403) == "Request is missing Authentication Token"
    assert table_items(authenticated) == []


def test_a_malformed_authorization_is_an_incomplete_signature(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    event = make_event({"taskrunnerId": "runner-1"})
    set_event_header(event, "Authorization", "AWS4-HMAC-SHA256 Credential=x")
    set_event_header(event, "X-Amz-Date", "20261124T120000Z")
    result = answer(make_handler(authenticated.dependencies)(event, LambdaContext()))  # type: ignore[arg-type]
    refused(result, "IncompleteSignatureException")
    assert table_items(authenticated) == []


def test_a_key_the_service_never_issued_is_an_unrecognized_client(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    issued = authenticated.issue()
    forged = key_commands.IssuedKey(
        authenticated.stored_key(issued.key.access_key_id).__class__("HBAKAAAAAAAAAAAAAAAA"), issued.secret_access_key
    )
    assert "security token" in refused(beat(authenticated, make_event, forged), "UnrecognizedClientException")
    assert table_items(authenticated) == []


def test_a_wrong_secret_is_an_invalid_signature(authenticated: Authenticated, make_event: EventFactory) -> None:
    issued = authenticated.issue()
    wrong = key_commands.IssuedKey(issued.key, issued.secret_access_key[::-1])
    assert "does not match" in refused(beat(authenticated, make_event, wrong), "InvalidSignatureException")
    assert table_items(authenticated) == []


def test_a_body_changed_after_signing_is_an_invalid_signature(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    issued = authenticated.issue()
    event = sign_event(
        make_event({"taskrunnerId": "runner-1"}), issued.key.access_key_id, issued.secret_access_key,
        at=authenticated.clock.now,
    )  # fmt: skip
    event["body"] = base64.b64encode(json.dumps({"taskrunnerId": "victim"}).encode()).decode()
    event["isBase64Encoded"] = True
    result = answer(make_handler(authenticated.dependencies)(event, LambdaContext()))  # type: ignore[arg-type]
    refused(result, "InvalidSignatureException")
    assert table_items(authenticated) == []


@pytest.mark.parametrize(("skew", "words"), [(-MAX_SKEW_SECONDS - 1, "expired"), (MAX_SKEW_SECONDS + 1, "not yet")])
def test_a_signature_over_5_minutes_off_the_service_clock_is_refused(
    authenticated: Authenticated, make_event: EventFactory, skew: int, words: str
) -> None:
    issued = authenticated.issue()
    event = sign_event(
        make_event({"taskrunnerId": "runner-1"}), issued.key.access_key_id, issued.secret_access_key,
        at=authenticated.clock.now + skew,
    )  # fmt: skip
    result = answer(make_handler(authenticated.dependencies)(event, LambdaContext()))  # type: ignore[arg-type]
    assert words in refused(result, "InvalidSignatureException")
    assert table_items(authenticated) == []


def test_the_rest_api_verifies_the_path_the_client_called_not_the_resource_path(
    authenticated: Authenticated,
) -> None:
    issued = authenticated.issue()
    handler = make_handler(authenticated.dependencies)
    # A custom domain with the base path "heartbeat": the client called and signed /heartbeat/.
    event = heartbeat_event({"taskrunnerId": "runner-1"})
    event["requestContext"]["path"] = "/heartbeat/"
    set_event_header(event, "Host", "heartbeat.example.com")
    sign_event(event, issued.key.access_key_id, issued.secret_access_key, at=authenticated.clock.now)
    assert answer(handler(event, LambdaContext()))[0] == 200  # type: ignore[arg-type]
    # The same signature replayed where the request context says another path was called: refused.
    event["requestContext"]["path"] = "/prod/"
    refused(answer(handler(event, LambdaContext())), "InvalidSignatureException")  # type: ignore[arg-type]


# Runners bound to keys


def test_a_runner_registered_by_one_key_is_refused_under_another_and_left_as_it_was(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    owner, intruder = authenticated.issue(), authenticated.issue()
    beat(authenticated, make_event, owner)
    before = stored(authenticated, "runner-1")
    authenticated.clock.advance(60)
    message = refused(beat(authenticated, make_event, intruder, worker_group="fast"), "AccessDeniedException")
    assert "registered to another access key" in message
    assert owner.key.access_key_id not in message
    assert stored(authenticated, "runner-1") == before


def test_a_scoped_key_may_report_only_its_worker_groups(authenticated: Authenticated, make_event: EventFactory) -> None:
    issued = authenticated.issue(worker_groups=["etl", "reports"])
    assert beat(authenticated, make_event, issued, worker_group="etl")[0] == 200
    assert beat(authenticated, make_event, issued, worker_group="reports")[0] == 200  # moves its own runner
    assert stored(authenticated, "runner-1")["workerGroup"]["S"] == "reports"  # type: ignore[index]
    for group in ("fast", None, ""):
        refused(beat(authenticated, make_event, issued, worker_group=group), "AccessDeniedException")
    assert stored(authenticated, "runner-1")["workerGroup"]["S"] == "reports"  # type: ignore[index]
    refused(beat(authenticated, make_event, issued, "runner-2", worker_group="fast"), "AccessDeniedException")
    assert stored(authenticated, "runner-2") is None


def test_a_key_at_its_cap_registers_no_new_runner_and_stores_nothing(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    issued = authenticated.issue(max_runners=2)
    assert beat(authenticated, make_event, issued, "r-1")[0] == 200
    assert beat(authenticated, make_event, issued, "r-2")[0] == 200
    message = refused(beat(authenticated, make_event, issued, "r-3"), "LimitExceededException")
    assert "limit of 2 runners" in message
    assert stored(authenticated, "r-3") is None
    assert authenticated.stored_key(issued.key.access_key_id).runner_count == 2
    assert beat(authenticated, make_event, issued, "r-1")[0] == 200  # its own runners still beat
    authenticated.store.forget("r-2")  # an operator forgets one: a slot is free again
    assert authenticated.stored_key(issued.key.access_key_id).runner_count == 1
    assert beat(authenticated, make_event, issued, "r-3")[0] == 200


def test_a_revoked_key_stops_working_within_the_cache_bound(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    issued = authenticated.issue()
    assert beat(authenticated, make_event, issued)[0] == 200
    key_commands.revoke(authenticated.keys, issued.key.access_key_id, authenticated.clock.now)
    # A new runner is refused at once (its registration checks the key in the table)...
    refused(beat(authenticated, make_event, issued, "runner-2"), "UnrecognizedClientException")
    assert stored(authenticated, "runner-2") is None
    # ... and every heartbeat once the execution environment's copy is older than the bound.
    authenticated.clock.advance(REFRESH_SECONDS)
    refused(beat(authenticated, make_event, issued), "UnrecognizedClientException")


def test_rotation_moves_each_runner_at_its_first_heartbeat_under_the_new_key_with_no_gap(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    old = authenticated.issue(worker_groups=["etl"], max_runners=5)
    for runner_id in ("r-1", "r-2"):
        assert beat(authenticated, make_event, old, runner_id)[0] == 200
    new = key_commands.rotate(authenticated.keys, authenticated.secrets, old.key.access_key_id, authenticated.clock.now)
    assert (new.key.worker_groups, new.key.max_runners) == (("etl",), 5)
    authenticated.clock.advance(REFRESH_SECONDS)  # the environment reads the old key's successor
    assert beat(authenticated, make_event, new, "r-1")[0] == 200  # r-1's host switched: r-1 moves
    assert stored(authenticated, "r-1")[KEY_ATTRIBUTE]["S"] == new.key.access_key_id  # type: ignore[index]
    assert beat(authenticated, make_event, old, "r-1")[0] == 200  # another process of r-1 still on the old key
    assert beat(authenticated, make_event, old, "r-2")[0] == 200  # r-2's host has not switched yet
    assert stored(authenticated, "r-1")[KEY_ATTRIBUTE]["S"] == new.key.access_key_id  # type: ignore[index]
    counts = (
        authenticated.stored_key(old.key.access_key_id).runner_count,
        authenticated.stored_key(new.key.access_key_id).runner_count,
    )
    assert counts == (1, 1)
    assert beat(authenticated, make_event, new, "r-2")[0] == 200
    key_commands.revoke(authenticated.keys, old.key.access_key_id, authenticated.clock.now)
    authenticated.clock.advance(REFRESH_SECONDS)
    refused(beat(authenticated, make_event, old, "r-1"), "UnrecognizedClientException")
    assert beat(authenticated, make_event, new, "r-1")[0] == 200


def test_a_record_from_before_authentication_is_claimed_by_the_first_key_within_its_scope(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    authenticated.store.record_heartbeat(
        __import__("heartbeat.model", fromlist=["HeartbeatRequest"]).HeartbeatRequest("runner-1", "etl"),
        authenticated.clock.now,
        3600,
    )
    issued = authenticated.issue()
    assert beat(authenticated, make_event, issued)[0] == 200
    item = stored(authenticated, "runner-1")
    assert item is not None
    assert (item[KEY_ATTRIBUTE]["S"], item["heartbeatCount"]["N"]) == (issued.key.access_key_id, "2")
    assert authenticated.stored_key(issued.key.access_key_id).runner_count == 1


def test_an_operator_rebinds_a_runner_to_another_key(authenticated: Authenticated, make_event: EventFactory) -> None:
    first, second = authenticated.issue(), authenticated.issue(max_runners=1)
    beat(authenticated, make_event, first)
    runner = authenticated.store.rebind("runner-1", second.key, authenticated.clock.now)
    assert runner.key_id == second.key.access_key_id
    refused(beat(authenticated, make_event, first), "AccessDeniedException")
    assert beat(authenticated, make_event, second)[0] == 200
    assert [authenticated.stored_key(k.key.access_key_id).runner_count for k in (first, second)] == [0, 1]


def test_kms_failing_answers_a_retryable_internal_error_and_stores_nothing(
    authenticated: Authenticated, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = authenticated.issue()

    def failing(*_: Any, **__: Any) -> str:
        raise SecretsUnavailable("kms decrypt failed: KMSInternalException")

    monkeypatch.setattr(authenticated.secrets, "open", failing)
    status, body, _ = beat(authenticated, make_event, issued)
    assert (status, body["__type"]) == (500, "InternalServiceError")
    assert table_items(authenticated) == []


def test_keys_are_listed_without_their_secrets(authenticated: Authenticated) -> None:
    issued = authenticated.issue(worker_groups=["etl"], max_runners=3, description="etl fleet")
    [listed] = key_commands.listing(authenticated.keys)
    assert (listed.access_key_id, listed.status, listed.worker_groups) == (
        issued.key.access_key_id, KeyStatus.ACTIVE.value, ("etl",),
    )  # fmt: skip
    assert issued.secret_access_key not in repr(listed)
    raw = authenticated.dynamodb.scan(TableName=authenticated.keys.name)["Items"]
    assert issued.secret_access_key.encode() not in json.dumps(raw, default=repr).encode()


# The sweeper's census: expired records free their key's slots; counts err high, never low.


def test_an_expired_runner_frees_its_key_s_slot_at_the_next_sweep(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    from heartbeat.sweeper import sweep

    issued = authenticated.issue(max_runners=1)
    assert beat(authenticated, make_event, issued, "r-1")[0] == 200
    authenticated.clock.advance(authenticated.config.retention_seconds + 1)  # r-1's record has expired
    refused(beat(authenticated, make_event, issued, "r-2"), "LimitExceededException")
    sweep(authenticated.store, authenticated.config, authenticated.clock.now)
    assert authenticated.stored_key(issued.key.access_key_id).runner_count == 0
    assert beat(authenticated, make_event, issued, "r-2")[0] == 200
    sweep(authenticated.store, authenticated.config, authenticated.clock.advance(300))
    key = authenticated.stored_key(issued.key.access_key_id)
    assert (key.runner_count, key.last_seen) == (1, authenticated.clock.now - 300)  # last use, as the sweep saw it


def test_a_retired_runner_frees_its_key_s_slot_at_the_next_sweep(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    # A scale-in retired on purpose, then a scale-out under the same capped key: the new host must fit.
    from heartbeat.sweeper import sweep

    issued = authenticated.issue(max_runners=1)
    assert beat(authenticated, make_event, issued, "r-1")[0] == 200
    authenticated.store.retire("r-1", by="test", reason="scaled in", now=authenticated.clock.now)
    sweep(authenticated.store, authenticated.config, authenticated.clock.advance(60))
    assert authenticated.stored_key(issued.key.access_key_id).runner_count == 0
    assert beat(authenticated, make_event, issued, "r-2")[0] == 200


def test_a_runner_bound_during_the_census_scan_is_counted_high_never_missed(
    authenticated: Authenticated, make_event: EventFactory
) -> None:
    issued = authenticated.issue()
    assert beat(authenticated, make_event, issued, "r-1")[0] == 200
    census = authenticated.store.begin_key_census()
    assert census is not None
    assert beat(authenticated, make_event, issued, "r-2")[0] == 200  # bound after the census began...
    list(authenticated.store.sweep_candidates(authenticated.clock.now, census))  # ... and seen by its scan
    authenticated.store.record_key_census(census)
    assert authenticated.stored_key(issued.key.access_key_id).runner_count == 3  # high until the next census
    census = authenticated.store.begin_key_census()
    assert census is not None
    list(authenticated.store.sweep_candidates(authenticated.clock.now, census))
    authenticated.store.record_key_census(census)
    assert authenticated.stored_key(issued.key.access_key_id).runner_count == 2


def test_the_census_leaves_the_sweep_s_candidates_as_they_were(authenticated: Authenticated) -> None:
    from heartbeat.model import HeartbeatRequest

    issued = authenticated.issue()
    for runner_id in ("a", "b"):
        authenticated.store.record_heartbeat(
            HeartbeatRequest(runner_id, "etl"), authenticated.clock.now, 3600, key=issued.key
        )
    authenticated.store.request_terminate("b", by="ops", reason=None, now=authenticated.clock.now)
    census = authenticated.store.begin_key_census()
    with_census = list(authenticated.store.sweep_candidates(authenticated.clock.now, census))
    without = list(authenticated.store.sweep_candidates(authenticated.clock.now))
    assert with_census == without
    assert [c.taskrunner_id for c in without] == ["a"]
    assert census is not None
    assert census.live[issued.key.access_key_id] == 2  # the terminating runner still holds its slot
