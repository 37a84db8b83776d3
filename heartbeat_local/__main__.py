"""``python -m heartbeat_local``: what ``make serve`` runs.

This process binds the port, starts the embedded store and the sweeper as processes of
their own, then becomes gunicorn's arbiter over WORKERS execution environments. SIGTERM
or Ctrl-C: the environments finish their in-flight requests, then the sweeper and the
store stop, and it exits 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from heartbeat.config import Config, ConfigError
from heartbeat.plan import MIN_RUNNERS_TO_JUDGE
from heartbeat_local.children import Child
from heartbeat_local.server import ServeSettings, SettingError, keys_kms_alias, keys_table_name
from heartbeat_ops.local import LOCAL_STORE_URL, LOCAL_TABLE_NAME, STALE_EVENTS_QUEUE

BACKLOG = 1024  # clients that connect together wait for an environment instead of being reset


def main() -> int:
    try:
        settings = ServeSettings.from_env(os.environ)
        config = _handler_config(settings)
    except SettingError as error:
        print(f"make serve: {error}", file=sys.stderr)
        return 2
    try:
        family = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.create_server((settings.host, settings.port), family=family, backlog=BACKLOG)
    except OSError as error:
        print(f"make serve: cannot listen on {settings.host}:{settings.port}: {error.strerror}", file=sys.stderr)
        return 1
    host, port = listener.getsockname()[:2]
    # Until gunicorn's arbiter takes the signals over, SIGTERM stops start-up as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    children: list[Child] = []
    serving = False
    master = os.getpid()  # gunicorn forks the workers inside pool.run(): they return through here too
    try:
        dynamodb, queue = _start_store(settings, children)
        if settings.sweep_interval_seconds > 0 or settings.dynamodb_endpoint is None:
            # Turned off, it still runs once at start on the embedded (empty) table: that records
            # the rules heartbeat-ops judges with, and flags nothing. Off on a table of yours: never.
            children.append(Child.start("sweeper", repr(settings.sweep_interval_seconds)))
        url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        from heartbeat_local.environment import EnvironmentPool

        pool = EnvironmentPool(
            listener.detach(),
            settings.workers,
            settings.access_log,
            settings.switch_interval,
            on_ready=lambda: _announce(settings, config, url, dynamodb, queue),
        )
        serving = True
        try:
            pool.run()
        except SystemExit as stopped:  # gunicorn's arbiter ends with sys.exit once the workers are gone
            if os.getpid() != master:
                raise  # a worker's own exit: its status, and none of the cleanup below
            return int(stopped.code or 0)
        return 0
    except KeyboardInterrupt:  # Ctrl-C before the arbiter took over its signals
        return 0
    finally:
        if os.getpid() == master:
            if serving:
                print("Stopping: in-flight requests finished; stopping the sweeper and the store", file=sys.stderr)
            for child in reversed(children):
                child.stop()


def _handler_config(settings: ServeSettings) -> Config:
    """The handlers' own configuration, checked before anything starts, so a bad value stops start-up here.

    AUTH_MODE defaults to none here (the deployed stack's default is sigv4), so that a first
    `make serve` answers unsigned clients; with sigv4 the embedded store holds a keys table and
    a KMS key of its own, which `heartbeat-ops keys create` issues keys from.
    """
    from heartbeat.config import AuthMode

    os.environ.setdefault("AUTH_MODE", AuthMode.NONE.value)
    if settings.dynamodb_endpoint is None:
        os.environ.setdefault("KEYS_TABLE_NAME", keys_table_name(settings.table_name))
        os.environ.setdefault("KEYS_KMS_KEY_ID", keys_kms_alias(settings.table_name))
    try:
        config = Config.from_env({**os.environ, "TABLE_NAME": settings.table_name})
        config.require_keys()
        return config
    except ConfigError as error:
        raise SettingError(str(error)) from None


def _start_store(settings: ServeSettings, children: list[Child]) -> tuple[str, str | None]:
    """Point every process at the store (embedded unless one is given); its DynamoDB URL and the events queue's."""
    os.environ["TABLE_NAME"] = settings.table_name
    # Metrics are CloudWatch EMF lines on stdout; locally they only bury the logs.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    if settings.dynamodb_endpoint is not None:
        return settings.dynamodb_endpoint, None
    # The embedded store takes any credentials; never send real ones to it.
    os.environ["AWS_ACCESS_KEY_ID"] = "local"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "local"  # noqa: S105 - a placeholder for the local store
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    store = Child.start("store", str(settings.dynamodb_port), settings.table_name, stdout=subprocess.PIPE)
    children.append(store)
    ready = store.process.stdout.readline() if store.process.stdout else ""
    if ready.startswith("make serve:"):  # the store's own one line on why it could not start
        raise SystemExit(ready.strip())
    if len(ready.split()) != 2:
        raise SystemExit("make serve: the embedded store did not start (see above)")
    endpoint, queue = ready.split()
    # botocore's per-service variables: EventBridge's is _EVENTBRIDGE (its service id), not _EVENTS.
    for service in ("DYNAMODB", "EVENTBRIDGE", "SQS", "KMS"):
        os.environ[f"AWS_ENDPOINT_URL_{service}"] = endpoint
    return endpoint, queue


def _where_ops_looks(settings: ServeSettings, dynamodb: str) -> str:
    """What heartbeat-ops needs to be told to reach this store: nothing on the default port and table."""
    named = "" if dynamodb == LOCAL_STORE_URL else f" --endpoint-url {dynamodb}"
    if settings.table_name != LOCAL_TABLE_NAME:
        named += f" --table {settings.table_name}"
    return named


def _announce(settings: ServeSettings, config: Config, url: str, dynamodb: str, queue: str | None) -> None:
    store = "embedded, in memory" if settings.dynamodb_endpoint is None else "external"
    where = _where_ops_looks(settings, dynamodb)
    lines = [
        f"Heartbeat endpoint: {url}  ({settings.workers} execution environments)",
        *_rules(settings, config),
        f"DynamoDB ({store}): {dynamodb}  table: {settings.table_name}",
    ]
    if queue is not None:
        lines.append(f"Stale events: EventBridge -> SQS queue {STALE_EVENTS_QUEUE}")
    if os.environ.get("AUTH_MODE") == "sigv4":
        lines += [
            "Authentication: sigv4 (heartbeats must be signed with a key issued here)",
            f"Try: .venv/bin/heartbeat-ops keys create{where}",
            "     then sign with it: AWS_ACCESS_KEY_ID=<id> AWS_SECRET_ACCESS_KEY=<secret> .venv/bin/aws datapipeline "
            f"report-task-runner-heartbeat --taskrunner-id r-1 --endpoint-url {url} --region us-east-1",
        ]
    else:
        heartbeat = "-H 'X-Amz-Target: DataPipeline.ReportTaskRunnerHeartbeat' -d '{\"taskrunnerId\": \"r-1\"}'"
        lines += [
            "Authentication: none (AUTH_MODE=sigv4 to verify signatures)",
            f"Try: curl -s -w '\\n' {heartbeat} {url}/",
        ]
    lines.append(f"     .venv/bin/heartbeat-ops runners list{where}")
    print("\n".join(lines), flush=True)


def _rules(settings: ServeSettings, config: Config) -> list[str]:
    """The thresholds and the sweep interval, as the sweeper applies them."""
    groups = ", ".join(f"{group} {seconds} s" for group, seconds in sorted(config.stale_after_by_worker_group.items()))
    stale = f"Stale after: {config.stale_after_seconds} s without a heartbeat" + (
        f" (worker groups: {groups})" if groups else ""
    )
    if config.mass_stale_fraction >= 1:
        guard = "the guard off (MASS_STALE_FRACTION=1)"
    else:
        guard = (
            f"the guard holds a scope of {MIN_RUNNERS_TO_JUDGE} or more active runners while none of them is heard "
            "(docs/guarantees.md)"
        )
    if settings.sweep_interval_seconds > 0:
        sweeper = f"Sweeper: every {settings.sweep_interval_seconds:g} s; {guard}"
    else:
        sweeper = f"Sweeper: off (SWEEP_INTERVAL_SECONDS=0); heartbeat-ops runners sweep runs one; {guard}"
    return [stale, sweeper]


if __name__ == "__main__":
    sys.exit(main())
