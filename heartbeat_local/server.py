"""The local endpoint's settings and its embedded store (moto: DynamoDB, EventBridge, SQS).

``python -m heartbeat_local`` (see ``__main__``) runs the store as a process of its own,
the execution environments as a gunicorn worker pool (``environment``) and the sweeper
as a process of its own (``sweeper``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from heartbeat_ops.local import (  # make serve's names, which heartbeat-ops finds on its own
    LOCAL_STORE_PORT,
    LOCAL_TABLE_NAME,
    STALE_EVENTS_QUEUE,
    keys_kms_alias,
    keys_table_name,
)

DEFAULT_TABLE_NAME = LOCAL_TABLE_NAME
__all__ = ["DEFAULT_TABLE_NAME", "STALE_EVENTS_QUEUE", "keys_kms_alias", "keys_table_name"]
STALE_EVENTS_RULE = STALE_EVENTS_QUEUE


class SettingError(ValueError):
    """A setting of `make serve` is out of range; the message names it."""


def default_workers() -> int:
    """One execution environment per CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ServeSettings:
    """How to serve, from the environment (see docs/configuration.md)."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    sweep_interval_seconds: float = 60.0
    table_name: str = DEFAULT_TABLE_NAME
    dynamodb_endpoint: str | None = None  # None: embedded moto
    dynamodb_port: int = LOCAL_STORE_PORT  # embedded store's port, where heartbeat-ops looks; 0 picks a free one
    access_log: bool = True
    switch_interval: float | None = None  # tests: sys.setswitchinterval in every process, to force thread switches

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServeSettings:
        """The settings, each checked; a bad one raises SettingError naming it."""
        external = env.get("AWS_ENDPOINT_URL_DYNAMODB") or None
        if external and not env.get("TABLE_NAME"):
            raise SettingError("AWS_ENDPOINT_URL_DYNAMODB is set: set TABLE_NAME to the table to use there too")
        host = env.get("HOST") or "127.0.0.1"
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise SettingError(f"HOST {host!r} is not an address or a name this machine can resolve") from None
        switch = _number(env, "SWITCH_INTERVAL", None, float, low=1e-6)
        return cls(
            host=host,
            port=_number(env, "PORT", 8080, int, low=0, high=65535),
            workers=_number(env, "WORKERS", default_workers(), int, low=1, high=256),
            sweep_interval_seconds=_number(env, "SWEEP_INTERVAL_SECONDS", 60.0, float, low=0),
            table_name=env.get("TABLE_NAME") or DEFAULT_TABLE_NAME,
            dynamodb_endpoint=external,
            dynamodb_port=_number(env, "DYNAMODB_PORT", LOCAL_STORE_PORT, int, low=0, high=65535),
            access_log=env.get("ACCESS_LOG", "1").lower() not in ("0", "false", "no"),
            switch_interval=switch,
        )


def _number(
    env: Mapping[str, str],
    name: str,
    default: Any,
    kind: Callable[[str], Any],
    *,
    low: float,
    high: float | None = None,
) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingError(f"{name} must be a {'whole ' if kind is int else ''}number, got {raw!r}") from None
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
        raise SettingError(f"{name} must be {span}, got {raw!r}")
    return value


def create_table(client: Any, table_name: str) -> None:
    """The table as the stack defines it: on-demand, keyed on taskrunnerId, TTL on expiresAt."""
    from heartbeat.store.items import TTL_ATTRIBUTE

    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "taskrunnerId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "taskrunnerId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


def create_keys_table(client: Any, table_name: str) -> None:
    """The keys table as the stack defines it: on-demand, keyed on accessKeyId."""
    from heartbeat.store.keys import PARTITION_KEY

    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def create_keys_kms_key(kms: Any, alias: str | None = None) -> str:
    """A symmetric KMS key for sealing key secrets, as the stack's, under an alias if given; returns its ARN."""
    arn: str = kms.create_key(Description="Seals the access keys of make serve")["KeyMetadata"]["Arn"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn


def create_stale_event_queue(events: Any, sqs: Any, bus_name: str = "default") -> str:
    """A rule on the bus that sends every stale event to a queue; returns the queue's URL."""
    from heartbeat.events import DETAIL_TYPE, SOURCE

    queue_url: str = sqs.create_queue(QueueName=STALE_EVENTS_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name=STALE_EVENTS_RULE,
        EventBusName=bus_name,
        EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}),
    )
    events.put_targets(Rule=STALE_EVENTS_RULE, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue_url


class EmbeddedDynamoDB:
    """moto's server (DynamoDB, EventBridge, SQS, ...) on loopback, one request at a time.

    DynamoDB makes each single-item operation atomic; moto's in-memory backend does not
    guard against threads interleaving, so the embedded store serves requests one by one
    (under the GIL that costs little throughput) and concurrent heartbeats lose no update.
    """

    def __init__(self, port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            with lock:
                return list(app(environ, start_response))

        class Handler(MotoRequestHandler):
            # Headers and body leave in two writes: without this, Nagle holds the body for the client's delayed ACK.
            disable_nagle_algorithm = True

        # Bound here, so that a port in use is an OSError for the caller to explain (werkzeug would exit).
        listener = socket.create_server(("127.0.0.1", port))
        bound = listener.getsockname()[1]
        self._server = make_server(
            "127.0.0.1", bound, serialized, threaded=True, request_handler=Handler, fd=listener.fileno()
        )
        listener.close()  # the server holds its own duplicate of the socket
        self._thread = threading.Thread(target=self._server.serve_forever, name="dynamodb", daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{bound}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
