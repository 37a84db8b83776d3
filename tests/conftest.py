"""Fixtures shared by every test: offline AWS settings, an in-memory table, the handler's dependencies."""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from moto import mock_aws

from heartbeat.clients import CLIENT_CONFIG
from heartbeat.config import AuthMode, Config
from heartbeat.handler import Dependencies, default_dependencies
from heartbeat.key_cache import KeyCache
from heartbeat.key_secrets import KeySecrets
from heartbeat.observability import SERVICE, metrics
from heartbeat.store import RunnerStore
from heartbeat.store.keys import KeyTable
from heartbeat_local.server import (
    EmbeddedDynamoDB,
    create_keys_kms_key,
    create_keys_table,
    create_table,
    keys_table_name,
)
from heartbeat_ops import keys as key_commands
from tests.support import EVENT_SHAPES, FakeClock, RequestCounter, heartbeat_event

TABLE = "runners-test"
KEYS_TABLE = keys_table_name(TABLE)

# Hypothesis: 'ci' (the default, what make test runs) and 'fuzz' (make fuzz: the long run).
settings.register_profile(
    "ci", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "fuzz", max_examples=50_000, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reaches AWS: fake credentials, a fixed region, no X-Ray."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    # The deployed default is sigv4; a test of the environment-built handler that wants it sets it.
    monkeypatch.setenv("AUTH_MODE", "none")
    default_dependencies.cache_clear()
    metrics.clear_metrics()
    yield
    default_dependencies.cache_clear()
    metrics.clear_metrics()


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A DynamoDB client on moto's in-memory backend, with the runners table created."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        yield client


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[EmbeddedDynamoDB]:
    """moto's DynamoDB over real HTTP on loopback, for faults injected on the wire."""
    server = EmbeddedDynamoDB()
    yield server
    server.stop()


@pytest.fixture
def http_dynamodb(dynamodb_server: EmbeddedDynamoDB) -> Any:
    """A client configured exactly as the deployed store's (timeouts, retries), on a fresh table (`.table`)."""
    keys = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    table = f"t-{uuid.uuid4().hex[:8]}"
    # Created with default timeouts: the server's first request loads moto's backend, slower than 1 s.
    create_table(boto3.client("dynamodb", endpoint_url=dynamodb_server.endpoint, **keys), table)
    client = boto3.client("dynamodb", endpoint_url=dynamodb_server.endpoint, config=CLIENT_CONFIG, **keys)
    client.table = table
    return client


EventFactory = Callable[..., dict[str, Any]]


@pytest.fixture(params=EVENT_SHAPES)
def event_shape(request: pytest.FixtureRequest) -> str:
    """Each front door's event shape in turn: a test using it runs once per shape."""
    shape: str = request.param
    return shape


@pytest.fixture
def make_event(event_shape: str) -> EventFactory:
    """heartbeat_event for the shape under test (same arguments)."""
    return functools.partial(heartbeat_event, shape=event_shape)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config() -> Config:
    return Config(table_name=TABLE)  # the defaults: heartbeat.config's


@pytest.fixture
def store(dynamodb: Any) -> RunnerStore:
    return RunnerStore(TABLE, client=dynamodb)


@pytest.fixture
def dynamodb_calls(dynamodb: Any) -> RequestCounter:
    """Counts every DynamoDB call made through the shared client."""
    return RequestCounter(dynamodb)


@pytest.fixture
def dependencies(config: Config, store: RunnerStore, clock: FakeClock) -> Dependencies:
    return Dependencies(config=config, store=store, clock=clock)


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON log lines the handlers write, as Powertools formats them in Lambda."""
    logger = logging.getLogger(SERVICE)
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logger.handlers[0].formatter)
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in sink.getvalue().splitlines()]
    logger.removeHandler(handler)


@dataclass
class Authenticated:
    """The service with authentication on, on moto: the tables, the KMS key, and the handler's dependencies."""

    dynamodb: Any
    keys: KeyTable
    secrets: KeySecrets
    store: RunnerStore
    clock: FakeClock
    config: Config
    cache: KeyCache

    def issue(self, **scope: Any) -> key_commands.IssuedKey:
        """A key issued as `heartbeat-ops keys create` issues it."""
        return key_commands.issue(self.keys, self.secrets, self.clock.now, **scope)

    def dependencies(self) -> Dependencies:
        return Dependencies(config=self.config, store=self.store, clock=self.clock, keys=self.cache)

    def stored_key(self, access_key_id: str) -> Any:
        stored = self.keys.get(access_key_id)
        assert stored is not None
        return stored.key


@pytest.fixture
def authenticated(dynamodb: Any, clock: FakeClock) -> Authenticated:
    """Authentication on: a keys table and a KMS key beside the runners table, on moto (inside `dynamodb`'s mock)."""
    create_keys_table(dynamodb, KEYS_TABLE)
    kms = boto3.client("kms", region_name="us-east-1")
    secrets = KeySecrets(create_keys_kms_key(kms), client=kms)
    keys = KeyTable(KEYS_TABLE, dynamodb)
    config = Config(
        table_name=TABLE, auth_mode=AuthMode.SIGV4, keys_table_name=KEYS_TABLE, keys_kms_key_id=secrets.kms_key_id or ""
    )
    store = RunnerStore(TABLE, client=dynamodb, keys_table_name=KEYS_TABLE)
    return Authenticated(dynamodb, keys, secrets, store, clock, config, KeyCache(keys, secrets, clock=clock))
