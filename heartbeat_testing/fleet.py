"""HeartbeatFleet: the service in-process on moto, with a clock the test moves and the operator's actions.

The real handler answers every Data Pipeline client's ReportTaskRunnerHeartbeat (see routing),
the real store keeps the runners in moto's DynamoDB, the real sweeper flags them at the kit's
time, and the real publisher sends stale events to moto's EventBridge, where a rule hands them
to a queue that ``events()`` reads. The kit's table, bus rule and queue live in a moto account
of their own (KIT_ACCOUNT_ID), out of the way of the test's own resources.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heartbeat.config import Config
    from heartbeat.handler import Dependencies
    from heartbeat.runners import Runner
    from heartbeat.sweeper import SweepReport

KIT_ACCOUNT_ID = "101010101010"  # moto account of the kit's own resources
KIT_REGION = "us-east-1"
TABLE_NAME = "taskrunner-heartbeat-fleet"
OPERATOR = "heartbeat_fleet"  # who the kit's terminate is recorded as (terminateRequestedBy)

# configure()'s keywords, and the deployed functions' settings they stand for.
SETTINGS = {
    "stale_after_seconds": "STALE_AFTER_SECONDS",
    "stale_after_by_worker_group": "STALE_AFTER_BY_WORKER_GROUP",
    "mass_stale_fraction": "MASS_STALE_FRACTION",
    "retention_seconds": "RETENTION_SECONDS",
}


def _setting(value: object) -> str:
    """A configure() value as the deployed function reads it from its environment."""
    return json.dumps(value) if isinstance(value, Mapping) else str(value)


class HeartbeatFleet:
    """The heartbeat service for one test: use it as a context manager, or through the heartbeat_fleet fixture."""

    def __init__(self, start_time: float | None = None) -> None:
        self._now = time.time() if start_time is None else float(start_time)
        self._settings: dict[str, str] = {"TABLE_NAME": TABLE_NAME}
        self._lock = threading.Lock()  # one request, sweep or operator action at a time, as Lambda runs them
        self._exit = contextlib.ExitStack()
        self._events: list[dict[str, Any]] = []

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> HeartbeatFleet:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Join the active mock_aws (or start one), create the kit's resources, sweep once, route heartbeats here."""
        from moto import mock_aws

        moto = mock_aws()
        moto.start()  # resets moto's state only when no mock_aws was active: an active one is shared
        self._exit.callback(moto.stop)
        try:
            self._create_resources()
            with _service_logs_at(logging.ERROR):  # its "new watch" warning would only puzzle a test's reader
                self.sweep()  # the sweeper's watch begins with the fleet (see _sweeper_up_until_now)
            from heartbeat.handler import make_handler
            from heartbeat_testing.routing import heartbeats_routed_to

            handler = make_handler(self._dependencies)
            self._exit.enter_context(heartbeats_routed_to(lambda event, context: self._invoke(handler, event, context)))
        except BaseException:
            self._exit.close()
            raise

    def stop(self) -> None:
        """Stop answering heartbeats, delete the kit's resources, and leave mock_aws as it was found."""
        self._exit.close()

    def _create_resources(self) -> None:
        from heartbeat.config import Config
        from heartbeat.events import StaleEventPublisher
        from heartbeat.store import RunnerStore
        from heartbeat_local.server import STALE_EVENTS_RULE, create_stale_event_queue, create_table

        dynamodb, events, self._sqs = _kit_client("dynamodb"), _kit_client("events"), _kit_client("sqs")
        create_table(dynamodb, TABLE_NAME)
        self._exit.callback(_quietly, dynamodb.delete_table, TableName=TABLE_NAME)
        self._queue_url = create_stale_event_queue(events, self._sqs)
        self._exit.callback(_quietly, self._sqs.delete_queue, QueueUrl=self._queue_url)
        self._exit.callback(_quietly, events.delete_rule, Name=STALE_EVENTS_RULE)
        self._exit.callback(_quietly, events.remove_targets, Rule=STALE_EVENTS_RULE, Ids=["queue"])
        self._store = RunnerStore(TABLE_NAME, client=dynamodb)
        self._store.scan_segments = 1  # a test's fleet is small: one scan reads it in a page or two
        self._publisher = StaleEventPublisher("default", client=events)
        self._config: Config = Config.from_env(self._settings)

    def _dependencies(self) -> Dependencies:
        from heartbeat.handler import Dependencies

        return Dependencies(config=self._config, store=self._store, clock=lambda: self._now)

    def _invoke(self, handler: Any, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """One invocation of the handler, as make serve runs it: alone, its metrics dropped rather than printed."""
        from heartbeat.observability import metrics

        with self._lock, warnings.catch_warnings():
            # A steady heartbeat records no metric by design; Powertools would warn about it on every one.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            previous = os.environ.get("POWERTOOLS_METRICS_DISABLED")
            os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
            try:
                result: dict[str, Any] = handler(event, context)
                return result
            finally:
                metrics.clear_metrics()
                if previous is None:
                    del os.environ["POWERTOOLS_METRICS_DISABLED"]
                else:
                    os.environ["POWERTOOLS_METRICS_DISABLED"] = previous

    # --- the clock and the settings --------------------------------------------------------------

    @property
    def now(self) -> float:
        """The service's time, in epoch seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the service's clock forward by seconds; returns the new time."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise TypeError(f"advance takes a number of seconds, got {seconds!r}")
        if seconds < 0:
            raise ValueError(f"the clock only moves forward, got {seconds}")
        with self._lock:
            self._now += seconds
            return self._now

    @property
    def config(self) -> Config:
        """The settings the handler and the sweeper run with."""
        return self._config

    def configure(
        self,
        *,
        stale_after_seconds: int | None = None,
        stale_after_by_worker_group: Mapping[str, int] | None = None,
        mass_stale_fraction: float | None = None,
        retention_seconds: int | None = None,
    ) -> Config:
        """Change the deployed functions' settings; those not given keep their value (at first, the defaults).

        Each is read and checked as the functions read their environment variable of that name
        (STALE_AFTER_SECONDS, ...): a bad value raises ConfigError naming it, and changes nothing.
        """
        from heartbeat.config import Config

        given = {
            "stale_after_seconds": stale_after_seconds,
            "stale_after_by_worker_group": stale_after_by_worker_group,
            "mass_stale_fraction": mass_stale_fraction,
            "retention_seconds": retention_seconds,
        }
        settings = dict(self._settings)
        settings.update({SETTINGS[name]: _setting(value) for name, value in given.items() if value is not None})
        config = Config.from_env(settings)
        with self._lock:
            self._settings, self._config = settings, config
        return config

    # --- the sweeper -----------------------------------------------------------------------------

    def sweep(self, *, override_guard: bool = False) -> SweepReport:
        """One run of the real sweeper at the service's time; returns what it did.

        The sweeper counts as up since the fleet began, so a silence is judged from the runner's
        last heartbeat (or reset) without the grace a sweeper back from an outage would give.
        override_guard is the operator's `heartbeat-ops runners sweep --override-guard`.
        """
        from heartbeat.sweeper import sweep

        with self._lock:
            self._sweeper_up_until_now()
            return sweep(self._store, self._config, self._now, self._publisher, override_guard=override_guard)

    def _sweeper_up_until_now(self) -> None:
        """Record that the sweeper's last run ended now: it was up (if idle) since, so its watch has no gap.

        The deployed sweeper runs every minute; a test sweeps when it chooses. Without this, a sweep
        after a silence longer than the threshold would find the sweeper's own down time as long,
        and start a new watch with a full threshold of grace for every runner.
        """
        state = self._store.load_sweep_state()
        if state is not None:
            self._store.save_sweep_state(dataclasses.replace(state, finished_at=self._now))

    # --- the operator ----------------------------------------------------------------------------

    def runner(self, taskrunner_id: str) -> Runner | None:
        """The runner's record as stored (status, lastSeen, ...), or None when there is none."""
        with self._lock:
            return self._store.get_runner(taskrunner_id)

    def runners(self) -> list[Runner]:
        """Every runner record."""
        with self._lock:
            return list(self._store.runners())

    def terminate(self, taskrunner_id: str, reason: str | None = None) -> Runner:
        """An operator's drain (`heartbeat-ops runners terminate`): the next heartbeat answers terminate: true."""
        with self._lock:
            return self._store.request_terminate(taskrunner_id, by=OPERATOR, reason=reason, now=self._now)

    def reset(self, taskrunner_id: str) -> Runner:
        """Clear a stale or terminate flag (`heartbeat-ops runners reset`)."""
        with self._lock:
            return self._store.reset(taskrunner_id, self._now)

    def forget(self, taskrunner_id: str) -> None:
        """Delete the runner's record (`heartbeat-ops runners forget`); its next heartbeat starts afresh."""
        with self._lock:
            self._store.forget(taskrunner_id)

    def retire(self, taskrunner_id: str, reason: str | None = None) -> Runner:
        """A runner removed on purpose leaves the fleet (`heartbeat-ops runners retire`): never flagged, no stale
        event; sticky, so a later heartbeat answers terminate: true (docs/operations.md)."""
        with self._lock:
            return self._store.retire(taskrunner_id, by=OPERATOR, reason=reason, now=self._now)

    def events(self) -> list[dict[str, Any]]:
        """Every stale event published so far, as EventBridge delivered it (``detail`` holds the runner's)."""
        with self._lock:
            for message in self._received():
                self._events.append(json.loads(message["Body"]))
            return list(self._events)

    def _received(self) -> Iterator[dict[str, Any]]:
        while messages := self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            yield from messages
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )


@functools.cache
def _kit_client(service: str) -> Any:
    """A client of the kit's, made once per process: each new session would load the service's model again.

    Its endpoint is explicit, so an AWS_ENDPOINT_URL* in the test's environment cannot send the kit
    elsewhere; its credentials are its own, as moto takes any.
    """
    import boto3

    from heartbeat.clients import CLIENT_CONFIG

    session = boto3.session.Session(
        aws_access_key_id="heartbeat-fleet",
        aws_secret_access_key="heartbeat-fleet",  # noqa: S106 - moto takes any credentials
        region_name=KIT_REGION,
    )
    endpoint = f"https://{service}.{KIT_REGION}.amazonaws.com"
    client: Any = session.client(service, endpoint_url=endpoint, config=CLIENT_CONFIG)  # type: ignore[call-overload]
    client.meta.events.register("before-sign", _in_kit_account)
    return client


def _in_kit_account(request: Any, **_: Any) -> None:
    """moto files a request carrying this header under that account (unless MOTO_ACCOUNT_ID says otherwise)."""
    request.headers["x-moto-account-id"] = KIT_ACCOUNT_ID


@contextlib.contextmanager
def _service_logs_at(level: int) -> Iterator[None]:
    from heartbeat.observability import SERVICE

    service_logger = logging.getLogger(SERVICE)
    previous = service_logger.level
    service_logger.setLevel(level)
    try:
        yield
    finally:
        service_logger.setLevel(previous)


def _quietly(call: Any, **arguments: Any) -> None:
    """Clean-up that may find its resource gone already (a test that reset moto)."""
    from botocore.exceptions import BotoCoreError, ClientError

    with contextlib.suppress(BotoCoreError, ClientError):
        call(**arguments)
