"""Authentication's cost (AUTH_MODE=sigv4): extra requests per heartbeat, and the handler time verification adds.

1. Requests per heartbeat, through the real handler on moto (DynamoDB and KMS), every HTTP
   attempt counted at before-send: a new runner, a steady heartbeat with the key cached, and a
   steady heartbeat whose key the execution environment read over 60 s before (the revocation
   bound).
2. Handler time: the same botocore-signed events through lambda_handler with authentication on
   and off, DynamoDB answered with a canned UpdateItem (as in section 2 of make bench) and the key
   already in the environment's cache, as on a steady heartbeat. Signing is the client's work
   and is done before timing.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections import Counter
from typing import Any

import boto3
from moto import mock_aws

from bench.canned import Attempts, CannedDynamoDB
from heartbeat.access_keys import AccessKey
from heartbeat.clients import CLIENT_CONFIG
from heartbeat.config import AuthMode, Config
from heartbeat.handler import Dependencies, make_handler
from heartbeat.key_cache import REFRESH_SECONDS, KeyCache
from heartbeat.key_secrets import KeySecrets
from heartbeat.store import RunnerStore
from heartbeat.store.keys import KeyTable, StoredKey
from heartbeat_local.gateway import LocalLambdaContext
from heartbeat_local.server import create_keys_kms_key, create_keys_table, create_table, keys_table_name
from heartbeat_ops import keys as key_commands
from tests.support import heartbeat_event, sign_event

TABLE = "bench-auth"
KEYS: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
START = 1_795_521_600.0
BEAT = {"taskrunnerId": "i-0a1b2c3d4e5f67890-taskrunner", "workerGroup": "etl-workers-prod"}
STEADY_PATH = "steady heartbeat, key cached"


def _signed(issued: key_commands.IssuedKey, at: float, shape: str = "rest") -> dict[str, Any]:
    event = heartbeat_event(dict(BEAT), shape=shape)
    return sign_event(event, issued.key.access_key_id, issued.secret_access_key, at=at)


def requests_per_heartbeat() -> dict[str, Any]:
    """Each path with authentication on, its DynamoDB attempts by operation and its KMS calls."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", **KEYS)
        kms = boto3.client("kms", **KEYS)
        create_table(dynamodb, TABLE)
        create_keys_table(dynamodb, keys_table_name(TABLE))
        keys = KeyTable(keys_table_name(TABLE), dynamodb)
        secrets = KeySecrets(create_keys_kms_key(kms), client=kms)
        issued = key_commands.issue(keys, secrets, START)
        kms_calls: Counter[str] = Counter()
        kms.meta.events.register("before-send.kms", lambda request, **_: kms_calls.update(["Decrypt"]))
        attempts = Attempts(dynamodb)
        clock = [START]
        config = Config(TABLE, auth_mode=AuthMode.SIGV4, keys_table_name=keys.name)
        store = RunnerStore(TABLE, client=dynamodb, keys_table_name=keys.name)
        cache = KeyCache(keys, secrets, clock=lambda: clock[0])
        handler = make_handler(lambda: Dependencies(config, store, lambda: clock[0], keys=cache))

        def beat(path: str) -> dict[str, Any]:
            event = _signed(issued, clock[0])
            kms_calls.clear()
            with contextlib.redirect_stdout(open(os.devnull, "w")), attempts.measuring() as counted:
                result = handler(event, LocalLambdaContext())  # type: ignore[arg-type]
            if result["statusCode"] != 200:
                raise RuntimeError(f"{path}: {result}")
            return {"path": path, "requests": dict(counted), "kms": dict(kms_calls)}

        rows = [beat("first heartbeat (new runner, key not yet read)")]
        clock[0] += REFRESH_SECONDS / 2
        rows.append(beat(STEADY_PATH))
        clock[0] += 900  # a 15-minute beat: this environment read the key over 60 s ago
        rows.append(beat("steady heartbeat, key read again (> 60 s)"))
    return {"paths": rows}


class _OneKey:
    """The key table and KMS answered from memory: a steady heartbeat finds its key cached anyway."""

    def __init__(self, issued: key_commands.IssuedKey) -> None:
        self.stored = StoredKey(issued.key, b"sealed")
        self.secret = issued.secret_access_key

    def get(self, access_key_id: str) -> StoredKey | None:
        return self.stored if access_key_id == self.stored.key.access_key_id else None

    def open(self, access_key_id: str, ciphertext: bytes) -> str:
        return self.secret


def handler_time(iterations: int) -> dict[str, Any]:
    """lambda_handler on signed REST and ALB events, authentication on beside off; p50 and p99 in ms."""
    issued = key_commands.IssuedKey(AccessKey("HBAKBENCHBENCHBENCHB"), "benchbenchbenchbenchbenchbenchbenchbench")
    one_key = _OneKey(issued)
    now = time.time()
    rows: dict[str, Any] = {"iterations": iterations}
    for shape in ("rest", "alb"):
        events = [_signed(issued, now, shape) for _ in range(iterations)]
        samples: dict[str, list[float]] = {}
        for mode in ("none", "sigv4"):
            client = boto3.client("dynamodb", config=CLIENT_CONFIG, **KEYS)
            CannedDynamoDB(client)
            cache = KeyCache(one_key, one_key, clock=time.monotonic) if mode == "sigv4" else None  # type: ignore[arg-type]
            store = RunnerStore(TABLE, client=client, keys_table_name="keys")
            dependencies = Dependencies(Config(TABLE), store, time.time, keys=cache)
            handler = make_handler(lambda d=dependencies: d)  # type: ignore[misc]
            timings = []
            with contextlib.redirect_stdout(open(os.devnull, "w")):
                for event in events[:20]:
                    handler(json.loads(json.dumps(event)), LocalLambdaContext())  # type: ignore[arg-type]
                for event in events:
                    started = time.perf_counter()
                    result = handler(event, LocalLambdaContext())  # type: ignore[arg-type]
                    timings.append((time.perf_counter() - started) * 1000)
                    if result["statusCode"] != 200:
                        raise RuntimeError(f"{shape}, {mode}: {result}")
            samples[mode] = timings
        rows[shape] = {
            mode: {"p50": statistics.median(t), "p99": sorted(t)[int(0.99 * len(t))]} for mode, t in samples.items()
        }
        rows[shape]["added_p50_ms"] = rows[shape]["sigv4"]["p50"] - rows[shape]["none"]["p50"]
    return rows


def check(result: dict[str, Any]) -> list[str]:
    """The deterministic target: a steady heartbeat with its key cached costs one UpdateItem, and no KMS call."""
    steady = next(row for row in result["paths"] if row["path"] == STEADY_PATH)
    if steady["requests"] != {"UpdateItem": 1} or steady["kms"]:
        return [f"authenticated steady heartbeat: {steady}, expected 1 UpdateItem and no KMS call"]
    return []


def print_section(result: dict[str, Any]) -> None:
    print("\n8. Authentication (AUTH_MODE=sigv4): extra requests, and the handler time verification adds")
    for row in result["requests"]["paths"]:
        requests = ", ".join(f"{n} {op}" for op, n in row["requests"].items())
        kms = ", ".join(f"{n} KMS {op}" for op, n in row["kms"].items()) or "no KMS call"
        print(f"   {row['path']:<48} {requests:<44} {kms}")
    timing = result["handler"]
    for shape in ("rest", "alb"):
        row = timing[shape]
        print(f"   lambda_handler, {shape:<4} event: off p50 {row['none']['p50']:.3f} ms, sigv4 p50 "
              f"{row['sigv4']['p50']:.3f} ms (p99 {row['sigv4']['p99']:.3f} ms): added p50 "
              f"{row['added_p50_ms']:.3f} ms ({timing['iterations']} calls a side)")  # fmt: skip
